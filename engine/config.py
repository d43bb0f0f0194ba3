"""Small validated dataclasses: the model's shape, the engine's limits, a request's sampling."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ModelConfig:
    """A Llama-family decoder's shape (RMSNorm, RoPE, grouped-query attention, SwiGLU)."""

    name: str
    vocab_size: int
    hidden_size: int
    intermediate_size: int
    num_layers: int
    num_heads: int
    num_kv_heads: int
    head_dim: int
    rms_norm_eps: float = 1e-5
    rope_theta: float = 10000.0
    max_position: int = 8192
    tie_word_embeddings: bool = True
    eos_token_id: int = 2
    init_std: float = 0.02

    def __post_init__(self) -> None:
        if self.num_heads % self.num_kv_heads:
            raise ValueError("num_heads must be a multiple of num_kv_heads")

    def to_hf(self):
        """The equivalent `transformers.LlamaConfig` (the oracle's model)."""
        from transformers import LlamaConfig

        return LlamaConfig(
            vocab_size=self.vocab_size,
            hidden_size=self.hidden_size,
            intermediate_size=self.intermediate_size,
            num_hidden_layers=self.num_layers,
            num_attention_heads=self.num_heads,
            num_key_value_heads=self.num_kv_heads,
            head_dim=self.head_dim,
            rms_norm_eps=self.rms_norm_eps,
            rope_theta=self.rope_theta,
            max_position_embeddings=self.max_position,
            tie_word_embeddings=self.tie_word_embeddings,
            eos_token_id=self.eos_token_id,
            bos_token_id=1,
            pad_token_id=0,
            initializer_range=self.init_std,
        )

    @classmethod
    def from_hf(cls, name: str, hf) -> ModelConfig:
        rope = getattr(hf, "rope_parameters", None) or {}
        return cls(
            name=name,
            vocab_size=hf.vocab_size,
            hidden_size=hf.hidden_size,
            intermediate_size=hf.intermediate_size,
            num_layers=hf.num_hidden_layers,
            num_heads=hf.num_attention_heads,
            num_kv_heads=hf.num_key_value_heads,
            head_dim=getattr(hf, "head_dim", None) or hf.hidden_size // hf.num_attention_heads,
            rms_norm_eps=hf.rms_norm_eps,
            rope_theta=rope.get("rope_theta", getattr(hf, "rope_theta", 10000.0)),
            max_position=hf.max_position_embeddings,
            tie_word_embeddings=hf.tie_word_embeddings,
            eos_token_id=hf.eos_token_id if isinstance(hf.eos_token_id, int) else 2,
        )

    def weight_bytes(self, dtype_bytes: int) -> int:
        """Bytes of weights one forward pass reads (a tied LM head is read twice: once as embedding rows, once whole)."""
        attn = self.hidden_size * self.head_dim * (2 * self.num_heads + 2 * self.num_kv_heads)
        mlp = 3 * self.hidden_size * self.intermediate_size
        per_layer = attn + mlp + 2 * self.hidden_size
        head = self.vocab_size * self.hidden_size
        return dtype_bytes * (self.num_layers * per_layer + head + self.hidden_size)

    def kv_bytes_per_token(self, dtype_bytes: int) -> int:
        return dtype_bytes * 2 * self.num_layers * self.num_kv_heads * self.head_dim


# Random-weight configs: `init_std` 0.2 spreads the tiny model's logits so greedy ties are rare.
MODELS: dict[str, ModelConfig] = {
    "tiny": ModelConfig(
        name="tiny",
        vocab_size=10240,
        hidden_size=64,
        intermediate_size=128,
        num_layers=2,
        num_heads=4,
        num_kv_heads=2,
        head_dim=16,
        max_position=2048,
        init_std=0.2,
    ),
    "smollm2-135m-random": ModelConfig(
        name="smollm2-135m-random",
        vocab_size=49152,
        hidden_size=576,
        intermediate_size=1536,
        num_layers=30,
        num_heads=9,
        num_kv_heads=3,
        head_dim=64,
        rope_theta=100000.0,
        max_position=8192,
    ),
    "llama-1b-random": ModelConfig(
        name="llama-1b-random",
        vocab_size=128256,
        hidden_size=2048,
        intermediate_size=8192,
        num_layers=16,
        num_heads=32,
        num_kv_heads=8,
        head_dim=64,
        rope_theta=500000.0,
        max_position=131072,
        eos_token_id=128001,
    ),
}
MODEL_NAMES = ("tiny", "smollm2-135m", "smollm2-135m-random", "llama-1b-random")


@dataclass(frozen=True)
class EngineConfig:
    """Limits and switches of one engine instance.

    `num_kv_blocks` None means: 256 MiB of KV cache (at most 4096 blocks) on CPU, or `gpu_memory_fraction` of the free GPU
    memory after the weights are loaded.

    `async_scheduling` overlaps the host with the GPU: step N+1 is scheduled and launched
    while step N still runs, its sampled tokens standing in as placeholders (negative ids)
    that the GPU fills in; a request that stops computes one token more that is thrown away.
    """

    block_size: int = 16
    num_kv_blocks: int | None = None
    max_num_seqs: int = 256
    max_num_batched_tokens: int = 8192
    max_model_len: int = 4096
    enable_prefix_caching: bool = True
    device: str = "cpu"
    dtype: str = "float32"
    attention: str = "torch"
    cuda_graphs: bool = False
    fused_ops: bool = False
    async_scheduling: bool = False
    gpu_memory_fraction: float = 0.8
    num_speculative_tokens: int = 0
    draft_layers: int = 0

    def __post_init__(self) -> None:
        if self.block_size < 1 or self.max_num_seqs < 1 or self.max_num_batched_tokens < 1:
            raise ValueError("block_size, max_num_seqs and max_num_batched_tokens must be >= 1")
        if self.num_kv_blocks is not None and self.num_kv_blocks < 1:
            raise ValueError("num_kv_blocks must be >= 1")
        if self.attention not in ("torch", "triton"):
            raise ValueError("attention must be 'torch' or 'triton'")
        if self.async_scheduling and self.num_speculative_tokens:
            raise ValueError("async scheduling does not run speculative decoding")
        if self.num_speculative_tokens and self.draft_layers < 1:
            raise ValueError("speculative decoding needs draft_layers >= 1")


@dataclass(frozen=True)
class SamplingParams:
    """How one request samples: temperature, then top-k, top-p, min-p (transformers' order).

    temperature 0 means greedy. top_k 0 and top_p 1.0 and min_p 0.0 switch those filters off.
    seed None draws a fresh seed; a fixed seed reproduces the same tokens in any batch.
    """

    temperature: float = 1.0
    top_k: int = 0
    top_p: float = 1.0
    min_p: float = 0.0
    max_tokens: int = 16
    seed: int | None = None
    ignore_eos: bool = False

    def validate(self) -> None:
        """Raise ValueError naming the first invalid field."""
        if not self.temperature >= 0.0:
            raise ValueError(f"temperature must be >= 0, got {self.temperature}")
        if self.top_k < 0:
            raise ValueError(f"top_k must be >= 0 (0 = off), got {self.top_k}")
        if not 0.0 < self.top_p <= 1.0:
            raise ValueError(f"top_p must be in (0, 1], got {self.top_p}")
        if not 0.0 <= self.min_p <= 1.0:
            raise ValueError(f"min_p must be in [0, 1], got {self.min_p}")
        if self.max_tokens < 1:
            raise ValueError(f"max_tokens must be >= 1, got {self.max_tokens}")
