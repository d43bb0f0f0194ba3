import torch

from engine.grammar import GrammarSampler, TokenFSM
from engine.sampler import sample_inverse_cdf


class ConstrainedSampler(GrammarSampler):
    """Wrong: a fast path for greedy rows that returns the argmax before the logits processor
    runs, so a greedy request ignores its grammar (the sampled rows are right)."""

    def sample(
        self,
        logits: torch.Tensor,
        fsm: TokenFSM,
        states: torch.Tensor,
        temperature: torch.Tensor,
        uniforms: torch.Tensor,
    ) -> torch.Tensor:
        greedy = logits.argmax(dim=-1)
        sampling = temperature > 0
        if not bool(sampling.any()):
            return greedy
        degree = fsm.offsets[1:] - fsm.offsets[:-1]
        owner = torch.repeat_interleave(torch.arange(fsm.num_states), degree)
        masks = torch.zeros(fsm.num_states, fsm.vocab_size, dtype=torch.bool)
        masks[owner, fsm.token_ids] = True
        masks[:, fsm.eos_token_id] = fsm.accepting.bool()
        masked = logits.float().masked_fill(~masks[states], float("-inf"))
        weights = (masked / torch.where(sampling, temperature, 1.0)[:, None]).softmax(dim=-1)
        return torch.where(sampling, sample_inverse_cdf(weights, uniforms), greedy)
