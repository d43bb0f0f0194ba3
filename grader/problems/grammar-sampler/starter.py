import torch

from engine.grammar import GrammarSampler, TokenFSM


class ConstrainedSampler(GrammarSampler):
    """The tokens each row's grammar state allows (see the statement); `sample` (inherited)
    masks with them and draws."""

    def mask(self, fsm: TokenFSM, states: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError
