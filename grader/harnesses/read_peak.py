"""A streaming read of a whole buffer: the card's read bandwidth for :func:`timing.card_peaks`.

A kernel that mostly reads (paged decode reads a gigabyte of KV cache and writes half a
megabyte) can beat a device-to-device copy, whose reads and writes share the bus: on the H200
the paged-decode reference read 4,280 GB/s where the copy measured 4,175 (2026-12-02). Not a
harness kind: only ``card_peaks`` imports it, in the trusted worker, so no sandbox loads Triton
for it.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

# Each program reads STEPS blocks of BLOCK float32 (256 KiB) and writes one partial sum: 16 KiB
# of loads in flight per program and several programs per SM keep every memory channel busy.
BLOCK = 4096
STEPS = 16
CHUNK_ELEMENTS = BLOCK * STEPS


@triton.jit
def _read_kernel(source, partial, BLOCK: tl.constexpr, STEPS: tl.constexpr):
    start = tl.program_id(0).to(tl.int64) * BLOCK * STEPS
    offsets = tl.arange(0, BLOCK)
    total = tl.zeros([BLOCK], dtype=tl.float32)
    for step in range(STEPS):
        total += tl.load(source + start + step * BLOCK + offsets)
    tl.store(partial + tl.program_id(0), tl.sum(total, axis=0))


def read_all(source: torch.Tensor) -> torch.Tensor:
    """Every float32 of ``source`` read once; returns one partial sum per 256 KiB chunk.

    ``source`` is contiguous float32 whose size is a multiple of ``CHUNK_ELEMENTS``.
    """
    if source.dtype != torch.float32 or source.numel() % CHUNK_ELEMENTS:
        raise ValueError(f"read_all needs float32 in multiples of {CHUNK_ELEMENTS} elements")
    programs = source.numel() // CHUNK_ELEMENTS
    partial = torch.empty(programs, dtype=torch.float32, device=source.device)
    _read_kernel[(programs,)](source, partial, BLOCK=BLOCK, STEPS=STEPS, num_warps=8)
    return partial
