"""Emulation of matmul.cu's m ≤ 4 path: gemv_split (the host's choice of k splits), gemv_kernel block by block
(vectorised over its 256 threads: a's slice staged in shared memory, b read by warps per column of a k-contiguous b
with or without 16-byte vectors, or by lanes per column of an n-contiguous b with the warps' sums added in order),
and add_splits_kernel. Shared memory starts as NaN at every slice and every global read is bounds-checked; a
16-byte load must stay within the slice it belongs to; every output (or partial) element is written once.

`mutation` names a deliberate bug (MUTATIONS) that run.py's negative controls must catch."""
import numpy as np

import ptx

THREADS, WARPS, SLICE = 256, 8, 1024

MUTATIONS = {
    'gemv-split-slot': 'every split writes its partial sums into split 0’s slot',
    'gemv-vector-stride': 'the 16-byte loads advance by 32 elements instead of 32 vectors',
}


def gemv_split(column_blocks, batches, k, sms):
    blocks = column_blocks * min(batches, 65535)
    target = 2 * max(1, sms)
    slices = -(-k // SLICE)
    splits = 1 if blocks >= target else -(-target // blocks)
    splits = max(1, min(splits, slices))
    k_per_split = -(-slices // splits) * SLICE
    return -(-k // k_per_split), k_per_split


def gemv(a, b, batches, m, n, k, ta, tb, shared, dtype, sms, mutation=None):
    """Returns (out, writes, splits, vectors)."""
    rnd = ptx.rounder(dtype)
    V = 4 if dtype == 'f32' else 8
    column_blocks = -(-n // WARPS) if tb else -(-n // 32)
    splits, k_per_split = gemv_split(column_blocks, batches, k, sms)
    vectors = tb and k % V == 0
    out = np.full(batches * m * n, np.nan, np.float32)
    writes = np.zeros(out.size, np.int32)
    partials = np.full(splits * batches * m * n, np.nan, np.float32) if splits > 1 else None
    partial_writes = np.zeros(partials.size, np.int32) if splits > 1 else None
    tid = np.arange(THREADS)
    warp, lane = tid >> 5, tid & 31

    def read(arr, idx):
        idx = np.asarray(idx)
        assert idx.size == 0 or (idx.min() >= 0 and idx.max() < arr.size), 'global read out of bounds'
        return arr[idx]

    for bx in range(column_blocks):
        for split in range(splits):
            k_begin, k_end = split * k_per_split, min(k, split * k_per_split + k_per_split)
            column = bx * WARPS + warp if tb else bx * 32 + lane  # per thread
            for z in range(batches):
                A = z * m * k
                B = 0 if shared else z * k * n
                acc = np.zeros((THREADS, m), np.float64)
                for k0 in range(k_begin, k_end, SLICE):
                    width = min(SLICE, k_end - k0)
                    as_ = np.full((m, SLICE), np.nan, np.float32)
                    e = np.arange(m * width)
                    mm, kk = e // width, e % width
                    as_[mm, kk] = read(a, A + ((k0 + kk) * m + mm if ta else mm * k + k0 + kk))
                    for t in range(THREADS):
                        col = column[t]
                        if col >= n:
                            continue
                        if tb:
                            row = B + col * k + k0
                            if vectors:
                                step = 32 if mutation == 'gemv-vector-stride' else 32 * V
                                for kk0 in range(lane[t] * V, width, step):
                                    assert kk0 + V <= width, '16-byte load past the slice'
                                    x = read(b, row + kk0 + np.arange(V))
                                    acc[t] += (as_[:, kk0:kk0 + V] * x[None, :]).sum(1)
                            else:
                                kk = np.arange(lane[t], width, 32)
                                acc[t] += (as_[:, kk] * read(b, row + kk)[None, :]).sum(1)
                        else:
                            kk = np.arange(warp[t], width, WARPS)
                            acc[t] += (as_[:, kk] * read(b, B + (k0 + kk) * n + col)[None, :]).sum(1)
                for t in range(THREADS):
                    col = column[t]
                    if tb:
                        writer = col < n and lane[t] == 0
                        total = acc[(tid >> 5) == warp[t]].sum(0)  # warp_sum over the warp's lanes
                    else:
                        writer = col < n and warp[t] == 0
                        total = acc[(tid & 31) == lane[t]].sum(0)  # the warps' sums of this lane's column
                    if not writer:
                        continue
                    for mm in range(m):
                        i = (z * m + mm) * n + col
                        if splits == 1:
                            out[i] = rnd(np.float32(total[mm]))
                            writes[i] += 1
                        else:
                            slot = 0 if mutation == 'gemv-split-slot' else split
                            partials[slot * batches * m * n + i] = total[mm]
                            partial_writes[slot * batches * m * n + i] += 1
    if splits > 1:
        count = batches * m * n
        assert (partial_writes == 1).all(), f'partials written {sorted(set(partial_writes.tolist()))} times'
        for i in range(count):
            out[i] = rnd(np.float32(sum(partials[s * count + i] for s in range(splits))))
            writes[i] += 1
    return out, writes, splits, vectors


def reference(a, b, batches, m, n, k, ta, tb, shared):
    A = a.reshape(batches, k, m).transpose(0, 2, 1) if ta else a.reshape(batches, m, k)
    if shared:
        Bm = (b.reshape(n, k).T if tb else b.reshape(k, n))[None]
    else:
        Bm = b.reshape(batches, n, k).transpose(0, 2, 1) if tb else b.reshape(batches, k, n)
    return (A.astype(np.float64) @ Bm.astype(np.float64)).ravel()


# (batches, m, n, k, shared, dtype): tails of every tile, split and unsplit k, vector and scalar loads.
CASES = [
    (1, 1, 40, 2504, True, 'bf16'),   # decode x·Wᵀ: k split across blocks, 16-byte loads
    (1, 2, 24, 1024, True, 'f16'),    # one slice, 16-byte loads
    (1, 4, 19, 1030, True, 'f16'),    # k not a multiple of a slice
    (2, 3, 33, 300, False, 'f32'),    # batched, b per batch entry
    (1, 2, 70, 37, True, 'bf16'),     # k not a multiple of a vector: scalar loads
    (3, 1, 9, 2049, False, 'f32'),
]
NEGATIVE = {'gemv-split-slot': 0, 'gemv-vector-stride': 0}


def run(report, sms=132):
    rng = np.random.default_rng(7)
    for batches, m, n, k, shared, dtype in CASES:
        rnd = ptx.rounder(dtype)
        for ta in (False, True):
            for tb in (True, False):
                a = rnd(rng.standard_normal(batches * m * k).astype(np.float32))
                b = rnd(rng.standard_normal((1 if shared else batches) * k * n).astype(np.float32))
                want = reference(a, b, batches, m, n, k, ta, tb, shared)
                got, writes, splits, vectors = gemv(a, b, batches, m, n, k, ta, tb, shared, dtype, sms)
                error = float(((got - want) ** 2).sum() / (want ** 2).sum())
                limit = {'f32': 1e-12, 'f16': 1e-6, 'bf16': 1e-4}[dtype]
                problems = [] if (writes == 1).all() else [f'output written {sorted(set(writes.tolist()))} times']
                name = (f'B{batches} m{m} n{n} k{k} {"shared b" if shared else "b per entry"} ta={int(ta)} '
                        f'tb={int(tb)} [{dtype}]')
                detail = (f'{splits} k splits, {"16-byte" if vectors else "scalar"} loads of b, NMSE {error:.1e}'
                          + ''.join(f'; {x}' for x in problems))
                report('matmul', name, not problems and error <= limit, detail)
    for mutation, index in NEGATIVE.items():
        batches, m, n, k, shared, dtype = CASES[index]
        a = ptx.rounder(dtype)(rng.standard_normal(batches * m * k).astype(np.float32))
        b = ptx.rounder(dtype)(rng.standard_normal(k * n).astype(np.float32))
        want = reference(a, b, batches, m, n, k, False, True, shared)
        try:
            got, _, _, _ = gemv(a, b, batches, m, n, k, False, True, shared, dtype, sms, mutation=mutation)
            error = float(((got - want) ** 2).sum() / (want ** 2).sum())
            caught, detail = not error <= 1e-4, f'NMSE {error:.1e}'
        except AssertionError as e:
            caught, detail = True, str(e)
        report('negative', f'{mutation} (gemv: {MUTATIONS[mutation]})', caught, detail if caught else 'not caught')
