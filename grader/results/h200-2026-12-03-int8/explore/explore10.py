"""Exploration 10 (from 9): TMA swapped at m = 64 with more tile shapes and stream-K shares; W8A16 with TMA loads (committed tiling, two 32-row mma.sync halves, swapped
operands) and the pointer kernel with 8 warps or 32-wide tiles, against bf16 cuBLAS at k 4096,
n 14336; the same CudaTimer and graph replay as the sweep."""
import importlib.util, statistics, sys, time
import torch, triton
from triton.tools.tensor_descriptor import TensorDescriptor
sys.path.insert(0, ".")
from grader.harnesses.timing import CudaTimer
spec = importlib.util.spec_from_file_location("v", ".scratch/variants.py")
v = importlib.util.module_from_spec(spec); spec.loader.exec_module(v)
spec = importlib.util.spec_from_file_location("ref", "grader/problems/int8-matmul/reference.py")
ref = importlib.util.module_from_spec(spec); spec.loader.exec_module(ref)
K, N = 4096, 14336
t0 = time.time()


def launcher(kind, x, q, s, y, cfg):
    bm, bn, bk, warps, stages = cfg
    m, n = x.shape[0], q.shape[0]
    grid = (triton.cdiv(n, bn), triton.cdiv(m, bm))
    opts = dict(BLOCK_M=bm, BLOCK_N=bn, BLOCK_K=bk, num_warps=warps, num_stages=stages)
    if kind == "ptr":
        return lambda warmup=False: (ref._w8a16_kernel.warmup if warmup else ref._w8a16_kernel[grid])(
            x, q, s, y, m, n, K, x.stride(0), q.stride(0), y.stride(0), **opts, **({"grid": grid} if warmup else {}))
    if kind.startswith("streamk"):
        occupancy = int(kind.split("x")[1])
        part = torch.zeros(m, n, dtype=torch.float32, device=x.device)
        arrivals = torch.zeros(triton.cdiv(n, bn) * triton.cdiv(m, bm), dtype=torch.int32, device=x.device)
        xd = TensorDescriptor.from_tensor(x, [bm, bk])
        wd = TensorDescriptor.from_tensor(q, [bn, bk])
        sk_grid = (132 * occupancy,)
        return lambda warmup=False: (v.tma_swapped_streamk.warmup if warmup else v.tma_swapped_streamk[sk_grid])(
            xd, wd, s, y, part, arrivals, m, n, K, y.stride(0), **opts, **({"grid": sk_grid} if warmup else {}))
    xrows = bm // 2 if kind == "tma_halves" else bm
    xd = TensorDescriptor.from_tensor(x, [xrows, bk])
    wd = TensorDescriptor.from_tensor(q, [bn, bk])
    kern = getattr(v, kind)
    return lambda warmup=False: (kern.warmup if warmup else kern[grid])(
        xd, wd, s, y, m, n, K, y.stride(0), **opts, **({"grid": grid} if warmup else {}))


def _compile(job):
    m, kind, cfg = job
    x = torch.zeros(m, K, device="cuda", dtype=torch.bfloat16)
    q = torch.zeros(64, K, device="cuda", dtype=torch.int8)
    s = torch.zeros(64, device="cuda", dtype=torch.float32)
    y = torch.empty(m, N, device="cuda", dtype=torch.bfloat16)
    try:
        launcher(kind, x, q, s, y, cfg)(warmup=True)
    except Exception as e:
        return f"{kind}{cfg}: {type(e).__name__} {str(e)[:120]}"


