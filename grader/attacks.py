"""Attacks on the kernel kind's runtime controls, for the adversarial suite and the GPU check.

The source rule (:mod:`grader.harnesses.source_rules`) refuses these before they run: they use
streams, threads or the harness's own module. Each is therefore run with the rule off, straight
through the harness's timed call, to show that the checks behind the rule (the chained batches
of :mod:`grader.harnesses.chain`, every output checked) stop it on their own, as they must for
code that found a way past the rule. Each is a suffix appended to the problem's reference, so
the work it does is right: only the cheat can be what is caught.
"""

from __future__ import annotations

from typing import NamedTuple

from grader.harnesses.contract import Verdict


class RuntimeAttack(NamedTuple):
    suffix: str
    #: the verdicts that catch it; more than one where a race decides which check sees it first.
    verdicts: tuple[Verdict, ...]
    #: a GPU is needed to mount it (CUDA streams).
    gpu_only: bool = False


# The side stream: the work runs on a stream the caller's stream never waits for.
SIDE_STREAM = """
_honest = attention


def attention(q, k, v, cu_seqlens, max_seqlen):
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):
        out = _honest(q, k, v, cu_seqlens, max_seqlen)
    return out
"""
# Returns the right output with part of it still zero; a thread writes the rest 50 ms later, as a
# kernel left running would.
LATE_OUTPUT = """
import threading, time
_Base = W8A16Linear


class W8A16Linear(_Base):
    def __call__(self, x):
        y = _Base.__call__(self, x)
        final = y.clone()
        y[: y.shape[0] // 2 + 1].zero_()

        def finish():
            time.sleep(0.05)
            y.copy_(final)

        threading.Thread(target=finish).start()
        return y
"""
# Keyed by the input's address: the harness writes each call's fresh inputs in place, so a
# result cached by pointer answers an earlier call's inputs.
POINTER_CACHE_INT8 = """
_Base = W8A16Linear
_cache = {}


class W8A16Linear(_Base):
    def __call__(self, x):
        key = x.data_ptr()
        if key not in _cache:
            _cache[key] = _Base.__call__(self, x)
        return _cache[key]
"""


def pointer_cache(entry: str, params: str) -> str:
    """The pointer cache for a function ``entry(params)`` whose first parameter is fresh."""
    first = params.split(",")[0].strip()
    return f"""
_honest = {entry}
_cache = {{}}


def {entry}({params}):
    key = {first}.data_ptr()
    if key not in _cache:
        _cache[key] = _honest({params})
    return _cache[key]
"""


POINTER_CACHE_PAGED = pointer_cache(
    "paged_decode_attention", "q, k_cache, v_cache, block_tables, seq_lens"
)
# Runs the batch, then replies with digests of its own making, as a replaced harness could.
FORGED_DIGESTS = """
from grader.harnesses import kernel as _kernel

_honest_batch = _kernel._Chain.batch


def _batch(self, nonce):
    reply = _honest_batch(self, nonce)
    return reply | {"digests": [digest + 1 for digest in reply["digests"]]}


_kernel._Chain.batch = _batch
"""
# Replaces the chain's digest in the sandbox: the next call's inputs no longer wait for this
# call's output. The trusted side computes the digests itself, so the inputs it redraws are
# not the ones the sandbox used (a wrong answer) or the digests differ (policy).
PATCHED_DIGEST = """
from grader.harnesses import chain as _chain


def _no_digest(output, key):
    key.zero_()


_chain.digest_into = _no_digest
"""

# A late writer is caught by whichever check meets it first, and its thread's timing decides
# that: its output is fetched before the thread wrote (the zeros are a wrong answer), or after
# (the output changed after its digest: policy), or the thread's copy lands inside the capture of
# the batch's CUDA graph and breaks it (a runtime error, as on the H100).
LATE_WRITER_CAUGHT = (Verdict.POLICY, Verdict.WRONG_ANSWER, Verdict.RUNTIME_ERROR)

RUNTIME_ATTACKS: dict[str, dict[str, RuntimeAttack]] = {
    "triton-attention": {
        "side-stream": RuntimeAttack(SIDE_STREAM, (Verdict.POLICY,), gpu_only=True),
        "forged-digests": RuntimeAttack(FORGED_DIGESTS, (Verdict.POLICY,)),
    },
    "paged-decode-attention": {
        "pointer-cache": RuntimeAttack(POINTER_CACHE_PAGED, (Verdict.WRONG_ANSWER,)),
    },
    "int8-matmul": {
        "late-output": RuntimeAttack(LATE_OUTPUT, LATE_WRITER_CAUGHT),
        "pointer-cache": RuntimeAttack(POINTER_CACHE_INT8, (Verdict.WRONG_ANSWER,)),
        "forged-digests": RuntimeAttack(FORGED_DIGESTS, (Verdict.POLICY,)),
    },
    "fused-rmsnorm-fp8": {
        # Three parts returned, cached as one tuple: the stale values, scales and residual.
        "pointer-cache": RuntimeAttack(
            pointer_cache("fused_add_rmsnorm_fp8", "x, residual, weight, eps"),
            (Verdict.WRONG_ANSWER,),
        ),
        "patched-digest": RuntimeAttack(PATCHED_DIGEST, (Verdict.POLICY, Verdict.WRONG_ANSWER)),
    },
    "lora-bgmv": {
        "pointer-cache": RuntimeAttack(
            pointer_cache(
                "lora_apply",
                "x, base, lora_a, lora_b, scales, seg_indptr, seg_adapters, max_seg_len",
            ),
            (Verdict.WRONG_ANSWER,),
        ),
        "patched-digest": RuntimeAttack(PATCHED_DIGEST, (Verdict.POLICY, Verdict.WRONG_ANSWER)),
    },
    "moe-dispatch": {
        "pointer-cache": RuntimeAttack(
            pointer_cache("moe_dispatch", "x, router_logits, w, top_k"), (Verdict.WRONG_ANSWER,)
        ),
    },
}
