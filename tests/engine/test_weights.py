"""The GGUF weights: pinned hash, quick no-op fetch, clear errors when missing or corrupt."""

from __future__ import annotations

import time

import pytest

from engine import weights


def test_fetch_is_a_quick_no_op_when_verified():
    weights.fetch()
    start = time.perf_counter()
    assert weights.fetch() == weights.gguf_path()
    assert time.perf_counter() - start < 0.5


def test_missing_file_names_the_fetch_command(tmp_path, monkeypatch):
    monkeypatch.setenv("INFERPREP_MODELS_DIR", str(tmp_path))
    with pytest.raises(weights.WeightsMissing, match="make weights"):
        weights.require_gguf()


def test_corrupt_file_fails_the_hash(tmp_path, monkeypatch):
    monkeypatch.setenv("INFERPREP_MODELS_DIR", str(tmp_path))
    (tmp_path / weights.GGUF_NAME).write_bytes(b"not a gguf")
    assert not weights.is_verified(weights.gguf_path())
    with pytest.raises(weights.WeightsMissing, match="SHA-256"):
        weights.require_gguf()


def test_tokenizer_and_chat_template_come_from_the_gguf():
    tokenizer = weights.load_tokenizer()
    text = tokenizer.apply_chat_template(
        [{"role": "user", "content": "hi"}], tokenize=False, add_generation_prompt=True
    )
    assert text.endswith("<|im_start|>assistant\n")
    assert tokenizer("The capital of France is").input_ids == [504, 3575, 282, 4649, 314]
