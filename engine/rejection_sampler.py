"""The reference verifier of speculative decoding: rejection sampling, vectorised."""

from __future__ import annotations

import torch

from engine.sampler import sample_inverse_cdf
from engine.spec_decode import Verifier


class RejectionSampler(Verifier):
    """Reference verifier, vectorised over the batch."""

    def verify(self, draft_tokens, draft_probs, target_probs, uniforms):
        batch, k = draft_tokens.shape
        rows = torch.arange(batch, device=draft_tokens.device)
        p_draft = target_probs[:, :k].gather(2, draft_tokens[..., None]).squeeze(2).double()
        q_draft = draft_probs.gather(2, draft_tokens[..., None]).squeeze(2).double()
        accepted = uniforms[:, :k] * q_draft < p_draft
        num_accepted = accepted.long().cumprod(dim=1).sum(dim=1)
        residual = (target_probs[:, :k] - draft_probs).clamp_(min=0)
        residual = torch.cat([residual, target_probs[:, k:]], dim=1)
        final = residual[rows, num_accepted]
        empty = final.sum(-1) <= 0
        final[empty] = target_probs[rows, num_accepted][empty]
        extra = sample_inverse_cdf(final, uniforms[:, k])
        tokens = torch.full((batch, k + 1), -1, dtype=torch.int64, device=draft_tokens.device)
        positions = torch.arange(k + 1, device=draft_tokens.device)
        keep = positions[None, :k] < num_accepted[:, None]
        tokens[:, :k] = torch.where(keep, draft_tokens, -1)
        tokens[rows, num_accepted] = extra
        return tokens, num_accepted
