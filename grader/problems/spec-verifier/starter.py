import torch

from engine.spec_decode import Verifier


class SpecVerifier(Verifier):
    """Accept draft token x with probability min(1, p(x)/q(x)); on the first rejection emit a
    token from max(0, p - q) normalised; after k accepts emit a bonus token from p_k."""

    def verify(
        self,
        draft_tokens: torch.Tensor,
        draft_probs: torch.Tensor,
        target_probs: torch.Tensor,
        uniforms: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        raise NotImplementedError
