import torch

from engine.grammar import GrammarSampler, TokenFSM


class ConstrainedSampler(GrammarSampler):
    """Wrong: EOS is allowed only where nothing else is (an accepting state with no outgoing
    token), as if a match had to be as long as it can be. "12" is a whole number, but the
    sampler never stops there: a valid token is forbidden at an accepting state."""

    def mask(self, fsm: TokenFSM, states: torch.Tensor) -> torch.Tensor:
        degree = fsm.offsets[1:] - fsm.offsets[:-1]
        owner = torch.repeat_interleave(torch.arange(fsm.num_states), degree)
        masks = torch.zeros(fsm.num_states, fsm.vocab_size, dtype=torch.bool)
        masks[owner, fsm.token_ids] = True
        masks[:, fsm.eos_token_id] = fsm.accepting.bool() & (degree == 0)
        return masks[states]
