"""Inside a sandbox: can this process use the GPU? Prints one line of JSON and exits.

Run by :func:`grader.sandbox.gpu_sandbox_check` under the same bubblewrap arguments as a GPU
problem's sandbox: torch must see the card, and a Triton kernel must compile (gcc builds its
launcher against the driver library, ptxas its code) and compute the right answer. Not a
harness kind: nothing imports it but the probe (a failed import of torch or Triton shows as
the child's exit status and its stderr).
"""

from __future__ import annotations

import json
import time
from typing import Any

import torch
import triton
import triton.language as tl


@triton.jit
def _double_kernel(x_ptr, y_ptr, n, BLOCK: tl.constexpr):
    offsets = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    mask = offsets < n
    tl.store(y_ptr + offsets, 2 * tl.load(x_ptr + offsets, mask=mask), mask=mask)


def double(x: torch.Tensor) -> torch.Tensor:
    """2 * x through a Triton kernel."""
    y = torch.empty_like(x)
    _double_kernel[(triton.cdiv(x.numel(), 256),)](x, y, x.numel(), BLOCK=256)
    return y


def main() -> None:
    started = time.perf_counter()
    report: dict[str, Any] = {"torch": torch.__version__, "triton": triton.__version__}
    report["cuda"] = torch.cuda.is_available()
    report["triton_ok"] = False
    try:
        if report["cuda"]:
            report["device"] = torch.cuda.get_device_name(0)
            x = torch.arange(1000, device="cuda", dtype=torch.float32)
            report["triton_ok"] = bool(torch.equal(double(x), 2 * x))
    except Exception as error:  # what failed is the answer
        report["error"] = f"{type(error).__name__}: {error}"[-2000:]
    report["seconds"] = round(time.perf_counter() - started, 2)
    print(json.dumps(report), flush=True)
