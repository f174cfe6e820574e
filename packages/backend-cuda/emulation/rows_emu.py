"""Emulation of attention.cu's rows_kernel (vectorised over its 128 threads), its split-key partials and the
combine_kernel that merges partials (the rows kernel's or the flash kernel's) and finishes each row.

The scores stage each chunk's key rows through shared memory kSlab dimensions at a time, as the kernel does:
element e of a slab is loaded by thread e % 128 from key c0 + e // width, dimension d0 + e % width (consecutive
threads, consecutive addresses), and thread j reads row j back. The staging arrays start as NaN and every global
read is bounds-checked. finish() writes what the *WithStatistics kernels save (`statistics`: each map's log-sum-exp
m + ln l and, diff only, its own output o/l), as finish_row does."""
import numpy as np

kThreads, kChunk, kCols, kSlab = 128, 128, 8, 32
kSlabStride = kSlab + 1


def split_count(p, sms):
    rows = p.batch * p.tokens * p.heads
    target = 4 * max(1, sms)
    if rows >= target:
        return 1
    visible = min(p.key_length, p.key_offset + p.tokens) if p.causal else p.key_length
    splits = (target + rows - 1) // rows
    splits = min(splits, (visible + 255) // 256, 64)
    return max(1, splits)


def geometry(p, row):
    h = row % p.heads
    t = (row // p.heads) % p.tokens
    b = row // (p.heads * p.tokens)
    group = h * p.kv_heads // p.heads
    end = min(p.key_length, p.key_offset + t + 1) if p.causal else p.key_length
    return b, t, h, group, end


def finish(p, row, o1, o2, m1, l1, m2, l2, lam, w, diff, rnd, out, writes, statistics=None):
    """finish_row: o1/l1 − λ·o2/l2 (diff) or o1/l1, the fused RMSNorm × weight × output scale, stored rounded."""
    b, t, h, _, _ = geometry(p, row)
    tid = np.arange(kThreads)
    cols = tid[:, None] + np.arange(kCols)[None, :] * kThreads
    if statistics is not None:
        maps = 2 if diff else 1
        statistics['lse'][row * maps] = np.float32(m1) + np.log(np.float32(l1))
        statistics['lse_writes'][row * maps] += 1
        if diff:
            statistics['lse'][row * 2 + 1] = np.float32(m2) + np.log(np.float32(l2))
            statistics['lse_writes'][row * 2 + 1] += 1
            ok = cols < p.dv
            base = row * 2 * p.dv
            statistics['maps'][base + cols[ok]] = o1[ok] / np.float32(l1)
            statistics['maps'][base + p.dv + cols[ok]] = o2[ok] / np.float32(l2)
            statistics['maps_writes'][base + cols[ok]] += 1
            statistics['maps_writes'][base + p.dv + cols[ok]] += 1
    lamv = 0.0
    if diff:
        li = (b * p.tokens + t) * p.heads + h if p.lambda_per_token else h
        lamv = lam[li]
    with np.errstate(divide='ignore', invalid='ignore'):
        inv1 = np.float32(1) / np.float32(l1)
        w2 = np.float32(lamv) / np.float32(l2) if diff else 0
    value = o1 * inv1 - (o2 * w2 if diff else 0)
    sq = np.where(cols < p.dv, value * value, 0).sum()
    gain = 1.0
    if diff and p.norm:
        gain = p.output_scale / np.sqrt(sq / p.dv + p.eps)
    for i in range(kCols):
        c = tid + i * kThreads
        ok = c < p.dv
        y = value[:, i] * gain
        if diff and p.norm and w is not None:
            y = y * np.where(ok, w[np.minimum(c, p.dv - 1)], 1)
        out[row * p.dv + c[ok]] = rnd(y[ok])
        writes[row * p.dv + c[ok]] += 1


def combine(p, ws, splits, lam, w, diff, rnd, out, writes, statistics=None):
    """combine_kernel for every row: merges the splits (a split with no keys has l = 0 and weighs nothing)."""
    pf = 4 + 2 * p.dv
    tid = np.arange(kThreads)
    for row in range(p.batch * p.tokens * p.heads):
        parts = ws[row * splits * pf:(row + 1) * splits * pf].reshape(splits, pf)
        m1 = parts[:, 0].max()
        m2 = parts[:, 2].max()
        l1 = l2 = np.float32(0)
        o1 = np.zeros((kThreads, kCols), np.float32)
        o2 = np.zeros((kThreads, kCols), np.float32)
        for sp in range(splits):
            pt = parts[sp]
            w1 = np.exp(pt[0] - m1) if pt[1] > 0 else 0.0
            w2 = np.exp(pt[2] - m2) if (diff and pt[3] > 0) else 0.0
            l1 += pt[1] * w1
            l2 += pt[3] * w2
            for i in range(kCols):
                c = tid + i * kThreads
                ok = c < p.dv
                o1[ok, i] += pt[4 + c[ok]] * w1
                if diff:
                    o2[ok, i] += pt[4 + p.dv + c[ok]] * w2
        finish(p, row, o1, o2, m1, l1, m2, l2, lam, w, diff, rnd, out, writes, statistics)


def rows_emu(p, Q, K, V, lam, w, diff, rnd, sms=132, statistics=None):
    splits = split_count(p, sms)
    rows = p.batch * p.tokens * p.heads
    out = np.full(rows * p.dv, np.nan, np.float32)
    writes = np.zeros(out.size, np.int32)
    pf = 4 + 2 * p.dv
    ws = np.full(rows * splits * pf, np.nan, np.float32)
    tid = np.arange(kThreads)
    qh = 2 * p.heads if diff else p.heads
    shared = p.key_heads == p.kv_heads
    for row in range(rows):
        b, t, h, group, end = geometry(p, row)
        for split in range(splits):
            q1 = ((b * p.tokens + t) * qh + (2 * h if diff else h)) * p.dk
            kh1 = 2 * group if diff and not shared else group
            kh2 = 2 * group + 1 if diff and not shared else group
            ks = p.key_heads * p.dk
            k1 = (b * p.keys * p.key_heads + kh1) * p.dk
            k2 = (b * p.keys * p.key_heads + kh2) * p.dk
            vstr = p.kv_heads * p.dv
            v = (b * p.keys * p.kv_heads + group) * p.dv
            q1s = Q[q1:q1 + p.dk]
            q2s = Q[q1 + p.dk:q1 + 2 * p.dk] if diff else None
            per = (end + splits - 1) // splits
            lo = split * per
            hi = min(end, lo + per)
            m1 = m2 = -np.inf
            l1 = l2 = 0.0
            o1 = np.zeros((kThreads, kCols), np.float32)
            o2 = np.zeros((kThreads, kCols), np.float32)
            for c0 in range(lo, hi, kChunk):
                count = min(kChunk, hi - c0)
                d1 = np.zeros(kThreads, np.float32)
                d2 = np.zeros(kThreads, np.float32)
                for d0 in range(0, p.dk, kSlab):
                    width = min(kSlab, p.dk - d0)
                    keys1 = np.full(kChunk * kSlabStride, np.nan, np.float32)
                    keys2 = np.full(kChunk * kSlabStride, np.nan, np.float32)
                    e = np.arange(count * width)
                    key, column = e // width, e % width
                    offset = (c0 + key) * ks + d0 + column
                    assert e.size == 0 or (k1 + offset.max() < K.size and k2 + offset.max() < K.size)
                    keys1[key * kSlabStride + column] = K[k1 + offset]
                    if diff:
                        keys2[key * kSlabStride + column] = K[k2 + offset]
                    act = tid[:count]
                    for c in range(width):
                        d1[act] = d1[act] + q1s[d0 + c] * keys1[act * kSlabStride + c]
                        if diff:
                            d2[act] = d2[act] + q2s[d0 + c] * keys2[act * kSlabStride + c]
                sc1 = np.where(tid < count, np.float32(p.scale) * d1, -np.inf)
                sc2 = np.where(tid < count, np.float32(p.scale) * d2, -np.inf)

                def step(score, m, l):
                    mn = max(m, score.max())
                    return np.exp(m - mn), np.exp(score - mn), l * np.exp(m - mn) + np.exp(score - mn).sum(), mn
                a1, p1, l1, m1 = step(sc1, m1, l1)
                if diff:
                    a2, p2, l2, m2 = step(sc2, m2, l2)
                for i in range(kCols):
                    c = tid + i * kThreads
                    ok = c < p.dv
                    idx = v + c0 * vstr + np.arange(count)[:, None] * vstr + c[None, ok]
                    assert idx.size == 0 or idx.max() < V.size
                    x = V[idx]  # [count, columns]
                    o1[ok, i] = o1[ok, i] * a1 + (p1[:count, None] * x).sum(0)
                    if diff:
                        o2[ok, i] = o2[ok, i] * a2 + (p2[:count, None] * x).sum(0)
            if splits == 1:
                finish(p, row, o1, o2, m1, l1, m2, l2, lam, w, diff, rnd, out, writes, statistics)
                continue
            base = (row * splits + split) * pf
            ws[base:base + 4] = [m1, l1, m2, l2]
            for i in range(kCols):
                c = tid + i * kThreads
                ok = c < p.dv
                ws[base + 4 + c[ok]] = o1[ok, i]
                ws[base + 4 + p.dv + c[ok]] = o2[ok, i]
    if splits > 1:
        combine(p, ws, splits, lam, w, diff, rnd, out, writes, statistics)
    if statistics is not None:
        statistics['splits'] = splits
    return out, splits, writes
