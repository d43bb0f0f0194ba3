"""Candidate W8A16 kernels; compiled offline for sm_90 to read their lowering."""
import triton, triton.language as tl


@triton.jit
def swapped(X, W, Scale, Y, M, N, K, sxm, swn, sym,
            BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_K: tl.constexpr):
    pid_n, pid_m = tl.program_id(0), tl.program_id(1)
    offs_m = pid_m * BLOCK_M + tl.arange(0, BLOCK_M)
    offs_n = pid_n * BLOCK_N + tl.arange(0, BLOCK_N)
    offs_k = tl.arange(0, BLOCK_K)
    x_ptrs = X + offs_m[None, :] * sxm + offs_k[:, None]      # [BK, BM]: x^T
    w_ptrs = W + offs_n[:, None] * swn + offs_k[None, :]      # [BN, BK]
    rows, cols = offs_m < M, offs_n < N
    acc = tl.zeros([BLOCK_N, BLOCK_M], tl.float32)
    for k in range(0, K, BLOCK_K):
        in_k = (k + offs_k) < K
        xt = tl.load(x_ptrs, mask=in_k[:, None] & rows[None, :], other=0.0)
        w = tl.load(w_ptrs, mask=cols[:, None] & in_k[None, :], other=0)
        acc = tl.dot(w.to(xt.dtype), xt, acc)
        x_ptrs += BLOCK_K
        w_ptrs += BLOCK_K
    scale = tl.load(Scale + offs_n, mask=cols, other=0.0)
    y = acc * scale[:, None]
    tl.store(Y + offs_m[None, :] * sym + offs_n[:, None], y.to(Y.dtype.element_ty), mask=cols[:, None] & rows[None, :])


@triton.jit
def splitk(X, W, Scale, Y, Partial, Arrivals, M, N, K, sxm, swn, sym,
           BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_K: tl.constexpr,
           SPLIT: tl.constexpr, K_PER_SPLIT: tl.constexpr):
    """Swapped operands (acc[n, m] = W_tile @ x_tile^T, so the converted weight is wgmma's
    register operand) and a serial split-K: each split adds its fp32 partial into a zeroed
    workspace, and the last split to arrive at a tile casts it out and zeroes it again."""
    pid_n, pid_m, split = tl.program_id(0), tl.program_id(1), tl.program_id(2)
    offs_m = pid_m * BLOCK_M + tl.arange(0, BLOCK_M)
    offs_n = pid_n * BLOCK_N + tl.arange(0, BLOCK_N)
    k_start = split * K_PER_SPLIT
    k_end = tl.minimum(K, k_start + K_PER_SPLIT)
    offs_k = tl.arange(0, BLOCK_K)
    x_ptrs = X + offs_m[None, :] * sxm + (k_start + offs_k)[:, None]
    w_ptrs = W + offs_n[:, None] * swn + (k_start + offs_k)[None, :]
    rows, cols = offs_m < M, offs_n < N
    acc = tl.zeros([BLOCK_N, BLOCK_M], tl.float32)
    for k in range(k_start, k_end, BLOCK_K):
        in_k = (k + offs_k) < k_end
        xt = tl.load(x_ptrs, mask=in_k[:, None] & rows[None, :], other=0.0)
        w = tl.load(w_ptrs, mask=cols[:, None] & in_k[None, :], other=0)
        acc = tl.dot(w.to(xt.dtype), xt, acc)
        x_ptrs += BLOCK_K
        w_ptrs += BLOCK_K
    scale = tl.load(Scale + offs_n, mask=cols, other=0.0)
    acc = acc * scale[:, None]
    inside = cols[:, None] & rows[None, :]
    y_ptrs = Y + offs_m[None, :] * sym + offs_n[:, None]
    if SPLIT == 1:
        tl.store(y_ptrs, acc.to(Y.dtype.element_ty), mask=inside)
    else:
        part_ptrs = Partial + offs_m[None, :] * N + offs_n[:, None]
        tl.atomic_add(part_ptrs, acc, mask=inside, sem="relaxed")
        tl.debug_barrier()
        tile = pid_m * tl.num_programs(0) + pid_n
        arrived = tl.atomic_add(Arrivals + tile, 1, sem="acq_rel")
        if arrived == SPLIT - 1:
            tl.debug_barrier()
            total = tl.load(part_ptrs, mask=inside, other=0.0, cache_modifier=".cg")
            tl.store(y_ptrs, total.to(Y.dtype.element_ty), mask=inside)
            tl.store(part_ptrs, tl.zeros_like(acc), mask=inside)
            tl.store(Arrivals + tile, 0)


