"""Turn logits into tokens: interface `Sampler` and the reference `TopKTopPSampler`."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass

import numpy as np
import torch

from engine.config import SamplingParams


@dataclass
class SamplingBatch:
    """Per-row sampling settings as tensors on the logits' device (one row per request).

    `uniforms[i]` is a U(0, 1) draw from request i's own seeded generator: sampling consumes
    exactly one per row and token, so a seeded request gets the same tokens in any batch.
    """

    temperature: torch.Tensor  # [B] float32; 0 = greedy
    top_k: torch.Tensor  # [B] int64; 0 = off
    top_p: torch.Tensor  # [B] float32; 1.0 = off
    min_p: torch.Tensor  # [B] float32; 0.0 = off
    uniforms: torch.Tensor  # [B] float64

    all_greedy: bool = False
    any_greedy: bool = True
    any_filter: bool = True

    @classmethod
    def build(
        cls, params: list[SamplingParams], uniforms: list[float], device: torch.device | str
    ) -> SamplingBatch:
        """Pack per-request settings into one host buffer and copy it over once, asynchronously."""
        rows = np.array(
            [(p.temperature, p.top_k, p.top_p, p.min_p) for p in params], dtype=np.float64
        ).reshape(-1, 4)
        host = torch.empty(5, len(params), dtype=torch.float64)
        host[:4] = torch.from_numpy(rows.T)
        host[4] = torch.from_numpy(np.asarray(uniforms, dtype=np.float64))
        if torch.device(device).type == "cuda":
            host = host.pin_memory()
        packed = host.to(device, non_blocking=True)
        greedy = rows[:, 0] == 0
        return cls(
            temperature=packed[0].float(),
            top_k=packed[1].long(),
            top_p=packed[2].float(),
            min_p=packed[3].float(),
            uniforms=packed[4],
            all_greedy=bool(greedy.all()),
            any_greedy=bool(greedy.any()),
            any_filter=bool(((rows[:, 1] > 0) | (rows[:, 2] < 1) | (rows[:, 3] > 0)).any()),
        )


class Sampler(ABC):
    """Samples one token per row of `logits` `[B, vocab]`, each row with its own settings.

    `logits` come in the model's dtype (float32 on CPU, bfloat16 on CUDA); a sampler converts
    what it needs.

    `probs(logits, batch)` returns the distribution each row samples from, `[B, vocab]`
    float32, built in transformers' order (its `generate` is our oracle):

    1. temperature: `logits / temperature` (rows with temperature 0 are greedy, see below),
    2. top-k: keep the `top_k` largest logits (ties at the k-th value may all stay),
    3. top-p: sort ascending, softmax, cumulative sum; drop tokens whose cumulative
       probability is `<= 1 - top_p`; the most likely token always stays,
    4. min-p: softmax of what is left; drop tokens with probability `< min_p * max probability`,
    5. softmax of what is left.

    `sample(logits, batch)` returns `[B]` int64 token ids: greedy rows (temperature 0) take
    `argmax(logits)`; the others take the token where the cumulative distribution of
    `probs` first exceeds `batch.uniforms[row]` (inverse-CDF sampling), so a fixed
    uniform gives a fixed token and the frequencies follow `probs` exactly.

    Example::

        batch = SamplingBatch.build([SamplingParams(temperature=0.7, top_k=50)], [0.3], "cpu")
        token = TopKTopPSampler().sample(logits, batch)      # tensor([id])

    Plug in a candidate's class with `LLMEngine(..., sampler=MySampler())`.
    """

    @abstractmethod
    def probs(self, logits: torch.Tensor, batch: SamplingBatch) -> torch.Tensor:
        """The filtered distribution per row (see the class docstring)."""

    def sample(self, logits: torch.Tensor, batch: SamplingBatch) -> torch.Tensor:
        greedy = logits.argmax(dim=-1)
        if batch.all_greedy:
            return greedy
        cdf = self.probs(logits, batch).double().cumsum(dim=-1)
        u = (batch.uniforms * cdf[:, -1]).unsqueeze(1)
        sampled = torch.searchsorted(cdf, u, right=True).squeeze(1).clamp_(max=logits.shape[-1] - 1)
        return torch.where(batch.temperature == 0, greedy, sampled)


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
