"""What machine is this: CPU model, cores, memory, and the GPU when CUDA is present.

Every timing InferPrep stores is stored with this record, so a number measured on an H100 is
never compared with one measured on a laptop.
"""

from __future__ import annotations

import os
import platform
import re
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from typing import Any

# Words in a card's name that say nothing about which card it is.
CARD_NAME_NOISE = ("nvidia", "geforce", "tesla", "quadro", "amd", "instinct", "radeon")


@dataclass(frozen=True)
class GpuInfo:
    name: str
    memory_bytes: int
    driver: str
    cuda: str
    capability: str


@dataclass(frozen=True)
class Hardware:
    cpu_model: str
    cpu_count: int
    memory_bytes: int
    gpus: list[GpuInfo] = field(default_factory=list)
    torch: str = ""
    triton: str = ""

    @property
    def label(self) -> str:
        """A short name for tables and leaderboards: the GPU name, else the CPU model."""
        return self.gpus[0].name if self.gpus else self.cpu_model

    @property
    def card_class(self) -> str:
        """The class of the first GPU (``h100``), or "" with none: see :func:`card_class`."""
        return card_class(self.gpus[0].name) if self.gpus else ""

    def as_dict(self) -> dict:
        return asdict(self) | {"label": self.label, "card_class": self.card_class}


def card_class(name: str) -> str:
    """The class of a card from its name: the model without vendor or memory words.

    Cards of one class time a kernel alike, so they share a queue and a leaderboard:
    ``card_class("NVIDIA H100 80GB HBM3") == "h100"``, ``"NVIDIA H200" -> "h200"``,
    ``"NVIDIA A100-SXM4-80GB" -> "a100"``, ``"NVIDIA GeForce RTX 4090" -> "rtx4090"``.
    """
    words = [w for w in re.split(r"[^a-z0-9]+", name.lower()) if w and w not in CARD_NAME_NOISE]
    for word in words:
        # A model number: letters then digits (h100, a100, l40s, b200, mi300x).
        if re.fullmatch(r"[a-z]{1,3}\d{2,4}[a-z]?", word):
            return word
    # Series words apart from the number (RTX 4090): the first two words together.
    return "".join(words[:2]) or "unknown"


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _memory_bytes() -> int:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return 0


def _nvidia_driver() -> str:
    try:
        with open("/proc/driver/nvidia/version", encoding="utf-8") as version:
            first = version.readline()
    except OSError:
        return ""
    for word in first.split():
        if word.count(".") >= 1 and word.replace(".", "").isdigit():
            return word
    return ""


def gpus_probe(cuda: Any, cuda_version: str, driver: str) -> list[GpuInfo]:
    """The cards ``cuda`` (``torch.cuda``, or an object with its ``is_available``,
    ``device_count`` and ``get_device_properties``) sees; none when it is not available."""
    if not cuda.is_available():
        return []
    gpus = []
    for index in range(cuda.device_count()):
        props = cuda.get_device_properties(index)
        gpus.append(
            GpuInfo(
                name=props.name,
                memory_bytes=int(props.total_memory),
                driver=driver,
                cuda=cuda_version,
                capability=f"{props.major}.{props.minor}",
            )
        )
    return gpus


def _gpus() -> tuple[list[GpuInfo], str, str]:
    try:
        import torch
    except ImportError:
        return [], "", ""
    try:
        import triton

        triton_version = triton.__version__
    except ImportError:
        triton_version = ""
    gpus = gpus_probe(torch.cuda, str(torch.version.cuda or ""), _nvidia_driver())
    return gpus, torch.__version__, triton_version


def hardware_probe() -> Hardware:
    """Describe this machine now (torch is imported only if installed)."""
    gpus, torch_version, triton_version = _gpus()
    return Hardware(
        cpu_model=_cpu_model(),
        cpu_count=os.cpu_count() or 1,
        memory_bytes=_memory_bytes(),
        gpus=gpus,
        torch=torch_version,
        triton=triton_version,
    )


@lru_cache(maxsize=1)
def detect_hardware() -> Hardware:
    """Describe this machine once per process: :func:`hardware_probe`, cached."""
    return hardware_probe()
