"""What machine is this: CPU model, cores, memory, and the GPU when CUDA is present.

Every timing InferPrep stores is stored with this record, so a number measured on an H100 is
never compared with one measured on a laptop.
"""

from __future__ import annotations

import os
import platform
from dataclasses import asdict, dataclass, field
from functools import lru_cache


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

    def as_dict(self) -> dict:
        return asdict(self) | {"label": self.label}


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
    gpus = []
    if torch.cuda.is_available():
        driver = _nvidia_driver()
        for index in range(torch.cuda.device_count()):
            props = torch.cuda.get_device_properties(index)
            gpus.append(
                GpuInfo(
                    name=props.name,
                    memory_bytes=int(props.total_memory),
                    driver=driver,
                    cuda=str(torch.version.cuda or ""),
                    capability=f"{props.major}.{props.minor}",
                )
            )
    return gpus, torch.__version__, triton_version


@lru_cache(maxsize=1)
def detect_hardware() -> Hardware:
    """Describe this machine once per process (torch is imported only if installed)."""
    gpus, torch_version, triton_version = _gpus()
    return Hardware(
        cpu_model=_cpu_model(),
        cpu_count=os.cpu_count() or 1,
        memory_bytes=_memory_bytes(),
        gpus=gpus,
        torch=torch_version,
        triton=triton_version,
    )
