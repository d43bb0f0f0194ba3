"""Engine test fixtures: real transformers models as the oracle (no mocks)."""

from __future__ import annotations

import os
import random

import pytest
import torch

if not torch.cuda.is_available():
    # Triton kernels run on CPU only through the interpreter; it must be on before they are defined.
    os.environ.setdefault("TRITON_INTERPRET", "1")

from engine.config import EngineConfig, ModelConfig  # noqa: E402
from engine.llm_engine import LLMEngine  # noqa: E402
from engine.weights import build_hf_model  # noqa: E402


@pytest.fixture(scope="session")
def tiny_hf():
    return build_hf_model("tiny")


@pytest.fixture(scope="session")
def smol_hf():
    return build_hf_model("smollm2-135m")


def make_engine(hf, name: str = "tiny", **config) -> LLMEngine:
    """An engine holding the same weights as the transformers model `hf`."""
    parts = {
        key: config.pop(key)
        for key in list(config)
        if key.endswith("_cls") or key in ("attention", "sampler", "static")
    }
    return LLMEngine(
        ModelConfig.from_hf(name, hf.config),
        EngineConfig(**config),
        state_dict=hf.state_dict(),
        **parts,
    )


def hf_greedy(hf, prompt: list[int], max_tokens: int) -> list[int]:
    """transformers' greedy `generate` on one unpadded prompt (stops at EOS, which it keeps)."""
    with torch.no_grad():
        out = hf.generate(
            torch.tensor([prompt]),
            attention_mask=torch.ones(1, len(prompt), dtype=torch.long),
            max_new_tokens=max_tokens,
            do_sample=False,
            pad_token_id=0,
        )
    return out[0, len(prompt) :].tolist()


def random_prompts(count: int, vocab: int, lengths: list[int], seed: int = 0) -> list[list[int]]:
    rng = random.Random(seed)
    return [
        [rng.randint(3, vocab - 1) for _ in range(lengths[i % len(lengths)])] for i in range(count)
    ]
