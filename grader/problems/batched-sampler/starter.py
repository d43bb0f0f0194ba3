import torch

from engine.sampler import Sampler, SamplingBatch


class BatchedSampler(Sampler):
    """Temperature, top-k, top-p and min-p per row; `sample` (inherited) draws by inverse CDF."""

    def probs(self, logits: torch.Tensor, batch: SamplingBatch) -> torch.Tensor:
        raise NotImplementedError
