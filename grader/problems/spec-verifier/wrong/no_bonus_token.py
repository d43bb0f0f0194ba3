import torch

from engine.spec_decode import Verifier


class SpecVerifier(Verifier):
    """Wrong: when all k drafts are accepted no bonus token is emitted (the row ends at the
    last draft), so every fully accepted step loses the free token from p_k."""

    def verify(self, draft_tokens, draft_probs, target_probs, uniforms):
        batch, k = draft_tokens.shape
        rows = torch.arange(batch, device=draft_tokens.device)
        index = draft_tokens[..., None]
        p_x = target_probs[:, :k].gather(2, index).squeeze(2).double()
        q_x = draft_probs.gather(2, index).squeeze(2).double()
        # accepted drafts are a prefix: count the leading run of accepts per row
        num_accepted = (uniforms[:, :k] * q_x < p_x).long().cumprod(dim=1).sum(dim=1)
        residual = (target_probs[:, :k] - draft_probs).clamp(min=0)
        weights = torch.cat([residual, target_probs[:, k:]], dim=1)[rows, num_accepted].double()
        fallback = target_probs[rows, num_accepted].double()
        weights = torch.where(weights.sum(-1, keepdim=True) > 0, weights, fallback)
        cdf = weights.cumsum(dim=-1)
        u = (uniforms[:, k] * cdf[:, -1]).unsqueeze(1)
        extra = torch.searchsorted(cdf, u, right=True).squeeze(1).clamp(max=cdf.shape[-1] - 1)
        positions = torch.arange(k + 1, device=draft_tokens.device)
        padded = torch.cat([draft_tokens, draft_tokens.new_full((batch, 1), -1)], dim=1)
        tokens = torch.where(positions < num_accepted[:, None], padded, -1)
        partial = num_accepted < k
        tokens[rows[partial], num_accepted[partial]] = extra[partial]
        return tokens, num_accepted
