import torch

from engine.grammar import GrammarSampler, TokenFSM


class ConstrainedSampler(GrammarSampler):
    """Wrong: normalises before it masks. The softmax runs over the whole vocabulary, the
    forbidden tokens' probabilities are then zeroed, and the draw compares the uniform with a
    cumulative sum that no longer reaches 1: a uniform above the allowed mass runs off the end
    of the vocabulary (clamped to its last token, which the grammar seldom allows), and the
    others pick from the unrenormalised allowed mass."""

    def sample(
        self,
        logits: torch.Tensor,
        fsm: TokenFSM,
        states: torch.Tensor,
        temperature: torch.Tensor,
        uniforms: torch.Tensor,
    ) -> torch.Tensor:
        degree = fsm.offsets[1:] - fsm.offsets[:-1]
        owner = torch.repeat_interleave(torch.arange(fsm.num_states), degree)
        masks = torch.zeros(fsm.num_states, fsm.vocab_size, dtype=torch.bool)
        masks[owner, fsm.token_ids] = True
        masks[:, fsm.eos_token_id] = fsm.accepting.bool()
        allowed = masks[states]
        greedy = logits.float().masked_fill(~allowed, float("-inf")).argmax(dim=-1)
        sampling = temperature > 0
        probs = (logits.float() / torch.where(sampling, temperature, 1.0)[:, None]).softmax(-1)
        cdf = (probs * allowed).double().cumsum(dim=-1)
        drawn = torch.searchsorted(cdf, uniforms[:, None], right=True).squeeze(1)
        drawn = drawn.clamp(max=logits.shape[-1] - 1)
        return torch.where(sampling, drawn, greedy)
