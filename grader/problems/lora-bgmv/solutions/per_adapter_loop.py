def lora_apply(x, base, lora_a, lora_b, scales, seg_indptr, seg_adapters, max_seg_len: int):
    """The per-adapter loop of torch matmuls (what a first multi-LoRA server runs): for each
    segment, two matmuls and an add; the segment bounds are read on the host."""
    y = base.clone()
    bounds = seg_indptr.tolist()
    for segment, adapter in enumerate(seg_adapters.tolist()):
        start, end = bounds[segment], bounds[segment + 1]
        if adapter < 0 or start == end:
            continue
        update = (x[start:end] @ lora_a[adapter].T) @ lora_b[adapter].T
        y[start:end] += (scales[adapter] * update.float()).to(y.dtype)
    return y
