"""Constrained decoding: the token automaton a grammar compiles to, and the `GrammarSampler`
interface that samples only tokens the automaton allows (the compiler is
`engine/grammar_compile.py`)."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass

import torch

from engine.sampler import sample_inverse_cdf


@dataclass(frozen=True)
class TokenFSM:
    """A grammar (a regular expression, or a JSON schema written as one) compiled over a
    vocabulary: a deterministic automaton whose edges are tokens.

    State `s` allows the tokens `token_ids[offsets[s]:offsets[s + 1]]` (ascending ids), each
    leading to the state at the same place of `next_states`. An accepting state has read a
    whole match: it also allows `eos_token_id`, which ends the output. Every state can still
    reach an accepting one, so a state always allows at least one token. State 0 is the start.

    Example: the pattern `[0-9]{1,2}` over the vocabulary `["<eos>", "0", "1", "12", "x"]`
    compiles to three states: state 0 allows tokens 1, 2, 3 (to states 1, 1, 2); state 1
    (one digit read, accepting) allows tokens 1, 2 (to state 2) and EOS; state 2 (two digits,
    accepting) allows EOS only:

        offsets     = [0, 3, 5, 5]
        token_ids   = [1, 2, 3, 1, 2]
        next_states = [1, 1, 2, 2, 2]
        accepting   = [False, True, True]

    `key` names the grammar and vocabulary: two automata with the same key are equal, so a
    sampler may keep what it derives from one (a dense mask per state) for the next call.
    """

    offsets: torch.Tensor  # [num_states + 1] int64
    token_ids: torch.Tensor  # [num_edges] int64, ascending within each state
    next_states: torch.Tensor  # [num_edges] int64
    accepting: torch.Tensor  # [num_states] int64, 1 = accepting
    eos_token_id: int
    vocab_size: int
    key: str

    @property
    def num_states(self) -> int:
        return self.offsets.shape[0] - 1


class GrammarSampler(ABC):
    """Constrained decoding for a batch: `mask` is the logits processor (which tokens each
    row's grammar state allows), `sample` draws one token per row among them.

    `mask(fsm, states)` returns `[B, vocab]` bool: row `i` allows the tokens of state
    `states[i]` in `fsm`, and `fsm.eos_token_id` when that state is accepting; nothing else.

    `sample(logits, fsm, states, temperature, uniforms)` returns `[B]` int64 token ids, each
    allowed by `mask` (every other token has probability exactly 0):

    - a greedy row (`temperature[i] == 0`) takes the first index of the largest logit among
      the allowed tokens;
    - any other row samples from the distribution of the unconstrained
      `softmax(logits[i] / temperature[i])` restricted to the allowed tokens and
      renormalised: with `u = uniforms[i]`, the first allowed token (in token-id order) whose
      cumulative weight exceeds `u` times the allowed tokens' total, i.e.
      `engine.sampler.sample_inverse_cdf(weights, uniforms)` with the forbidden weights 0.

    One fixed token per row and uniform, so a run reproduces in any batch. A uniform within
    float32 rounding (2e-6 of the total) of a bin edge may select either neighbour. The
    `sample` given here masks with `mask` and draws so; a subclass may override it to go
    faster, as long as it draws the same tokens.

    Example (the automaton of `TokenFSM`'s example, state 1, temperature 1)::

        sampler.mask(fsm, torch.tensor([1]))  # tensor([[True, True, True, False, False]])
        logits = torch.tensor([[0.0, 1.0, 0.0, 5.0, 9.0]])  # tokens 3 and 4 are not allowed
        sampler.sample(logits, fsm, torch.tensor([1]), torch.tensor([1.0]),
                       torch.tensor([0.5], dtype=torch.float64))
        # allowed: EOS (0), "0" (1), "1" (2): weights 1, e, 1 -> cumulative 0.212, 0.788, 1
        # -> tensor([1])

    The trusted side advances each row's state by the token drawn; the sampler keeps no
    state between calls but what it derives from an automaton (see `TokenFSM.key`).
    """

    @abstractmethod
    def mask(self, fsm: TokenFSM, states: torch.Tensor) -> torch.Tensor:
        """`[B, vocab]` bool: the tokens each row's state allows (see the class docstring).

        `states` `[B]` int64.
        """

    def sample(
        self,
        logits: torch.Tensor,
        fsm: TokenFSM,
        states: torch.Tensor,
        temperature: torch.Tensor,
        uniforms: torch.Tensor,
    ) -> torch.Tensor:
        """`[B]` int64: one allowed token per row (see the class docstring).

        `logits` `[B, vocab]` float32, `states` `[B]` int64, `temperature` `[B]` float32,
        `uniforms` `[B]` float64.
        """
        masked = logits.float().masked_fill(~self.mask(fsm, states), float("-inf"))
        greedy = masked.argmax(dim=-1)
        sampling = temperature > 0
        if not bool(sampling.any()):
            return greedy
        weights = (masked / torch.where(sampling, temperature, 1.0)[:, None]).softmax(dim=-1)
        return torch.where(sampling, sample_inverse_cdf(weights, uniforms), greedy)