@triton.jit
def _owner(unit, units, programs):
    # The program whose share [p * units // programs, (p + 1) * units // programs) holds unit.
    return ((unit + 1) * programs - 1) // units


@triton.jit
def streamk(X, W, Scale, Y, Partial, Arrivals, M, N, K, sxm, swn, sym,
            BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_K: tl.constexpr):
    """Stream-K: the (tile, k-block) units are cut into one equal contiguous share per program,
    so every multiprocessor does the same work; a tile shared by several programs is summed in
    an fp32 workspace, and the last program to arrive casts it out and zeroes it again."""
    pid = tl.program_id(0)
    programs = tl.num_programs(0)
    tiles_n = tl.cdiv(N, BLOCK_N)
    k_blocks = tl.cdiv(K, BLOCK_K)
    units = tl.cdiv(M, BLOCK_M) * tiles_n * k_blocks
    unit = pid * units // programs
    end = (pid + 1) * units // programs
    offs_k = tl.arange(0, BLOCK_K)
    while unit < end:
        tile = unit // k_blocks
        kb_start = unit - tile * k_blocks
        kb_end = tl.minimum(k_blocks, kb_start + end - unit)
        pid_m, pid_n = tile // tiles_n, tile % tiles_n
        offs_m = pid_m * BLOCK_M + tl.arange(0, BLOCK_M)
        offs_n = pid_n * BLOCK_N + tl.arange(0, BLOCK_N)
        rows, cols = offs_m < M, offs_n < N
        x_ptrs = X + offs_m[:, None] * sxm + (kb_start * BLOCK_K + offs_k)[None, :]
        w_ptrs = W + offs_n[None, :] * swn + (kb_start * BLOCK_K + offs_k)[:, None]
        acc = tl.zeros([BLOCK_M, BLOCK_N], tl.float32)
        for kb in range(kb_start, kb_end):
            in_k = (kb * BLOCK_K + offs_k) < K
            x = tl.load(x_ptrs, mask=rows[:, None] & in_k[None, :], other=0.0)
            w = tl.load(w_ptrs, mask=in_k[:, None] & cols[None, :], other=0)
            acc = tl.dot(x, w.to(x.dtype), acc)
            x_ptrs += BLOCK_K
            w_ptrs += BLOCK_K
        scale = tl.load(Scale + offs_n, mask=cols, other=0.0)
        acc = acc * scale[None, :]
        inside = rows[:, None] & cols[None, :]
        y_ptrs = Y + offs_m[:, None] * sym + offs_n[None, :]
        first = _owner(tile * k_blocks, units, programs)
        last = _owner(tile * k_blocks + k_blocks - 1, units, programs)
        if first == last:
            tl.store(y_ptrs, acc.to(Y.dtype.element_ty), mask=inside)
        else:
            part_ptrs = Partial + offs_m[:, None] * N + offs_n[None, :]
            tl.atomic_add(part_ptrs, acc, mask=inside, sem="relaxed")
            tl.debug_barrier()
            arrived = tl.atomic_add(Arrivals + tile, 1, sem="acq_rel")
            if arrived == last - first:
                tl.debug_barrier()
                total = tl.load(part_ptrs, mask=inside, other=0.0, cache_modifier=".cg")
                tl.store(y_ptrs, total.to(Y.dtype.element_ty), mask=inside)
                tl.store(part_ptrs, tl.zeros_like(acc), mask=inside)
                tl.store(Arrivals + tile, 0)
        unit += kb_end - kb_start


