"""Trusted half of lora-bgmv: every segment's update in float32 (never sent to the sandbox;
the inputs are drawn by inputs.py in both halves)."""


def expected(case, inputs):
    y = inputs["base"].float().clone()
    bounds = inputs["seg_indptr"].tolist()
    for segment, adapter in enumerate(inputs["seg_adapters"].tolist()):
        start, end = bounds[segment], bounds[segment + 1]
        if adapter < 0 or start == end:
            continue
        shrunk = inputs["x"][start:end].float() @ inputs["lora_a"][adapter].float().T
        update = shrunk @ inputs["lora_b"][adapter].float().T
        y[start:end] += inputs["scales"][adapter] * update
    return y
