import torch

from engine.grammar import GrammarSampler, TokenFSM


class ConstrainedSampler(GrammarSampler):
    """Wrong: the mask is right, but `sample` normalises before it masks. The softmax runs
    over the whole vocabulary, the forbidden tokens' probabilities are then zeroed, and the
    draw compares the uniform with a cumulative sum that no longer reaches 1: a uniform above
    the allowed mass runs off the end of the vocabulary (clamped to its last token, which the
    grammar seldom allows), and the others pick from the unrenormalised allowed mass."""

    def mask(self, fsm: TokenFSM, states: torch.Tensor) -> torch.Tensor:
        allowed = torch.zeros(len(states), fsm.vocab_size, dtype=torch.bool)
        for row, state in enumerate(states.tolist()):
            allowed[row, fsm.token_ids[fsm.offsets[state] : fsm.offsets[state + 1]]] = True
        allowed[:, fsm.eos_token_id] = fsm.accepting[states].bool()
        return allowed

    def sample(self, logits, fsm, states, temperature, uniforms) -> torch.Tensor:
        allowed = self.mask(fsm, states)
        greedy = logits.float().masked_fill(~allowed, float("-inf")).argmax(dim=-1)
        sampling = temperature > 0
        probs = (logits.float() / torch.where(sampling, temperature, 1.0)[:, None]).softmax(-1)
        cdf = (probs * allowed).double().cumsum(dim=-1)
        drawn = torch.searchsorted(cdf, uniforms[:, None], right=True).squeeze(1)
        drawn = drawn.clamp(max=logits.shape[-1] - 1)
        return torch.where(sampling, drawn, greedy)
