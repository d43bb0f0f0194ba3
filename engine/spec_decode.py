"""Speculative decoding's acceptance rule: interface `Verifier` and `RejectionSampler`."""

from __future__ import annotations

from abc import ABC, abstractmethod

import torch


class Verifier(ABC):
    """Accepts or rejects a draft model's proposed tokens so the output follows the target model.

    `verify(draft_tokens, draft_probs, target_probs, uniforms)` for a batch of `B` rows, each
    with `k` draft tokens:

    - `draft_tokens` `[B, k]` int64: the tokens the draft proposed,
    - `draft_probs` `[B, k, V]`: the draft's distribution `q_i` at each proposed position,
    - `target_probs` `[B, k + 1, V]`: the target's distribution `p_i` at the same positions,
      plus one more after the last draft token,
    - `uniforms` `[B, k + 1]` float64 U(0, 1): the only randomness to use (column `i < k`
      decides draft token `i`, column `k` samples the emitted token), so seeded runs reproduce.

    Returns `(tokens, num_accepted)`: `tokens` `[B, k + 1]` int64, row `b` holding its
    `num_accepted[b]` accepted draft tokens and then exactly one more token, the rest `-1`.

    The rule (Leviathan et al. 2023; Chen et al. 2023), per row, for `i = 0 .. k-1`: with
    `x = draft_tokens[i]`, accept when `uniforms[i] < min(1, p_i(x) / q_i(x))`. At the first
    rejection, stop and emit a token sampled from the residual `max(0, p_i - q_i)` normalised
    (inverse CDF with `uniforms[k]`). If all `k` are accepted, emit a bonus token sampled from
    `p_k` the same way. Each emitted token is then distributed exactly as the target's `p`.
    With one-hot `p` and `q` (greedy), this accepts exactly the draft tokens equal to the
    target's argmax and emits the target's argmax at the first mismatch.

    Example (greedy, k = 2; the target agrees with the first draft token only)::

        tokens, n = RejectionSampler().verify(draft_tokens, q, p, uniforms)
        tokens  # tensor([[d0, t1, -1]]), n = tensor([1])

    Plug in a candidate's class with `LLMEngine(..., verifier=MyVerifier())`.
    """

    @abstractmethod
    def verify(
        self,
        draft_tokens: torch.Tensor,
        draft_probs: torch.Tensor,
        target_probs: torch.Tensor,
        uniforms: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Accepted draft tokens plus one correction or bonus token per row."""


def sample_inverse_cdf(probs: torch.Tensor, uniforms: torch.Tensor) -> torch.Tensor:
    """Token per row where the cumulative of (unnormalised) `probs` first exceeds `u * total`."""
    cdf = probs.double().cumsum(dim=-1)
    u = (uniforms * cdf[:, -1]).unsqueeze(1)
    return torch.searchsorted(cdf, u, right=True).squeeze(1).clamp_(max=probs.shape[-1] - 1)


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
