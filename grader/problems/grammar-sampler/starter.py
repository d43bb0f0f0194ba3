import torch

from engine.grammar import GrammarSampler, TokenFSM


class ConstrainedSampler(GrammarSampler):
    """Mask the tokens the grammar forbids in each row's state, then sample (see the statement)."""

    def sample(
        self,
        logits: torch.Tensor,
        fsm: TokenFSM,
        states: torch.Tensor,
        temperature: torch.Tensor,
        uniforms: torch.Tensor,
    ) -> torch.Tensor:
        raise NotImplementedError
