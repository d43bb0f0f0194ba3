"""The catalog: GPUs from their datasheets, models from their published configs, the
byte sizes of the number formats, and the checks every estimate makes of its arguments."""

from __future__ import annotations

from dataclasses import dataclass

from engine.config import MODELS as ENGINE_MODELS
from engine.config import ModelConfig

GB = 10**9
GIB = 2**30

WEIGHT_DTYPES = ("bf16", "fp16", "fp8", "int8", "int4")
KV_DTYPES = ("bf16", "fp16", "fp8", "int8")
DTYPE_BYTES = {"bf16": 2.0, "fp16": 2.0, "fp8": 1.0, "int8": 1.0, "int4": 0.5}

# INT4 (AWQ/GPTQ style): one fp16 scale and one fp16 zero point per group of 128 weights.
INT4_GROUP_SIZE = 128
INT4_GROUP_OVERHEAD_BYTES = 4

# vLLM's default gpu_memory_utilization: the rest is left to the CUDA context and fragmentation.
DEFAULT_MEMORY_UTILIZATION = 0.9
# Peak activations of an 8K-token prefill chunk plus CUDA graphs and allocator slack.
DEFAULT_ACTIVATION_RESERVE_BYTES = 2 * GIB
# vLLM's default paged-KV block size; a sequence's KV is rounded up to whole blocks.
DEFAULT_BLOCK_SIZE_TOKENS = 16
# Activations cross the interconnect in bf16.
ACTIVATION_BYTES = 2


@dataclass(frozen=True)
class GpuSpec:
    """One accelerator from its datasheet: dense (not sparse) tensor-core rates."""

    name: str
    title: str
    memory_bytes: int
    hbm_bytes_per_s: float
    bf16_flops_per_s: float
    fp8_flops_per_s: float  # 0 where the card has no FP8 tensor cores
    int8_ops_per_s: float
    interconnect_bytes_per_s: float  # one direction, per GPU
    interconnect: str


@dataclass(frozen=True)
class ModelSpec:
    """A decoder-only transformer's shape from its published config."""

    name: str
    title: str
    hidden_size: int
    num_layers: int
    num_heads: int
    num_kv_heads: int
    intermediate_size: int
    vocab_size: int
    tied_embeddings: bool = False
    num_experts: int = 1
    experts_per_token: int = 1
    qkv_bias: bool = False

    @classmethod
    def of_engine(cls, name: str, title: str, config: ModelConfig | None = None) -> ModelSpec:
        """The shape of the engine's own model `name` (`engine.config.MODELS`, or `config`):
        one catalog, so what the capacity model predicts is what the engine runs."""
        m = config or ENGINE_MODELS[name]
        if m.head_dim * m.num_heads != m.hidden_size:
            raise ValueError(f"{name}: the capacity model takes head_dim = hidden / heads")
        return cls(
            name, title, m.hidden_size, m.num_layers, m.num_heads, m.num_kv_heads,
            m.intermediate_size, m.vocab_size, tied_embeddings=m.tie_word_embeddings,
        )  # fmt: skip

    @property
    def head_dim(self) -> int:
        return self.hidden_size // self.num_heads

    @property
    def is_moe(self) -> bool:
        return self.num_experts > 1


GPUS: dict[str, GpuSpec] = {
    g.name: g
    for g in (
        GpuSpec("h100-sxm", "NVIDIA H100 SXM 80GB", 80 * GB, 3.35e12, 989.4e12, 1978.9e12,
                1978.9e12, 450e9, "NVLink 4 (900 GB/s bidirectional)"),
        GpuSpec("h200", "NVIDIA H200 SXM 141GB", 141 * GB, 4.8e12, 989.4e12, 1978.9e12,
                1978.9e12, 450e9, "NVLink 4 (900 GB/s bidirectional)"),
        GpuSpec("a100-80gb", "NVIDIA A100 SXM 80GB", 80 * GB, 2.039e12, 312e12, 0.0, 624e12,
                300e9, "NVLink 3 (600 GB/s bidirectional)"),
        GpuSpec("a100-40gb", "NVIDIA A100 SXM 40GB", 40 * GB, 1.555e12, 312e12, 0.0, 624e12,
                300e9, "NVLink 3 (600 GB/s bidirectional)"),
        GpuSpec("l4", "NVIDIA L4 24GB", 24 * GB, 300e9, 121e12, 242.5e12, 242.5e12, 32e9,
                "PCIe Gen4 x16 (64 GB/s bidirectional)"),
        GpuSpec("l40s", "NVIDIA L40S 48GB", 48 * GB, 864e9, 362.05e12, 733e12, 733e12, 32e9,
                "PCIe Gen4 x16 (64 GB/s bidirectional)"),
    )
}  # fmt: skip

MODELS: dict[str, ModelSpec] = {
    m.name: m
    for m in (
        ModelSpec("llama-3-8b", "Llama 3 8B", 4096, 32, 32, 8, 14336, 128256),
        ModelSpec("llama-3-70b", "Llama 3 70B", 8192, 80, 64, 8, 28672, 128256),
        ModelSpec("mixtral-8x7b", "Mixtral 8x7B", 4096, 32, 32, 8, 14336, 32000,
                  num_experts=8, experts_per_token=2),
        ModelSpec("qwen2.5-7b", "Qwen2.5 7B", 3584, 28, 28, 4, 18944, 152064, qkv_bias=True),
        ModelSpec.of_engine("smollm2-135m", "SmolLM2 135M", ENGINE_MODELS["smollm2-135m-random"]),
        ModelSpec.of_engine("smollm2-135m-random", "SmolLM2-135M shape, random weights"),
        ModelSpec.of_engine("llama-1b-random", "~1B Llama shape, random weights"),
    )
}  # fmt: skip


def gpu_spec(name: str) -> GpuSpec:
    """The catalog GPU called `name`; ValueError listing the valid names otherwise."""
    try:
        return GPUS[name]
    except KeyError:
        raise ValueError(f"unknown GPU {name!r}; choose from {', '.join(GPUS)}") from None


def model_spec(name: str) -> ModelSpec:
    """The catalog model called `name`; ValueError listing the valid names otherwise."""
    try:
        return MODELS[name]
    except KeyError:
        raise ValueError(f"unknown model {name!r}; choose from {', '.join(MODELS)}") from None


def _check_choice(kind: str, value: str, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise ValueError(f"unknown {kind} {value!r}; choose from {', '.join(choices)}")


def _check_positive(**values: float) -> None:
    for name, value in values.items():
        if value <= 0:
            raise ValueError(f"{name} must be positive, got {value}")


def _check_tp(model: ModelSpec, tp: int) -> None:
    _check_positive(tp=tp)
    if model.num_heads % tp:
        raise ValueError(
            f"tp={tp} does not divide {model.name}'s {model.num_heads} attention heads"
        )
