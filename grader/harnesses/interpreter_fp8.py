"""Float8 E4M3 conversions for Triton's interpreter (CPU runs), rounded as a GPU rounds them.

Triton 3.9's interpreter converts float32 to ``float8e4nv`` by adding the cut-off bit to the
3-bit mantissa without carrying into the exponent and by truncating subnormals: 7.84 becomes
4.0 and 0.0049 becomes 0.0039 (7% of N(0, 1) values land elsewhere than round-to-nearest-even).
A GPU's ``cvt.rn.satfinite`` rounds to nearest even and saturates at 448, as torch's own
``float8_e4m3fn`` conversion does; so, where the interpreter runs, conversions to and from
E4M3 go through torch, and every other conversion (round-toward-zero included) stays Triton's.

Installed by ``KernelHarness.serve`` in the sandbox process, where the candidate's and the
reference's kernels run under the interpreter; the trusted side computes its answers with torch
and never runs Triton. A candidate who undoes it only gets their own kernel's values rounded
wrong: nothing the trusted side decides goes through it.
"""

from __future__ import annotations

from typing import Any

_INSTALLED: dict[str, Any] = {}


def install() -> None:
    """Route E4M3 conversions of the interpreter through torch (once per process)."""
    if _INSTALLED:
        return
    import numpy as np
    import torch
    import triton.language as tl
    from triton._C.libtriton import ir
    from triton.runtime import interpreter

    original = interpreter._convert_float
    wide = {tl.float32: (np.float32, torch.float32), tl.float16: (np.float16, torch.float16)}

    def convert(values, input_dtype, output_dtype, rounding_mode):
        if (
            output_dtype == tl.float8e4nv
            and input_dtype in wide
            and rounding_mode == ir.ROUNDING_MODE.RTNE
        ):
            array = np.array(values, dtype=wide[input_dtype][0], copy=True)
            narrowed = torch.from_numpy(array).to(torch.float8_e4m3fn)
            return narrowed.view(torch.uint8).numpy().reshape(array.shape)
        if input_dtype == tl.float8e4nv and output_dtype in wide:
            array = np.array(values, dtype=np.uint8, copy=True)
            widened = torch.from_numpy(array).view(torch.float8_e4m3fn).to(wide[output_dtype][1])
            bits = getattr(np, f"uint{output_dtype.primitive_bitwidth}")
            return widened.numpy().view(bits).reshape(array.shape)
        return original(values, input_dtype, output_dtype, rounding_mode)

    interpreter._convert_float = convert
    _INSTALLED["original"] = original
