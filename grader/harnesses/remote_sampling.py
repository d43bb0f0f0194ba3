"""The trusted engine's sampler and verifier, standing in for the candidate's object in the
sandbox: each call crosses the boundary and comes back judged before the engine uses it.

Imported by the trusted side only (it needs ``engine``); the calls and the judging are the
harness kind's (``engine_sampler.py``, ``engine_verifier.py``), passed in as one function.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from engine.sampler import Sampler, SamplingBatch
from engine.spec_decode import Verifier

#: (logits, packed settings, with probs) -> (tokens, probs or None), judged.
SampleChecked = Callable[
    [torch.Tensor, torch.Tensor, bool], tuple[torch.Tensor, torch.Tensor | None]
]
#: (draft tokens, draft probs, target probs, uniforms) -> (tokens, num_accepted), judged.
VerifyChecked = Callable[
    [torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]
]


class RemoteSampler(Sampler):
    """The candidate's sampler, called in its sandbox for every step the engine samples."""

    def __init__(self, sample_checked: SampleChecked) -> None:
        self.sample_checked = sample_checked

    def probs(self, logits: torch.Tensor, batch: SamplingBatch) -> torch.Tensor:
        return self.sample_checked(logits, batch.pack(), True)[1]

    def sample(self, logits: torch.Tensor, batch: SamplingBatch) -> torch.Tensor:
        return self.sample_checked(logits, batch.pack(), False)[0]


class RemoteVerifier(Verifier):
    """The candidate's verifier, called in its sandbox for every row the engine verifies."""

    def __init__(self, verify_checked: VerifyChecked) -> None:
        self.verify_checked = verify_checked

    def verify(self, draft_tokens, draft_probs, target_probs, uniforms):
        return self.verify_checked(draft_tokens, draft_probs, target_probs, uniforms)
