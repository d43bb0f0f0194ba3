import sys, re, types, importlib.util
sys.modules.setdefault("torch", types.ModuleType("torch"))
import triton
from triton.backends.compiler import GPUTarget
spec = importlib.util.spec_from_file_location("v", ".scratch/variants.py")
v = importlib.util.module_from_spec(spec); spec.loader.exec_module(v)
bm, bn, bk, warps, stages = map(int, sys.argv[1:6])
xrows = bm // 2 if len(sys.argv) > 6 and sys.argv[6] == "tma_halves" else bm
sig = {"x_desc": f"tensordesc<bf16[{xrows}, {bk}]>", "w_desc": f"tensordesc<i8[{bn}, {bk}]>", "Scale": "*fp32", "Y": "*bf16", "M": "i32", "N": "i32", "K": "i32", "sym": "i32",
       "BLOCK_M": "constexpr", "BLOCK_N": "constexpr", "BLOCK_K": "constexpr"}
name = sys.argv[6] if len(sys.argv) > 6 else "tma"
src = triton.compiler.ASTSource(fn=getattr(v, name), signature=sig, constexprs=dict(BLOCK_M=bm, BLOCK_N=bn, BLOCK_K=bk), attrs={(i,): [["tt.divisibility", 16]] for i in (2, 3, 6, 7)})
out = triton.compile(src, target=GPUTarget("cuda", 90, 32), options=dict(num_warps=warps, num_stages=stages))
ttgir = out.asm["ttgir"]
for line in ttgir.splitlines():
    if any(t in line for t in ("warp_group_dot ", "tt.dot", "local_alloc %", "local_load", "sitofp", "async_tma", "tma")):
        print("  ", line.strip()[:170])
ptx = out.asm["ptx"]
print("wgmma", len(re.findall(r"wgmma.mma_async", ptx)), "mma.sync", len(re.findall(r"mma.sync", ptx)), "bulk", len(re.findall(r"cp.async.bulk", ptx)), "st.shared", len(re.findall(r"st.shared", ptx)), "shared", out.metadata.shared)
