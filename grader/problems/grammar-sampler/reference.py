import torch

from engine.grammar import GrammarSampler, TokenFSM


class ConstrainedSampler(GrammarSampler):
    """A dense mask per automaton state, built once per automaton (its key): each step is one
    gather of the rows' masks. `sample` (inherited) masks the logits with it and draws."""

    def __init__(self) -> None:
        self._masks: dict[str, torch.Tensor] = {}

    def mask(self, fsm: TokenFSM, states: torch.Tensor) -> torch.Tensor:
        masks = self._masks.get(fsm.key)
        if masks is None:
            degree = fsm.offsets[1:] - fsm.offsets[:-1]
            owner = torch.repeat_interleave(torch.arange(fsm.num_states), degree)
            masks = torch.zeros(fsm.num_states, fsm.vocab_size, dtype=torch.bool)
            masks[owner, fsm.token_ids] = True
            masks[:, fsm.eos_token_id] = fsm.accepting.bool()
            self._masks = {fsm.key: masks}  # one grammar at a time: the batch's
        return masks[states]
