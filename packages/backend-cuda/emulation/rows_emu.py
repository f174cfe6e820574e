"""Emulation of attention.cu's rows_kernel + combine_kernel (split-K decode) vectorised over the 128 threads.

Copied from the project's emulation of the inference kernels; finish() now also writes what the *WithStatistics
kernels save (`statistics`: each map's log-sum-exp m + ln l and, diff only, its own output o/l), as finish_row
does."""
import sys
import numpy as np
sys.path.insert(0, __import__('os').path.dirname(__import__('os').path.abspath(__file__)))
import ptx
from flash_emu import Params, reference

kThreads, kChunk, kCols = 128, 128, 8

def split_count(p, sms):
    rows = p.batch * p.tokens * p.heads
    target = 4 * max(1, sms)
    if rows >= target: return 1
    visible = min(p.key_length, p.key_offset + p.tokens) if p.causal else p.key_length
    splits = (target + rows - 1) // rows
    splits = min(splits, (visible + 255) // 256, 64)
    return max(1, splits)

def rows_emu(p, Q, K, V, lam, w, diff, rnd, sms=132, statistics=None):
    splits = split_count(p, sms)
    rows = p.batch * p.tokens * p.heads
    out = np.full(rows * p.dv, np.nan, np.float32)
    PF = 4 + 2 * p.dv
    ws = np.full(rows * splits * PF, np.nan, np.float32)
    tid = np.arange(kThreads)
    def geom(row):
        h = row % p.heads; t = (row // p.heads) % p.tokens; b = row // (p.heads * p.tokens)
        group = h * p.kv_heads // p.heads
        end = min(p.key_length, p.key_offset + t + 1) if p.causal else p.key_length
        return b, t, h, group, end
    def finish(row, b, t, h, o1, o2, m1, l1, m2, l2):
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
            inv1 = np.float32(1) / np.float32(l1); w2 = np.float32(lamv) / np.float32(l2) if diff else 0
        value = o1 * inv1 - (o2 * w2 if diff else 0)
        cols = tid[:, None] + np.arange(kCols)[None, :] * kThreads
        sq = np.where(cols < p.dv, value * value, 0).sum()
        gain = 1.0
        if diff and p.norm: gain = p.output_scale / np.sqrt(sq / p.dv + p.eps)
        for i in range(kCols):
            c = tid + i * kThreads
            ok = c < p.dv
            y = value[:, i] * gain
            if diff and p.norm and w is not None: y = y * np.where(ok, w[np.minimum(c, p.dv - 1)], 1)
            out[row * p.dv + c[ok]] = rnd(y[ok])
    qh = 2 * p.heads if diff else p.heads
    shared = p.key_heads == p.kv_heads
    for row in range(rows):
        b, t, h, group, end = geom(row)
        for split in range(splits):
            q1 = ((b * p.tokens + t) * qh + (2 * h if diff else h)) * p.dk
            kh1 = 2 * group if diff and not shared else group
            kh2 = 2 * group + 1 if diff and not shared else group
            ks = p.key_heads * p.dk
            k1 = (b * p.keys * p.key_heads + kh1) * p.dk
            k2 = (b * p.keys * p.key_heads + kh2) * p.dk
            vstr = p.kv_heads * p.dv
            v = (b * p.keys * p.kv_heads + group) * p.dv
            q1s = Q[q1:q1 + p.dk]; q2s = Q[q1 + p.dk:q1 + 2 * p.dk] if diff else None
            per = (end + splits - 1) // splits
            lo = split * per; hi = min(end, lo + per)
            m1 = m2 = -np.inf; l1 = l2 = 0.0
            o1 = np.zeros((kThreads, kCols), np.float32); o2 = np.zeros((kThreads, kCols), np.float32)
            for c0 in range(lo, hi, kChunk):
                count = min(kChunk, hi - c0)
                s = c0 + tid
                act = tid < count
                sc1 = np.full(kThreads, -np.inf, np.float32); sc2 = np.full(kThreads, -np.inf, np.float32)
                for T_ in np.nonzero(act)[0]:
                    i1 = k1 + s[T_] * ks; i2 = k2 + s[T_] * ks
                    assert i1 + p.dk <= K.size and i2 + p.dk <= K.size
                    sc1[T_] = p.scale * np.dot(q1s, K[i1:i1 + p.dk])
                    if diff: sc2[T_] = p.scale * np.dot(q2s, K[i2:i2 + p.dk])
                def step(score, m, l):
                    cm = score.max(); mn = max(m, cm)
                    alpha = np.exp(m - mn); pr = np.exp(score - mn)
                    return alpha, pr, l * alpha + pr.sum(), mn
                a1, p1, l1, m1 = step(sc1, m1, l1)
                if diff: a2, p2, l2, m2 = step(sc2, m2, l2)
                else: a2 = 0
                for i in range(kCols):
                    c = tid + i * kThreads
                    ok = c < p.dv
                    idx = v + c0 * vstr + np.arange(count)[:, None] * vstr + c[None, ok]
                    assert idx.size == 0 or idx.max() < V.size
                    x = V[idx]  # [count, ncols]
                    acc1 = (p1[:count, None] * x).sum(0)
                    o1[ok, i] = o1[ok, i] * a1 + acc1
                    if diff: o2[ok, i] = o2[ok, i] * a2 + (p2[:count, None] * x).sum(0)
            if splits == 1:
                finish(row, b, t, h, o1, o2, m1, l1, m2, l2)
                continue
            base = (row * splits + split) * PF
            ws[base:base + 4] = [m1, l1, m2, l2]
            for i in range(kCols):
                c = tid + i * kThreads; ok = c < p.dv
                ws[base + 4 + c[ok]] = o1[ok, i]
                ws[base + 4 + p.dv + c[ok]] = o2[ok, i]
        if splits > 1:
            parts = ws[row * splits * PF:(row + 1) * splits * PF].reshape(splits, PF)
            m1 = parts[:, 0].max(); m2 = parts[:, 2].max()
            l1 = l2 = 0.0
            o1 = np.zeros((kThreads, kCols), np.float32); o2 = np.zeros((kThreads, kCols), np.float32)
            for sp in range(splits):
                pt = parts[sp]
                w1 = np.exp(pt[0] - m1) if pt[1] > 0 else 0.0
                w2 = np.exp(pt[2] - m2) if (diff and pt[3] > 0) else 0.0
                l1 += pt[1] * w1; l2 += pt[3] * w2
                for i in range(kCols):
                    c = tid + i * kThreads; ok = c < p.dv
                    o1[ok, i] += pt[4 + c[ok]] * w1
                    if diff: o2[ok, i] += pt[4 + p.dv + c[ok]] * w2
            finish(row, *geom(row)[:3], o1, o2, m1, l1, m2, l2)
    if statistics is not None:
        statistics['splits'] = splits
    return out, splits
