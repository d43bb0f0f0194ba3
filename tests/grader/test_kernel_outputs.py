"""Kernel calls that return several tensors (fused-rmsnorm-fp8's values, scales and residual),
and the E4M3 rounding the CPU path relies on: each part is checked by name, shape and dtype,
digested end to end, and the interpreter's fp8 casts round as a GPU's do.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
import triton
import triton.language as tl
from triton._C.libtriton import ir
from triton.runtime import interpreter

from grader.bank import PROBLEMS_DIR, problem_read
from grader.grading import grade
from grader.harnesses import chain, interpreter_fp8
from grader.harnesses.contract import Verdict
from grader.harnesses.timing import gpu_available

pytestmark = pytest.mark.skipif(gpu_available(), reason="the CPU path (Triton's interpreter)")

FP8 = PROBLEMS_DIR / "fused-rmsnorm-fp8"
# The reference's call (renamed: the source rule follows calls by name), its outputs changed on
# the way out: what each test returns instead.
RETURNING = """


def fused_add_rmsnorm_fp8(x, residual, weight, eps: float):
    q, scales, residual_out = _honest(x, residual, weight, eps)
    return RESULT
"""


def _grade_returning(result: str):
    shipped = problem_read(FP8).as_spec()
    spec = dataclasses.replace(shipped, tests=shipped.tests[:1])  # one token: what each shows
    honest = spec.reference_code.replace("def fused_add_rmsnorm_fp8(", "def _honest(")
    code = honest + RETURNING.replace("RESULT", result)
    return grade(spec, code, seed=3, hardware={})


@pytest.mark.parametrize(
    ("result", "message"),
    [
        ("q, scales", "returned a tuple of 2 tensors; expected a tuple of 3 tensors"),
        ("[q, scales, residual_out]", "returned a list; expected a tuple of 3 tensors"),
        ("q, scales.view(torch.int32), residual_out", "returned dtype int32 for scales"),
        ("q, scales.view(-1), residual_out", "returned shape [1] for scales; expected [1, 1]"),
        ("q, scales, residual", "residual: "),
    ],
    ids=["two-parts", "a-list", "scales-as-int32", "scales-flat", "the-residual-not-updated"],
)
def test_each_returned_part_is_checked_by_name(result, message):
    report = _grade_returning(result)
    assert report.verdict is Verdict.WRONG_ANSWER, report.message
    assert message in report.message


def test_the_parts_in_order_are_accepted():
    """The control: the same wrapper returning the three parts in order is the reference."""
    report = _grade_returning("q, scales, residual_out")
    assert report.verdict is Verdict.ACCEPTED, report.message


def test_several_parts_digest_as_their_bytes_end_to_end():
    values = torch.arange(7, dtype=torch.uint8)  # an odd byte count: padded to whole words
    scales = torch.tensor([0.5, 2.0])
    together, apart = torch.zeros(1, dtype=torch.int64), torch.zeros(1, dtype=torch.int64)
    chain.digest_into([values, scales], apart)
    joined = torch.cat([values, scales.view(torch.uint8), torch.zeros(1, dtype=torch.uint8)])
    chain.digest_into(joined, together)
    assert int(apart) == int(together) != 0
    swapped = torch.zeros(1, dtype=torch.int64)
    chain.digest_into([scales, values], swapped)
    assert int(swapped) != int(apart)


def test_the_interpreters_own_e4m3_cast_is_still_wrong():
    """Why the shim exists: Triton's interpreter drops the mantissa's carry (7.84 -> 4.0). When
    this fails, the interpreter rounds right: remove grader/harnesses/interpreter_fp8.py."""
    interpreter_fp8.install()
    own = interpreter_fp8._INSTALLED["original"]
    bits = own(np.array([7.84], dtype=np.float32), tl.float32, tl.float8e4nv, ir.ROUNDING_MODE.RTNE)
    assert torch.from_numpy(bits.view(np.uint8)).view(torch.float8_e4m3fn).float().item() == 4.0
    assert interpreter._convert_float is not own


@triton.jit
def _cast_kernel(X, Q, Back, n, BLOCK: tl.constexpr):
    offs = tl.arange(0, BLOCK)
    live = offs < n
    q = tl.load(X + offs, mask=live).to(Q.dtype.element_ty)
    tl.store(Q + offs, q, mask=live)
    tl.store(Back + offs, q.to(tl.float32), mask=live)


def test_with_the_shim_a_kernels_e4m3_casts_round_as_torchs():
    """Round to nearest even and saturate at 448, both ways, over six decades and the ties."""
    interpreter_fp8.install()
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(4096, generator=generator) * torch.exp(
        torch.randn(4096, generator=generator) * 3
    )
    ties = torch.tensor([336.0, 7.75, -0.0048828125, 500.0, -1e4, 0.0])  # halfway, saturating, 0
    x = torch.cat([x, ties])
    q = torch.empty(x.numel(), dtype=torch.float8_e4m3fn)
    back = torch.empty(x.numel())
    _cast_kernel[(1,)](x, q, back, x.numel(), BLOCK=triton.next_power_of_2(x.numel()))
    expected = x.to(torch.float8_e4m3fn)
    assert torch.equal(q.view(torch.uint8), expected.view(torch.uint8))
    assert torch.equal(back, expected.float())
    assert q[-6:].float().tolist() == [320.0, 8.0, -0.00390625, 448.0, -448.0, 0.0]
