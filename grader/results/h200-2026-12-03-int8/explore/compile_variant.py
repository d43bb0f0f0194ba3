import sys, re, types, importlib.util
sys.modules.setdefault("torch", types.ModuleType("torch"))
import triton
from triton.backends.compiler import GPUTarget
spec = importlib.util.spec_from_file_location("v", ".scratch/variants.py")
v = importlib.util.module_from_spec(spec); spec.loader.exec_module(v)
name, bm, bn, bk, warps, stages = sys.argv[1], *map(int, sys.argv[2:7])
kern = getattr(v, name)
sig = {"X": "*bf16", "W": "*i8", "Scale": "*fp32", "Y": "*bf16", **({"Partial": "*fp32", "Arrivals": "*i32"} if name in ("splitk", "streamk") else {}), "M": "i32", "N": "i32", "K": "i32", "sxm": "i32", "swn": "i32", "sym": "i32",
       "BLOCK_M": "constexpr", "BLOCK_N": "constexpr", "BLOCK_K": "constexpr"}
extra = dict(a.split("=") for a in sys.argv[7:] if "=" in a)
for key, val in extra.items():
    sig[key] = "constexpr"
consts = dict(BLOCK_M=bm, BLOCK_N=bn, BLOCK_K=bk, **{k: int(x) for k, x in extra.items()})
src = triton.compiler.ASTSource(fn=kern, signature=sig, constexprs=consts, attrs={(i,): [["tt.divisibility", 16]] for i in ((0,1,2,3,4,5,7,8,9,10,11) if name in ("splitk", "streamk") else (0,1,2,3,5,6,7,8,9))})
out = triton.compile(src, target=GPUTarget("cuda", 90, 32), options=dict(num_warps=warps, num_stages=stages))
ttgir = out.asm["ttgir"]
for line in ttgir.splitlines():
    if any(t in line for t in ("warp_group_dot", "tt.dot", "local_alloc %", "local_load", "sitofp", "async_copy_global")):
        print("  ", line.strip()[:170])
ptx = out.asm["ptx"]
print("wgmma", len(re.findall(r"wgmma.mma_async", ptx)), "mma.sync", len(re.findall(r"mma.sync", ptx)), "cp.async", len(re.findall(r"cp.async", ptx)), "st.shared", len(re.findall(r"st.shared", ptx)), "ldmatrix", len(re.findall(r"ldmatrix", ptx)), "shared", out.metadata.shared)
if "--ptx" in sys.argv: print(ptx)
