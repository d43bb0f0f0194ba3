"""The reference sampler: temperature, top-k, top-p and min-p in transformers' order."""

from __future__ import annotations

import torch

from engine.sampler import Sampler, SamplingBatch


class TopKTopPSampler(Sampler):
    """Reference sampler: one descending sort serves top-k, top-p and min-p for the whole batch.

    A batch with no filters (temperature and greedy rows only, the common serving case) is
    sampled by one fused Triton kernel (`engine.triton_ops.sample_unfiltered`) when `fused`,
    by default on CUDA: the same inverse-CDF rule without writing probabilities out.
    """

    fused: bool | None = None

    def __init__(self, fused: bool | None = None):
        self.fused = fused

    def sample(self, logits: torch.Tensor, batch: SamplingBatch) -> torch.Tensor:
        fused = logits.is_cuda if self.fused is None else self.fused
        if fused and not batch.any_filter and not batch.all_greedy:
            from engine.triton_ops import sample_unfiltered

            return sample_unfiltered(logits, batch.temperature, batch.uniforms)
        return super().sample(logits, batch)

    def probs(self, logits: torch.Tensor, batch: SamplingBatch) -> torch.Tensor:
        temperature = torch.where(batch.temperature == 0, 1.0, batch.temperature)
        logits = logits.float() / temperature[:, None]
        vocab = logits.shape[-1]
        if not batch.any_filter:
            probs = logits.softmax(dim=-1)
            if not batch.any_greedy:
                return probs
            one_hot = torch.nn.functional.one_hot(logits.argmax(-1), vocab).float()
            return torch.where((batch.temperature == 0)[:, None], one_hot, probs)
        if batch.any_greedy:
            greedy = torch.nn.functional.one_hot(logits.argmax(-1), vocab).bool()
            logits = torch.where((batch.temperature == 0)[:, None] & ~greedy, float("-inf"), logits)
        sorted_logits, order = logits.sort(dim=-1, descending=True)
        ranks = torch.arange(vocab, device=logits.device)
        k = torch.where(batch.top_k > 0, batch.top_k, vocab).clamp(max=vocab)
        kth = sorted_logits.gather(1, (k - 1)[:, None])
        sorted_logits = sorted_logits.masked_fill(sorted_logits < kth, float("-inf"))
        probs = sorted_logits.softmax(dim=-1)
        exclusive = probs.cumsum(dim=-1) - probs
        # Ascending cumulative probability of a token is 1 - (mass strictly above it).
        drop = (1 - exclusive) <= (1 - batch.top_p)[:, None]
        drop[:, 0] = False
        sorted_logits = sorted_logits.masked_fill(drop & (batch.top_p < 1)[:, None], float("-inf"))
        probs = sorted_logits.softmax(dim=-1)
        drop = probs < (batch.min_p[:, None] * probs[:, :1])
        sorted_logits = sorted_logits.masked_fill(drop & (ranks > 0), float("-inf"))
        probs = sorted_logits.softmax(dim=-1)
        return torch.empty_like(probs).scatter_(1, order, probs)
