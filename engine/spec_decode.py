"""Speculative decoding: the `Verifier` interface of its acceptance rule (the reference
implementation is `engine/rejection_sampler.py`), and `SpecDecoder`, the engine's draft and
verify passes around it."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import TYPE_CHECKING

import torch

from engine.sampler import Sampler, SamplingBatch

if TYPE_CHECKING:
    from engine.block_allocator import BlockAllocator
    from engine.model_runner import ModelRunner
    from engine.sequence import Sequence


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


class SpecDecoder:
    """Self-speculative decoding: the draft model is the target's first `draft_layers` layers,
    sharing their KV cache. `propose` drafts `k` tokens per decoding sequence before the
    target's pass; `verify` accepts them by the `verifier`'s rule after it."""

    def __init__(
        self,
        runner: ModelRunner,
        allocator: BlockAllocator,
        sampler: Sampler,
        verifier: Verifier,
        k: int,
        draft_layers: int,
    ) -> None:
        self.runner, self.allocator, self.sampler, self.verifier = (
            runner,
            allocator,
            sampler,
            verifier,
        )
        self.k, self.draft_layers = k, draft_layers
        self.draft_probs: dict[int, list[torch.Tensor]] = {}
        self.num_proposed = self.num_accepted = 0

    def propose(self, scheduled: list[tuple[Sequence, int]]) -> list[tuple[Sequence, int]]:
        """Draft side: each decoding sequence that can get the slots gets `k` draft tokens,
        proposed one at a time; it is then scheduled for `1 + k` tokens, its last token plus
        the drafts, all verified in one target pass."""
        decoding = [
            seq for seq, n in scheduled
            if n == 1 and seq.num_computed_tokens == len(seq.token_ids) - 1
            and self.allocator.append_slots(seq, 1 + self.k)
        ]  # fmt: skip
        self.draft_probs = {seq.seq_id: [] for seq in decoding}
        for step in range(self.k if decoding else 0):
            for seq in decoding:
                seq.num_computed_tokens = len(seq.token_ids) - 1 + step
            logits, _ = self.runner.run([(seq, 1) for seq in decoding], self.draft_layers)
            batch = SamplingBatch.of(decoding, logits.device)
            probs = self.sampler.probs(logits, batch)
            tokens = self.sampler.sample(logits, batch).tolist()
            for row, (seq, token) in enumerate(zip(decoding, tokens, strict=True)):
                seq.spec_token_ids.append(token)
                self.draft_probs[seq.seq_id].append(probs[row])
        for seq in decoding:
            seq.num_computed_tokens = len(seq.token_ids) - 1
        return [(seq, 1 + len(seq.spec_token_ids)) for seq, _ in scheduled]

    def verify(
        self, scheduled: list[tuple[Sequence, int]], logits: torch.Tensor, seqs: list[Sequence]
    ) -> list[list[int]]:
        """Target side, for the sampled `seqs` of the target's pass: per sequence, its accepted
        draft tokens plus one more. Advances `num_computed_tokens` past the accepted drafts'
        KV and drops the drafts."""
        row, by_id = 0, {seq.seq_id: n for seq, n in scheduled}
        new_tokens = []
        for seq in seqs:
            k, num_new = len(seq.spec_token_ids), by_id[seq.seq_id]
            rows = logits[row : row + min(num_new, 1 + k)]
            row += rows.shape[0]
            if k:
                accepted = self._accept(seq, rows)
            else:
                accepted = self.sampler.sample(rows, SamplingBatch.of([seq], logits.device))
            tokens = accepted.tolist()
            seq.num_computed_tokens += num_new - k + len(tokens) - 1
            seq.spec_token_ids = []
            new_tokens.append(tokens)
        return new_tokens

    def _accept(self, seq: Sequence, rows: torch.Tensor) -> torch.Tensor:
        """`seq`'s accepted draft tokens and the correction or bonus token after them."""
        k, device = len(seq.spec_token_ids), rows.device
        target = self.sampler.probs(
            rows, SamplingBatch.build([seq.params] * rows.shape[0], [0.0] * rows.shape[0], device)
        )
        uniforms = torch.tensor([[seq.rng.random() for _ in range(k + 1)]], dtype=torch.float64)
        tokens, accepted = self.verifier.verify(
            torch.tensor([seq.spec_token_ids], device=device),
            torch.stack(self.draft_probs[seq.seq_id])[None],
            target[None],
            uniforms.to(device),
        )
        self.num_proposed += k
        self.num_accepted += int(accepted[0])
        return tokens[0, : int(accepted[0]) + 1]
