"""Turn logits into tokens: the `Sampler` interface, its input `SamplingBatch`, and the
inverse-CDF rule every sampler draws by (the reference implementation is
`engine/topk_topp_sampler.py`)."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import torch

from engine.config import SamplingParams

if TYPE_CHECKING:
    from engine.sequence import Sequence


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
        return cls.unpack(host.to(device, non_blocking=True), host)

    @classmethod
    def of(cls, seqs: list[Sequence], device: torch.device | str) -> SamplingBatch:
        """The batch of `seqs`, drawing one uniform from each sequence's own generator."""
        return cls.build([s.params for s in seqs], [s.rng.random() for s in seqs], device)

    @classmethod
    def unpack(cls, packed: torch.Tensor, host: torch.Tensor | None = None) -> SamplingBatch:
        """The batch of `packed` `[5, B]` float64 rows (temperature, top_k, top_p, min_p,
        uniforms), as `pack` writes them; `host` is the same on the CPU when `packed` is not."""
        host = packed if host is None else host
        greedy = host[0] == 0
        return cls(
            temperature=packed[0].float(),
            top_k=packed[1].long(),
            top_p=packed[2].float(),
            min_p=packed[3].float(),
            uniforms=packed[4],
            all_greedy=bool(greedy.all()),
            any_greedy=bool(greedy.any()),
            any_filter=bool(((host[1] > 0) | (host[2] < 1) | (host[3] > 0)).any()),
        )

    def pack(self) -> torch.Tensor:
        """`[5, B]` float64 on the CPU: temperature, top_k, top_p, min_p and uniforms per row."""
        columns = (self.temperature, self.top_k, self.top_p, self.min_p, self.uniforms)
        return torch.stack([column.double().cpu() for column in columns])


def sample_inverse_cdf(weights: torch.Tensor, uniforms: torch.Tensor) -> torch.Tensor:
    """`[B]` int64: per row, the first token whose cumulative weight, summed in token-id order,
    exceeds `uniforms[row]` times the row's total (the weights need not be normalised)."""
    cdf = weights.double().cumsum(dim=-1)
    u = (uniforms * cdf[:, -1]).unsqueeze(1)
    return torch.searchsorted(cdf, u, right=True).squeeze(1).clamp_(max=weights.shape[-1] - 1)


class Sampler(ABC):
    """Samples one token per row of `logits` `[B, vocab]`, each row with its own settings.

    `logits` come in the model's dtype (float32 on CPU, bfloat16 on CUDA); a sampler converts
    what it needs.

    `probs(logits, batch)` returns the distribution each row samples from, `[B, vocab]`
    float32, built in transformers' order (its `generate` is our oracle):

    1. temperature: `logits / temperature` (rows with temperature 0 are greedy, see below),
    2. top-k: keep the `top_k` largest logits (ties at the k-th value all stay),
    3. top-p: sort ascending, softmax, cumulative sum; drop tokens whose cumulative
       probability is `<= 1 - top_p`; the most likely token always stays,
    4. min-p: softmax of what is left; drop tokens with probability `< min_p * max probability`,
    5. softmax of what is left.

    `sample(logits, batch)` returns `[B]` int64 token ids, one fixed token per row and
    uniform, so a seeded request reproduces in any batch:

    - a greedy row (temperature 0) takes the first index of the largest logit;
    - any other row takes, with `u = batch.uniforms[row]`, the first token (in token-id
      order, `0 .. vocab - 1`) whose cumulative probability exceeds `u` times the row's
      total: `sample_inverse_cdf(probs, batch.uniforms)`. Token `t` is drawn exactly when
      `u` falls in `[cdf[t - 1], cdf[t])` (normalised), so the frequencies follow `probs`.

    Summed in float32 a cumulative probability may differ from the exact one in its last
    bits, so a uniform that lies within that rounding of a bin edge may select either
    neighbour; anything else must give exactly the token the rule gives.

    Example::

        batch = SamplingBatch.build([SamplingParams(temperature=0.7, top_k=50)], [0.3], "cpu")
        token = MySampler().sample(logits, batch)      # tensor([id])

    Plug in a candidate's class with `LLMEngine(..., sampler=MySampler())`.
    """

    @abstractmethod
    def probs(self, logits: torch.Tensor, batch: SamplingBatch) -> torch.Tensor:
        """The filtered distribution per row (see the class docstring)."""

    def sample(self, logits: torch.Tensor, batch: SamplingBatch) -> torch.Tensor:
        greedy = logits.argmax(dim=-1)
        if batch.all_greedy:
            return greedy
        sampled = sample_inverse_cdf(self.probs(logits, batch), batch.uniforms)
        return torch.where(batch.temperature == 0, greedy, sampled)
