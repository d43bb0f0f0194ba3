import torch

from engine.grammar import GrammarSampler, TokenFSM


class ConstrainedSampler(GrammarSampler):
    """Wrong: the mask is right, but `sample` has a fast path for greedy rows that returns the
    argmax before the logits processor runs, so a greedy request ignores its grammar (the
    sampled rows are right)."""

    def mask(self, fsm: TokenFSM, states: torch.Tensor) -> torch.Tensor:
        allowed = torch.zeros(len(states), fsm.vocab_size, dtype=torch.bool)
        for row, state in enumerate(states.tolist()):
            allowed[row, fsm.token_ids[fsm.offsets[state] : fsm.offsets[state + 1]]] = True
        allowed[:, fsm.eos_token_id] = fsm.accepting[states].bool()
        return allowed

    def sample(self, logits, fsm, states, temperature, uniforms) -> torch.Tensor:
        sampled = super().sample(logits, fsm, states, temperature, uniforms)
        return torch.where(temperature > 0, sampled, logits.argmax(dim=-1))
