import torch

from engine.grammar import GrammarSampler, TokenFSM


class ConstrainedSampler(GrammarSampler):
    """Correct and slower: no table kept between calls; each step builds every row's mask
    from its state's slice of the automaton, one row at a time (a logits processor called
    per request, as the first constrained-decoding integrations did)."""

    def mask(self, fsm: TokenFSM, states: torch.Tensor) -> torch.Tensor:
        allowed = torch.zeros(len(states), fsm.vocab_size, dtype=torch.bool)
        for row, state in enumerate(states.tolist()):
            begin, end = int(fsm.offsets[state]), int(fsm.offsets[state + 1])
            allowed[row, fsm.token_ids[begin:end]] = True
            allowed[row, fsm.eos_token_id] = bool(fsm.accepting[state])
        return allowed
