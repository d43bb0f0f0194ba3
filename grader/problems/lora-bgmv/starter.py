import torch
import triton  # noqa: F401  (for the candidate)
import triton.language as tl  # noqa: F401


def lora_apply(
    x: torch.Tensor,
    base: torch.Tensor,
    lora_a: torch.Tensor,
    lora_b: torch.Tensor,
    scales: torch.Tensor,
    seg_indptr: torch.Tensor,
    seg_adapters: torch.Tensor,
    max_seg_len: int,
) -> torch.Tensor:
    """Batched multi-LoRA: each segment of rows adds its own adapter's low-rank update.

    x: [tokens, d_in]; base: [tokens, d_out], the dense layer's x @ W.T (bf16 or fp16);
    lora_a: [num_adapters, rank, d_in]; lora_b: [num_adapters, d_out, rank] (PEFT's
    lora_A.weight and lora_B.weight, stacked); scales: float32 [num_adapters] (alpha / rank);
    seg_indptr: int32 [num_segments + 1], 0 = seg_indptr[0] <= ... <= seg_indptr[-1] = tokens;
    seg_adapters: int32 [num_segments], an adapter index or -1 (no adapter: y = base);
    max_seg_len: the longest segment's length (a host int, so no sync is needed).
    Rows seg_indptr[s] to seg_indptr[s + 1] - 1 use adapter i = seg_adapters[s]:
        y[rows] = base[rows] + scales[i] * (x[rows] @ lora_a[i].T) @ lora_b[i].T
    Returns y, [tokens, d_out], in base's dtype. Decode is one row per segment (BGMV);
    prefill is a few long segments (SGMV); a segment may be empty.

    Example: seg_indptr = [0, 2, 3], seg_adapters = [5, -1]: rows 0 and 1 use adapter 5,
    row 2 is base[2] unchanged.
    """
    raise NotImplementedError