def main():
    import multiprocessing as mp
    timer = CudaTimer()
    sets = []
    for _ in range(4):
        weight = torch.randn(N, K, device="cuda", dtype=torch.bfloat16) * 0.05
        scale = (weight.float().abs().amax(dim=1) / 127).clamp(min=1e-30)
        q = torch.round(weight.float() / scale[:, None]).clamp(-127, 127).to(torch.int8).contiguous()
        sets.append((weight, q, scale))

    def graphs(calls):
        out = []
        for call in calls:
            call()
            g = torch.cuda.CUDAGraph()
            with torch.cuda.graph(g):
                o = call()
            g.replay()
            out.append((call, (g, o)))
        return out

    def run(prepared, n=24):
        return statistics.median(timer.time_call(*prepared[i % len(prepared)])[0] for i in range(n))

    def kernel_call(kind, x, q, s, cfg):
        y = torch.empty(x.shape[0], N, dtype=x.dtype, device="cuda")
        launch = launcher(kind, x, q, s, y, cfg)
        return lambda: (launch(), y)[1]

    def smem_ok(bm, bn, bk, stages):
        return stages * (bm * bk * 2 + bk * bn) + bk * bn * 2 <= 225_000

    plan = {64: [], 32: []}
    for bn in (32, 64, 128):
        for bk in (64, 128, 256):
            for warps in (4, 8):
                for stages in (2, 3, 4, 5, 6):
                    if smem_ok(64, bn, bk, stages) and bn * bk <= 128 * 128 and not (bn == 32 and warps == 8):
                        plan[64].append(("tma_swapped", (64, bn, bk, warps, stages)))
                        if bn == 64 and warps == 4 and bk <= 128:
                            for occ in (1, 2, 3):
                                if smem_ok(64, bn, bk, stages) * 0 + (stages * (64 * bk * 2 + bk * bn) + 8192) * occ <= 225_000:
                                    plan[64].append((f"streamkx{occ}", (64, bn, bk, warps, stages)))
                        if bn <= 64:
                            plan[64].append(("tma", (64, bn, bk, warps, stages)))
    for bn in (64, 128, 256):
        for bk in (128, 256):
            for stages in (2, 3, 4, 5):
                if smem_ok(32, bn, bk, stages) and bn * bk <= 256 * 128:
                    plan[32].append(("tma_halves", (32, bn, bk, 4, stages)))
    print({m: len(j) for m, j in plan.items()}, flush=True)
    with mp.get_context("spawn").Pool(14) as pool:
        errors = [e for e in pool.map(_compile, [(m, k, c) for m, js in plan.items() for k, c in js], chunksize=1) if e]
    print(f"precompiled in {time.time()-t0:.1f}s; {len(errors)} errors: {errors[:4]}", flush=True)

    results = {}
    for m, jobs in plan.items():
        xs = [torch.randn(m, K, device="cuda", dtype=torch.bfloat16) for _ in sets]
        bf = run(graphs([(lambda x=x, w=w: x @ w.T) for x, (w, q, s) in zip(xs, sets)]))
        base = run(graphs([kernel_call("ptr", x, q, s, tuple(ref._config(m)[k] for k in ("BLOCK_M", "BLOCK_N", "BLOCK_K", "num_warps", "num_stages"))) for x, (w, q, s) in zip(xs, sets)]))
        print(f"m={m} bf16 {bf/1e3:.1f} us; committed {base/1e3:.1f} us x{bf/base:.2f}", flush=True)
        x, (w, q, s) = xs[0], sets[0]
        want = x.float() @ (q.float() * s[:, None]).T
        rows = []
        for kind, cfg in jobs:
            try:
                prep = graphs([kernel_call(kind, x, q, s, cfg) for x, (w, q, s) in zip(xs, sets)])
                got = prep[0][0]()
                err = (got.float() - want).abs().max().item()
                rows.append((run(prep), kind, cfg, err))
            except Exception as e:
                print("  fail", kind, cfg, type(e).__name__, str(e)[:100], flush=True)
        rows.sort(key=lambda r: r[0])
        for kind in sorted({r[1] for r in rows}):
            for t, k, cfg, err in [r for r in rows if r[1] == kind][:6]:
                print(f"  m={m} {t/1e3:7.1f} us  x{bf/t:.2f}  {k:12s} cfg={cfg} err={err:.3g}", flush=True)
        print(f"  elapsed {time.time()-t0:.1f}s", flush=True)


if __name__ == "__main__":
    main()
