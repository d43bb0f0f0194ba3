"""The "write it as a Triton kernel" rule, read in the source by the trusted side.

The issue's attacks first (torch SDPA for the attention problem, a plain PyTorch loop for paged
decode, the judge's own oracle), then the ways round a name-based check, then the honest code
that must keep passing: every shipped reference and wrong solution.
"""

from __future__ import annotations

import pytest

from grader.bank import PROBLEMS_DIR, bank_problems, problem_read
from grader.harnesses.source_rules import triton_only_breaks

KERNEL = """
import torch
import triton
import triton.language as tl


@triton.jit
def _copy(X, Y, n, BLOCK: tl.constexpr):
    offsets = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    tl.store(Y + offsets, tl.load(X + offsets, mask=offsets < n), mask=offsets < n)
"""


def _breaks(body: str, entry: str = "attention") -> list[str]:
    return [str(b) for b in triton_only_breaks(KERNEL + body, entry)]


ATTACKS = {
    "torch-sdpa": (
        "import torch.nn.functional as F\n"
        "def attention(q, k, v, cu_seqlens, max_seqlen):\n"
        "    return F.scaled_dot_product_attention(q, k, v, is_causal=True)\n",
        "F.scaled_dot_product_attention does work outside your Triton kernels",
    ),
    "plain-torch-loop-for-paged-decode": (
        "def attention(q, k_cache, v_cache, block_tables, seq_lens):\n"
        "    out = torch.empty_like(q)\n"
        "    for b in range(q.shape[0]):\n"
        "        keys = k_cache[block_tables[b]].flatten(0, 1)\n"
        "        out[b] = (q[b] @ keys.T).softmax(-1) @ keys\n"
        "    return out\n",
        "indexes a tensor with a tensor (k_cache[block_tables[b]]): a gather",
    ),
    "the-judges-oracle": (
        "from engine.attention import TorchAttention\n"
        "def attention(q, k, v, cu_seqlens, max_seqlen):\n"
        "    return TorchAttention().forward(q, k, v)\n",
        "imports engine.attention",
    ),
    "torch-matmul-by-operator": (
        "def attention(q, k, v, cu_seqlens, max_seqlen):\n    return q @ k.transpose(0, 1)\n",
        "tensor arithmetic outside a Triton kernel (q @ k.transpose(0, 1))",
    ),
    "torch-function": (
        "def attention(q, k, v, cu_seqlens, max_seqlen):\n    return torch.softmax(q, -1)\n",
        "torch.softmax does work outside your Triton kernels",
    ),
    "a-computing-tensor-method": (
        "def attention(q, k, v, cu_seqlens, max_seqlen):\n    return q.exp()\n",
        "the tensor method .exp() does work outside a Triton kernel",
    ),
    "a-helper-on-the-call-path": (
        "def _helper(x):\n    return x.sum(0)\n"
        "def attention(q, k, v, cu_seqlens, max_seqlen):\n    return _helper(q)\n",
        "the tensor method .sum() does work outside a Triton kernel",
    ),
    "the-name-computed-at-run-time": (
        "def attention(q, k, v, cu_seqlens, max_seqlen):\n"
        "    return getattr(torch, 'mat' + 'mul')(q, k)\n",
        "uses getattr(), which the rule cannot follow",
    ),
    "a-patched-timer": (
        "torch.cuda.Event.elapsed_time = lambda self, end: 0.001\n"
        "def attention(q, k, v, cu_seqlens, max_seqlen):\n    return q\n",
        "patches torch.cuda.Event.elapsed_time: a module is not yours to change",
    ),
    "eval": (
        "def attention(q, k, v, cu_seqlens, max_seqlen):\n    return eval('q.exp()')\n",
        "uses eval(), which the rule cannot follow",
    ),
    "a-dunder-back-door": (
        "def attention(q, k, v, cu_seqlens, max_seqlen):\n"
        "    return q.__class__.__matmul__(q, k)\n",
        "reaches __class__, which the rule cannot follow",
    ),
    "imports-the-grader": (
        "import grader.harnesses.kernel\n"
        "def attention(q, k, v, cu_seqlens, max_seqlen):\n    return q\n",
        "imports grader.harnesses.kernel",
    ),
    "a-python-builtin-over-a-tensor": (
        "def attention(q, k, v, cu_seqlens, max_seqlen):\n    return sum(q)\n",
        "sum() over a tensor outside a Triton kernel",
    ),
    "no-kernel-launched": (
        "def attention(q, k, v, cu_seqlens, max_seqlen):\n    return q.clone()\n",
        "the timed call launches none of its @triton.jit kernels",
    ),
}


@pytest.mark.parametrize("name", list(ATTACKS), ids=list(ATTACKS))
def test_work_outside_a_triton_kernel_is_named_by_line(name):
    body, words = ATTACKS[name]
    assert any(words in found for found in _breaks(body)), _breaks(body)


def test_a_launch_with_shape_arithmetic_and_views_keeps_the_rule():
    body = (
        "def attention(q, k, v, cu_seqlens, max_seqlen):\n"
        "    total, heads, dim = q.shape\n"
        "    out = torch.empty_like(q)\n"
        "    n = total * heads * dim\n"
        "    scale = dim**-0.5 * 1.44\n"
        "    grid = (triton.cdiv(n, 1024), (cu_seqlens.numel() - 1) * heads)\n"
        "    _copy[grid](q.view(-1), out.view(-1), n, BLOCK=1024)\n"
        "    return out\n"
    )
    assert _breaks(body) == []


def test_set_up_code_may_use_torch_and_the_call_may_not():
    """int8-matmul's layer quantises its weight in __init__ (untimed set-up); its call must
    do the product in a kernel."""
    layer = (
        "class W8A16Linear:\n"
        "    def __init__(self, weight):\n"
        "        self.scale = weight.float().abs().amax(dim=1) / 127\n"
        "        self.weight = torch.round(weight.float() / self.scale[:, None]).to(torch.int8)\n"
        "    def __call__(self, x):\n"
        "        y = torch.empty(x.shape[0], self.weight.shape[0], dtype=x.dtype)\n"
        "        _copy[(1,)](x, y, x.numel(), BLOCK=1024)\n"
        "        return BODY\n"
    )
    assert _breaks(layer.replace("BODY", "y"), "W8A16Linear") == []
    dequantised = layer.replace("BODY", "x @ (self.weight.to(x.dtype) * self.scale[:, None]).T")
    assert any(
        "tensor arithmetic outside a Triton kernel" in found
        for found in _breaks(dequantised, "W8A16Linear")
    )


def _shipped() -> list:
    found = []
    for slug in (p.slug for p in bank_problems() if p.harness == "kernel"):
        folder = PROBLEMS_DIR / slug
        for path in [folder / "reference.py", *sorted((folder / "wrong").glob("*.py"))]:
            found.append(pytest.param(slug, path, id=f"{slug}:{path.relative_to(folder)}"))
    return found


@pytest.mark.parametrize(("slug", "path"), _shipped())
def test_shipped_references_and_wrong_solutions_keep_the_rule(slug, path):
    entry = problem_read(PROBLEMS_DIR / slug).entry_point
    assert triton_only_breaks(path.read_text(), entry) == []
