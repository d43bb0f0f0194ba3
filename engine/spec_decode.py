"""Speculative decoding's acceptance rule: the `Verifier` interface (the reference
implementation is `engine/rejection_sampler.py`)."""

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
    (`p_i` itself if the residual is all zero). If all `k` are accepted, emit a bonus token
    sampled from `p_k`. "Sampled" is inverse CDF with `u = uniforms[k]`: the first token, in
    token-id order, whose cumulative weight exceeds `u` times the total weight
    (`engine.sampler.sample_inverse_cdf`). Each emitted token is then distributed exactly as
    the target's `p`. With one-hot `p` and `q` (greedy), this accepts exactly the draft tokens
    equal to the target's argmax and emits the target's argmax at the first mismatch.

    Computed in float32, `p / q` and the cumulative weights may differ from the exact values
    in their last bits: a uniform that lies within that rounding of a decision (`u` against
    `p / q`, `u * total` against a cumulative weight) may go either way, and anything else
    must give exactly the rule's tokens.

    Example (greedy, k = 2; the target agrees with the first draft token only)::

        tokens, n = MyVerifier().verify(draft_tokens, q, p, uniforms)
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