@triton.jit
def halves(X, W, Scale, Y, M, N, K, sxm, swn, sym,
           BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_K: tl.constexpr):
    """Rows in two halves of BLOCK_M, each its own dot: a dot 32 rows tall lowers to mma.sync, whose
    operands are registers, so the weight goes smem -> registers -> bf16 once (wgmma would need the
    converted weight written back to shared memory)."""
    pid_m, pid_n = tl.program_id(1), tl.program_id(0)
    HALF: tl.constexpr = BLOCK_M // 2
    offs_m = pid_m * BLOCK_M + tl.arange(0, HALF)
    offs_n = pid_n * BLOCK_N + tl.arange(0, BLOCK_N)
    offs_k = tl.arange(0, BLOCK_K)
    x_ptrs = X + offs_m[:, None] * sxm + offs_k[None, :]
    w_ptrs = W + offs_n[None, :] * swn + offs_k[:, None]
    rows_a, rows_b, cols = offs_m < M, (offs_m + HALF) < M, offs_n < N
    acc_a = tl.zeros([HALF, BLOCK_N], tl.float32)
    acc_b = tl.zeros([HALF, BLOCK_N], tl.float32)
    for k in range(0, K, BLOCK_K):
        in_k = (k + offs_k) < K
        x_a = tl.load(x_ptrs, mask=rows_a[:, None] & in_k[None, :], other=0.0)
        x_b = tl.load(x_ptrs + HALF * sxm, mask=rows_b[:, None] & in_k[None, :], other=0.0)
        w = tl.load(w_ptrs, mask=in_k[:, None] & cols[None, :], other=0).to(x_a.dtype)
        acc_a = tl.dot(x_a, w, acc_a)
        acc_b = tl.dot(x_b, w, acc_b)
        x_ptrs += BLOCK_K
        w_ptrs += BLOCK_K
    scale = tl.load(Scale + offs_n, mask=cols, other=0.0)
    y_ptrs = Y + offs_m[:, None] * sym + offs_n[None, :]
    tl.store(y_ptrs, (acc_a * scale[None, :]).to(Y.dtype.element_ty), mask=rows_a[:, None] & cols[None, :])
    tl.store(y_ptrs + HALF * sym, (acc_b * scale[None, :]).to(Y.dtype.element_ty), mask=rows_b[:, None] & cols[None, :])


@triton.jit
def tma(x_desc, w_desc, Scale, Y, M, N, K, sym,
        BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_K: tl.constexpr):
    """The committed tiling with both operands fetched by the tensor memory accelerator (bulk
    copies: no per-thread addresses, out-of-bounds rows and columns filled with zeros)."""
    pid_n, pid_m = tl.program_id(0), tl.program_id(1)
    off_m, off_n = pid_m * BLOCK_M, pid_n * BLOCK_N
    acc = tl.zeros([BLOCK_M, BLOCK_N], tl.float32)
    for k in range(0, K, BLOCK_K):
        x = x_desc.load([off_m, k])
        w = w_desc.load([off_n, k])
        acc = tl.dot(x, w.to(x.dtype).T, acc)
    offs_m = off_m + tl.arange(0, BLOCK_M)
    offs_n = off_n + tl.arange(0, BLOCK_N)
    cols = offs_n < N
    scale = tl.load(Scale + offs_n, mask=cols, other=0.0)
    y = acc * scale[None, :]
    tl.store(Y + offs_m[:, None] * sym + offs_n[None, :], y.to(Y.dtype.element_ty), mask=(offs_m < M)[:, None] & cols[None, :])


@triton.jit
def tma_halves(x_desc, w_desc, Scale, Y, M, N, K, sym,
               BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_K: tl.constexpr):
    """TMA loads, rows in two 32-row dots (mma.sync: the converted weight stays in registers)."""
    pid_n, pid_m = tl.program_id(0), tl.program_id(1)
    HALF: tl.constexpr = BLOCK_M // 2
    off_m, off_n = pid_m * BLOCK_M, pid_n * BLOCK_N
    acc_a = tl.zeros([HALF, BLOCK_N], tl.float32)
    acc_b = tl.zeros([HALF, BLOCK_N], tl.float32)
    for k in range(0, K, BLOCK_K):
        x_a = x_desc.load([off_m, k])
        x_b = x_desc.load([off_m + HALF, k])
        w = w_desc.load([off_n, k]).to(x_a.dtype).T
        acc_a = tl.dot(x_a, w, acc_a)
        acc_b = tl.dot(x_b, w, acc_b)
    offs_m = off_m + tl.arange(0, HALF)
    offs_n = off_n + tl.arange(0, BLOCK_N)
    cols = offs_n < N
    scale = tl.load(Scale + offs_n, mask=cols, other=0.0)
    y_ptrs = Y + offs_m[:, None] * sym + offs_n[None, :]
    tl.store(y_ptrs, (acc_a * scale[None, :]).to(Y.dtype.element_ty), mask=(offs_m < M)[:, None] & cols[None, :])
    tl.store(y_ptrs + HALF * sym, (acc_b * scale[None, :]).to(Y.dtype.element_ty), mask=(offs_m + HALF < M)[:, None] & cols[None, :])


