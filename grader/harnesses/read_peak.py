"""A streaming read of a whole buffer: the card's read bandwidth for :func:`timing.card_peaks`.

A kernel that mostly reads (paged decode reads a gigabyte of KV cache and writes half a
megabyte) can beat a device-to-device copy, whose reads and writes share the bus
(grader/README.md, "The card's peaks"). Not a harness kind: only ``card_peaks`` imports it,
in the trusted worker, so no sandbox loads Triton for it.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

# Each program reads STEPS blocks of BLOCK float32 with WARPS warps and writes one partial sum.
# Which shape keeps the most loads in flight differs by card and compiler, so `card_peaks` times
# each of these and keeps the fastest; warps, not the block's shape, made most of the difference
# (their speeds on an H200: grader/README.md, "The card's peaks").
VARIANTS = ((2048, 8, 16), (8192, 2, 16), (32768, 1, 16), (4096, 16, 8))
CHUNK_ELEMENTS = max(block * steps for block, steps, _ in VARIANTS)


@triton.jit
def _read_kernel(source, partial, BLOCK: tl.constexpr, STEPS: tl.constexpr):
    start = tl.program_id(0).to(tl.int64) * BLOCK * STEPS
    offsets = tl.arange(0, BLOCK)
    total = tl.zeros([BLOCK], dtype=tl.float32)
    for step in range(STEPS):
        total += tl.load(source + start + step * BLOCK + offsets)
    tl.store(partial + tl.program_id(0), tl.sum(total, axis=0))


def read_all(source: torch.Tensor, block: int, steps: int, warps: int) -> torch.Tensor:
    """Every float32 of ``source`` read once; returns one partial sum per ``block * steps``.

    ``source`` is contiguous float32 whose size is a multiple of ``CHUNK_ELEMENTS`` (which every
    variant's chunk divides).
    """
    if source.dtype != torch.float32 or source.numel() % CHUNK_ELEMENTS:
        raise ValueError(f"read_all needs float32 in multiples of {CHUNK_ELEMENTS} elements")
    programs = source.numel() // (block * steps)
    partial = torch.empty(programs, dtype=torch.float32, device=source.device)
    _read_kernel[(programs,)](source, partial, BLOCK=block, STEPS=steps, num_warps=warps)
    return partial
