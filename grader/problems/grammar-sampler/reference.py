import torch

from engine.grammar import GrammarSampler, TokenFSM
from engine.sampler import sample_inverse_cdf


class ConstrainedSampler(GrammarSampler):
    """A dense mask per automaton state, built once per automaton (its key), then one gather
    per step: the rows' masks, -inf where forbidden, a softmax and an inverse-CDF draw."""

    def __init__(self) -> None:
        self._masks: dict[str, torch.Tensor] = {}

    def _state_masks(self, fsm: TokenFSM) -> torch.Tensor:
        """[num_states, vocab] bool: what each state allows, EOS where it accepts."""
        masks = self._masks.get(fsm.key)
        if masks is None:
            degree = fsm.offsets[1:] - fsm.offsets[:-1]
            owner = torch.repeat_interleave(torch.arange(fsm.num_states), degree)
            masks = torch.zeros(fsm.num_states, fsm.vocab_size, dtype=torch.bool)
            masks[owner, fsm.token_ids] = True
            masks[:, fsm.eos_token_id] = fsm.accepting.bool()
            self._masks = {fsm.key: masks}  # one grammar at a time: the batch's
        return masks

    def sample(
        self,
        logits: torch.Tensor,
        fsm: TokenFSM,
        states: torch.Tensor,
        temperature: torch.Tensor,
        uniforms: torch.Tensor,
    ) -> torch.Tensor:
        allowed = self._state_masks(fsm)[states]
        masked = logits.float().masked_fill(~allowed, float("-inf"))
        greedy = masked.argmax(dim=-1)
        sampling = temperature > 0
        if not bool(sampling.any()):
            return greedy
        weights = (masked / torch.where(sampling, temperature, 1.0)[:, None]).softmax(dim=-1)
        return torch.where(sampling, sample_inverse_cdf(weights, uniforms), greedy)
