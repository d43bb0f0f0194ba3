"""A Llama-family decoder over the paged KV cache: RMSNorm, RoPE, GQA attention, SwiGLU MLP.

Q, K and V share one fused projection, gate and up another; the residual add is fused into
the next norm; the LM head runs only on the rows that need logits. With `use_fused_ops()`
(CUDA), norms, RoPE and the SwiGLU activation run as single Triton kernels
(`engine/triton_ops.py`); the torch code here is their reference.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from engine.attention import AttentionBackend, AttentionMetadata
from engine.config import ModelConfig


class RMSNorm(nn.Module):
    """`x / rms(x) * weight` in float32, with the residual add fused in (as transformers does)."""

    def __init__(self, size: int, eps: float):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(size))
        self.eps = eps
        self.fused = False

    def forward(
        self, x: torch.Tensor, residual: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        if self.fused:
            from engine.triton_ops import add_rmsnorm

            return add_rmsnorm(x, residual, self.weight, self.eps)
        if residual is not None:
            x = x + residual
        residual = x
        x32 = x.float()
        x32 = x32 * torch.rsqrt(x32.pow(2).mean(-1, keepdim=True) + self.eps)
        return self.weight * x32.to(x.dtype), residual


class RotaryEmbedding(nn.Module):
    """Llama's rotary position embedding (rotate-half form), cos/sin cached per position."""

    def __init__(self, head_dim: int, theta: float, max_position: int):
        super().__init__()
        inv_freq = 1.0 / (
            theta ** (torch.arange(0, head_dim, 2, dtype=torch.int64).float() / head_dim)
        )
        freqs = torch.arange(max_position, dtype=torch.float32)[:, None] * inv_freq[None, :]
        emb = torch.cat((freqs, freqs), dim=-1)
        self.register_buffer("cos", emb.cos(), persistent=False)
        self.register_buffer("sin", emb.sin(), persistent=False)

    def forward(self, x: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
        cos = self.cos[positions].to(x.dtype)[:, None, :]
        sin = self.sin[positions].to(x.dtype)[:, None, :]
        half = x.shape[-1] // 2
        rotated = torch.cat((-x[..., half:], x[..., :half]), dim=-1)
        return x * cos + rotated * sin


class Attention(nn.Module):
    def __init__(self, config: ModelConfig):
        super().__init__()
        self.num_heads, self.num_kv_heads = config.num_heads, config.num_kv_heads
        self.head_dim = config.head_dim
        self.q_size = config.num_heads * config.head_dim
        self.kv_size = config.num_kv_heads * config.head_dim
        self.qkv_proj = nn.Linear(config.hidden_size, self.q_size + 2 * self.kv_size, bias=False)
        self.o_proj = nn.Linear(self.q_size, config.hidden_size, bias=False)
        self.scale = config.head_dim**-0.5
        self.fused = False

    def forward(self, x, positions, rope, k_cache, v_cache, meta, backend: AttentionBackend):
        q, k, v = self.qkv_proj(x).split([self.q_size, self.kv_size, self.kv_size], dim=-1)
        q = q.view(-1, self.num_heads, self.head_dim)
        k = k.view(-1, self.num_kv_heads, self.head_dim)
        v = v.view(-1, self.num_kv_heads, self.head_dim)
        if self.fused:
            from engine.triton_ops import rope_

            rope_(q, k, rope.cos, rope.sin, positions)
        else:
            q, k = rope(q, positions), rope(k, positions)
        out = backend.forward(q, k, v, k_cache, v_cache, meta, self.scale)
        return self.o_proj(out.flatten(1))


class MLP(nn.Module):
    def __init__(self, config: ModelConfig):
        super().__init__()
        self.gate_up_proj = nn.Linear(config.hidden_size, 2 * config.intermediate_size, bias=False)
        self.down_proj = nn.Linear(config.intermediate_size, config.hidden_size, bias=False)
        self.fused = False

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.fused:
            from engine.triton_ops import silu_mul

            return self.down_proj(silu_mul(self.gate_up_proj(x)))
        gate, up = self.gate_up_proj(x).chunk(2, dim=-1)
        return self.down_proj(F.silu(gate) * up)


class DecoderLayer(nn.Module):
    def __init__(self, config: ModelConfig):
        super().__init__()
        self.input_layernorm = RMSNorm(config.hidden_size, config.rms_norm_eps)
        self.self_attn = Attention(config)
        self.post_attention_layernorm = RMSNorm(config.hidden_size, config.rms_norm_eps)
        self.mlp = MLP(config)

    def forward(self, x, residual, positions, rope, k_cache, v_cache, meta, backend):
        x, residual = self.input_layernorm(x, residual)
        x = self.self_attn(x, positions, rope, k_cache, v_cache, meta, backend)
        x, residual = self.post_attention_layernorm(x, residual)
        return self.mlp(x), residual


class LlamaModel(nn.Module):
    """The decoder. `forward` returns final hidden states; `compute_logits` applies the head.

    `num_layers` runs only the first layers: the speculative draft model is this truncation.
    """

    def __init__(self, config: ModelConfig):
        super().__init__()
        self.config = config
        self.embed_tokens = nn.Embedding(config.vocab_size, config.hidden_size)
        self.layers = nn.ModuleList(DecoderLayer(config) for _ in range(config.num_layers))
        self.norm = RMSNorm(config.hidden_size, config.rms_norm_eps)
        self.lm_head = nn.Linear(config.hidden_size, config.vocab_size, bias=False)
        if config.tie_word_embeddings:
            self.lm_head.weight = self.embed_tokens.weight
        self.rope = RotaryEmbedding(config.head_dim, config.rope_theta, config.max_position)

    def forward(
        self,
        input_ids: torch.Tensor,
        positions: torch.Tensor,
        kv_cache: torch.Tensor,
        meta: AttentionMetadata,
        backend: AttentionBackend,
        num_layers: int | None = None,
    ) -> torch.Tensor:
        """Hidden states `[T, hidden]` before the final norm's residual-free output."""
        x, residual = self.embed_tokens(input_ids), None
        for index, layer in enumerate(self.layers[:num_layers]):
            x, residual = layer(
                x,
                residual,
                positions,
                self.rope,
                kv_cache[index, 0],
                kv_cache[index, 1],
                meta,
                backend,
            )
        return self.norm(x, residual)[0]

    def use_fused_ops(self) -> None:
        """Run norms, RoPE and SwiGLU as fused Triton kernels (needs Triton: CUDA, or the
        interpreter on CPU)."""
        for module in self.modules():
            if hasattr(module, "fused"):
                module.fused = True

    def compute_logits(self, hidden: torch.Tensor) -> torch.Tensor:
        return self.lm_head(hidden)

    @torch.no_grad()
    def load_hf_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        """Copy weights from a transformers `LlamaForCausalLM` state dict, fusing projections."""
        own = {}
        for name, tensor in state.items():
            name = name.removeprefix("model.")
            if ".k_proj." in name or ".v_proj." in name or ".up_proj." in name:
                continue
            if ".q_proj." in name:
                prefix = name.replace("q_proj.weight", "")
                tensor = torch.cat(
                    [
                        tensor,
                        state[f"model.{prefix}k_proj.weight"],
                        state[f"model.{prefix}v_proj.weight"],
                    ]
                )
                name = prefix + "qkv_proj.weight"
            elif ".gate_proj." in name:
                prefix = name.replace("gate_proj.weight", "")
                tensor = torch.cat([tensor, state[f"model.{prefix}up_proj.weight"]])
                name = prefix + "gate_up_proj.weight"
            own[name] = tensor
        if self.config.tie_word_embeddings:
            own.pop("lm_head.weight", None)
            own["lm_head.weight"] = own["embed_tokens.weight"]
        missing, unexpected = self.load_state_dict(own, strict=False)
        missing = [name for name in missing if not name.startswith("rope.")]
        if missing or unexpected:
            raise ValueError(f"weights do not fit: missing {missing}, unexpected {unexpected}")
