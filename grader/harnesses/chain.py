"""The proof chain that lets the trusted side time GPU calls it cannot see.

A kernel problem's calls are timed in batches: the trusted side's wall clock runs from waking
the sandbox to its reply, and the reply must carry a digest of every call's output. Call ``i``'s
fresh inputs are drawn on the device from the digest of call ``i - 1``'s output (the first from
a nonce the trusted side sends with the request), so:

* no call can start before the one before it has finished writing its whole output (its inputs
  do not exist yet): the calls run one after another, whatever streams the candidate uses;
* no output can be computed before the batch starts (its inputs depend on the nonce);
* the reply cannot come before the last output is final (it carries that output's digest).

Afterwards the trusted side fetches every output, recomputes each digest and each call's inputs
with these same kernels on its own device, and checks every value: an output that changed after
its digest was taken (work left running on another stream or thread) breaks the chain. The
digest is a position-weighted sum of the output's 16-bit words, exact in int64 (at most 2^26
words a call: 2^16 * 2^16 * 2^26 < 2^63), so both sides compute the same number on any device.

Both kernels are Triton, so the chain runs the same way on a GPU and under ``TRITON_INTERPRET=1``
on a CPU (the tests' way).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import triton
import triton.language as tl

if TYPE_CHECKING:
    import torch

BLOCK = 1024
# At most this many 16-bit words per digested output: keeps the int64 sum exact.
MAX_DIGEST_WORDS = 2**26


@triton.jit
def _fill_normal(out_ptr, n, key_ptr, salt, BLOCK: tl.constexpr):
    pid = tl.program_id(0)
    offsets = pid * BLOCK + tl.arange(0, BLOCK)
    seed = (tl.load(key_ptr) ^ salt) & 0x7FFFFFFF
    values = tl.randn(seed, offsets)
    tl.store(out_ptr + offsets, values.to(out_ptr.dtype.element_ty), mask=offsets < n)


@triton.jit
def _digest_blocks(words_ptr, n, partial_ptr, BLOCK: tl.constexpr):
    pid = tl.program_id(0)
    offsets = pid * BLOCK + tl.arange(0, BLOCK)
    words = tl.load(words_ptr + offsets, mask=offsets < n, other=0).to(tl.int64) & 0xFFFF
    position = offsets.to(tl.int64)
    weight = (((position * 2654435761 + 40503) >> 7) & 0xFFFF) + 1
    tl.store(partial_ptr + pid, tl.sum(words * weight, axis=0))


def fill_normal(tensor: torch.Tensor, key: torch.Tensor, salt: int) -> None:
    """Overwrite ``tensor`` (contiguous, floating) with N(0, 1) values drawn from the int64
    ``key`` (a one-element device tensor, read on the device) and ``salt``."""
    n = tensor.numel()
    _fill_normal[(triton.cdiv(n, BLOCK),)](tensor, n, key, salt, BLOCK=BLOCK)


def digest_into(output: torch.Tensor | list[torch.Tensor], key: torch.Tensor) -> None:
    """Write the digest of ``output``'s bytes into the one-element int64 tensor ``key``; of a
    list of tensors (a call that returns several), the digest of their bytes end to end."""
    import torch

    parts = output if isinstance(output, list) else [output]
    raw = [part.detach().contiguous().view(-1).view(torch.uint8) for part in parts]
    if len(raw) > 1 or raw[0].numel() % 2:
        # One copy, padded to whole 16-bit words (an fp8 part may have an odd byte count).
        padding = torch.zeros(
            sum(r.numel() for r in raw) % 2, dtype=torch.uint8, device=raw[0].device
        )
        raw = [torch.cat([*raw, padding])]
    words = raw[0].view(torch.int16)
    n = words.numel()
    if n > MAX_DIGEST_WORDS:
        raise ValueError(f"an output of {n} 16-bit words is too large to digest exactly")
    partial = torch.empty(triton.cdiv(n, BLOCK), dtype=torch.int64, device=words.device)
    _digest_blocks[(partial.numel(),)](words, n, partial, BLOCK=BLOCK)
    key.copy_(partial.sum().view(1))


def salt(call: int, tensor_index: int) -> int:
    """The salt of the ``tensor_index``-th fresh tensor of call ``call`` (distinct for each)."""
    return (call * 64 + tensor_index) * 2654435761 % 2**31
