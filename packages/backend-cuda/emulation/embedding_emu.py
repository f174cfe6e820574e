"""Emulation of rows_training.cu's embedding_backward: the (id, position) keys, the bitonic sorting network
(one launch of bitonic_step_kernel per (k, j), each index i compared with i ^ j), and the gather in which block v
binary-searches its run of keys and sums its rows of dy in position order. Checked against a float64
scatter-add, and for the position order the contract asks for (the float32 sum of a run must equal the float32
sum in id order, bit for bit).

`mutation` 'descending' flips the direction test of the network (a sorting bug) for the negative control.
"""
import numpy as np

ALL_ONES = (1 << 64) - 1


def keys_kernel(ids, count, padded):
    i = np.arange(padded, dtype=np.uint64)
    ids = np.asarray(ids, np.int64)
    keys = np.full(padded, np.uint64(ALL_ONES), np.uint64)
    keys[:count] = (ids.astype(np.int32).view(np.uint32).astype(np.uint64) << np.uint64(32)) | i[:count]
    return keys


def bitonic_step(keys, k, j, mutation=None):
    i = np.arange(keys.size)
    partner = i ^ j
    lower = partner > i  # the thread of the lower index does the exchange
    a, b = keys[i[lower]], keys[partner[lower]]
    ascending = (i[lower] & k) == 0
    if mutation == 'descending':
        ascending = ~ascending
    swap = (a > b) == ascending
    keys[i[lower][swap]], keys[partner[lower][swap]] = b[swap], a[swap]


def lower_bound(keys, count, value):
    lo, hi = 0, count
    while lo < hi:
        mid = (lo + hi) // 2
        if keys[mid] < value:
            lo = mid + 1
        else:
            hi = mid
    return lo


def embedding_backward(ids, dy, vocab, mutation=None):
    """ids [count] int32, dy [count, width] float32 → [vocab, width] float32 as the kernels compute it."""
    count, width = dy.shape
    padded = 1
    while padded < count:
        padded <<= 1
    keys = keys_kernel(ids, count, padded)
    k = 2
    while k <= padded:
        j = k >> 1
        while j > 0:
            bitonic_step(keys, k, j, mutation)
            j >>= 1
        k <<= 1
    out = np.full((vocab, width), np.nan, np.float32)
    for v in range(vocab):
        lo = lower_bound(keys, count, np.uint64(v) << np.uint64(32))
        hi = lower_bound(keys, count, np.uint64(v + 1) << np.uint64(32))
        total = np.zeros(width, np.float32)
        for e in range(lo, hi):
            total += dy[int(keys[e] & np.uint64(0xFFFFFFFF))]
        out[v] = total
    return out


def check(count, width, vocab, seed, mutation=None):
    """(NMSE against float64, whether every row equals the float32 sum in position order bit for bit)."""
    rng = np.random.default_rng(seed)
    ids = rng.integers(0, vocab, count)
    ids[0] = vocab - 1
    dy = rng.standard_normal((count, width)).astype(np.float32)
    got = embedding_backward(ids, dy, vocab, mutation)
    want = np.zeros((vocab, width))
    in_order = np.zeros((vocab, width), np.float32)
    for i, v in enumerate(ids):
        want[v] += dy[i]
        in_order[v] += dy[i]
    error = float(((got - want) ** 2).sum() / (want ** 2).sum())
    return error, bool(np.array_equal(got, in_order))
