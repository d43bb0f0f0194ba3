import torch

from engine.spec_decode import Verifier


class SpecVerifier(Verifier):
    """Honest, in float32 as a GPU kernel would compute it: accept while u <= p(x) / q(x), then
    one token from the residual by a float32 cumulative sum. It differs from the float64 rule
    only where a uniform lies within rounding of a decision, which the statement allows."""

    def verify(self, draft_tokens, draft_probs, target_probs, uniforms):
        batch, k = draft_tokens.shape
        rows = torch.arange(batch)
        u = uniforms.float()
        index = draft_tokens[..., None]
        ratio = target_probs[:, :k].gather(2, index) / draft_probs.gather(2, index)
        num_accepted = (u[:, :k] <= ratio.squeeze(2)).long().cumprod(dim=1).sum(dim=1)
        residual = (target_probs[:, :k] - draft_probs).clamp(min=0)
        weights = torch.cat([residual, target_probs[:, k:]], dim=1)[rows, num_accepted]
        empty = weights.sum(dim=-1, keepdim=True) <= 0
        weights = torch.where(empty, target_probs[rows, num_accepted], weights)
        cdf = weights.cumsum(dim=-1)
        draw = (u[:, k] * cdf[:, -1]).unsqueeze(1)
        extra = torch.searchsorted(cdf, draw, right=True).squeeze(1).clamp(max=cdf.shape[-1] - 1)
        accepted = torch.arange(k)[None, :] < num_accepted[:, None]
        tokens = torch.full((batch, k + 1), -1, dtype=torch.int64)
        tokens[:, :k] = torch.where(accepted, draft_tokens, -1)
        tokens[rows, num_accepted] = extra
        return tokens, num_accepted
