"""Compile the reference W8A16 kernel for sm_90 offline and show the dot's lowering."""
import importlib.util, sys, re, types
if "torch" not in sys.modules:
    try:
        import torch
    except ImportError:
        sys.modules["torch"] = types.ModuleType("torch"); sys.modules["torch"].Tensor = object
import triton
from triton.backends.compiler import GPUTarget
spec = importlib.util.spec_from_file_location("ref", "grader/problems/int8-matmul/reference.py")
ref = importlib.util.module_from_spec(spec); spec.loader.exec_module(ref)
kern = ref._w8a16_kernel
sig = {"X": "*bf16", "W": "*i8", "Scale": "*fp32", "Y": "*bf16", "M": "i32", "N": "i32", "K": "i32",
       "stride_xm": "i32", "stride_wn": "i32", "stride_ym": "i32",
       "BLOCK_M": "constexpr", "BLOCK_N": "constexpr", "BLOCK_K": "constexpr"}
m = int(sys.argv[1]) if len(sys.argv) > 1 else 64
cfg = ref._config(m)
consts = {k: cfg[k] for k in ("BLOCK_M", "BLOCK_N", "BLOCK_K")}
src = triton.compiler.ASTSource(fn=kern, signature=sig, constexprs=consts, attrs={(i,): [['tt.divisibility', 16]] for i in (0,1,2,3,5,6,7,8,9)})
out = triton.compile(src, target=GPUTarget("cuda", 90, 32), options=dict(num_warps=cfg["num_warps"], num_stages=cfg["num_stages"]))
ttgir = out.asm["ttgir"]
for line in ttgir.splitlines():
    if any(t in line for t in ("warp_group_dot", "tt.dot", "local_alloc", "local_load", "convert_layout", "async_copy", "sitofp", "tt.load")):
        print(line.strip()[:200])
ptx = out.asm["ptx"]
print("wgmma", len(re.findall(r"wgmma.mma_async", ptx)), "mma.sync", len(re.findall(r"mma.sync", ptx)), "cvt", len(re.findall(r"cvt\.", ptx)), "st.shared", len(re.findall(r"st.shared", ptx)), "ld.shared", len(re.findall(r"ld.shared", ptx)), "ldmatrix", len(re.findall(r"ldmatrix", ptx)), "cp.async", len(re.findall(r"cp.async", ptx)))
print("regs", out.n_regs if hasattr(out, "n_regs") else "?", "shared", out.metadata.shared)
if "--full" in sys.argv:
    print(ttgir)