@triton.jit
def tma_swapped(x_desc, w_desc, Scale, Y, M, N, K, sym,
                BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_K: tl.constexpr):
    """TMA loads, acc[n, m] = W_tile @ x_tile^T: the converted weight is wgmma's register operand."""
    pid_n, pid_m = tl.program_id(0), tl.program_id(1)
    off_m, off_n = pid_m * BLOCK_M, pid_n * BLOCK_N
    acc = tl.zeros([BLOCK_N, BLOCK_M], tl.float32)
    for k in range(0, K, BLOCK_K):
        x = x_desc.load([off_m, k])
        w = w_desc.load([off_n, k])
        acc = tl.dot(w.to(x.dtype), x.T, acc)
    offs_m = off_m + tl.arange(0, BLOCK_M)
    offs_n = off_n + tl.arange(0, BLOCK_N)
    cols = offs_n < N
    scale = tl.load(Scale + offs_n, mask=cols, other=0.0)
    y = acc * scale[:, None]
    tl.store(Y + offs_m[None, :] * sym + offs_n[:, None], y.to(Y.dtype.element_ty), mask=cols[:, None] & (offs_m < M)[None, :])


@triton.jit
def tma_swapped_streamk(x_desc, w_desc, Scale, Y, Partial, Arrivals, M, N, K, sym,
                        BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_K: tl.constexpr):
    """tma_swapped, with stream-K shares of (tile, k-block) units and the fp32 fix-up."""
    pid = tl.program_id(0)
    programs = tl.num_programs(0)
    tiles_n = tl.cdiv(N, BLOCK_N)
    k_blocks = tl.cdiv(K, BLOCK_K)
    units = tl.cdiv(M, BLOCK_M) * tiles_n * k_blocks
    unit = pid * units // programs
    end = (pid + 1) * units // programs
    while unit < end:
        tile = unit // k_blocks
        kb_start = unit - tile * k_blocks
        kb_end = tl.minimum(k_blocks, kb_start + end - unit)
        off_m, off_n = (tile // tiles_n) * BLOCK_M, (tile % tiles_n) * BLOCK_N
        acc = tl.zeros([BLOCK_N, BLOCK_M], tl.float32)
        for kb in range(kb_start, kb_end):
            x = x_desc.load([off_m, kb * BLOCK_K])
            w = w_desc.load([off_n, kb * BLOCK_K])
            acc = tl.dot(w.to(x.dtype), x.T, acc)
        offs_m = off_m + tl.arange(0, BLOCK_M)
        offs_n = off_n + tl.arange(0, BLOCK_N)
        cols = offs_n < N
        scale = tl.load(Scale + offs_n, mask=cols, other=0.0)
        acc = acc * scale[:, None]
        inside = cols[:, None] & (offs_m < M)[None, :]
        y_ptrs = Y + offs_m[None, :] * sym + offs_n[:, None]
        first = _owner(tile * k_blocks, units, programs)
        last = _owner(tile * k_blocks + k_blocks - 1, units, programs)
        if first == last:
            tl.store(y_ptrs, acc.to(Y.dtype.element_ty), mask=inside)
        else:
            part_ptrs = Partial + offs_m[None, :] * N + offs_n[:, None]
            tl.atomic_add(part_ptrs, acc, mask=inside, sem="relaxed")
            tl.debug_barrier()
            arrived = tl.atomic_add(Arrivals + tile, 1, sem="acq_rel")
            if arrived == last - first:
                tl.debug_barrier()
                total = tl.load(part_ptrs, mask=inside, other=0.0, cache_modifier=".cg")
                tl.store(y_ptrs, total.to(Y.dtype.element_ty), mask=inside)
                tl.store(part_ptrs, tl.zeros_like(acc), mask=inside)
                tl.store(Arrivals + tile, 0)
        unit += kb_end - kb_start
