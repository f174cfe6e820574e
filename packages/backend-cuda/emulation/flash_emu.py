"""Line-by-line emulation of flash_diff.cu's flash_diff_kernel (index math, cp.async zero-fill, mma fragments,
ldmatrix.trans, online softmax with the +8 threshold, masking, epilogue), vectorised over the 32 lanes of a warp.
Shared memory starts as NaN so any read of an unwritten element poisons the output.

Copied from the project's emulation of the inference kernels; the epilogue now also writes what
diffAttentionWithStatistics saves (`statistics`: each map's log-sum-exp ln 2 · (m + log2 l) and its own output
o/l, float32, with write counts), as the kernel does."""
import math
import numpy as np
import ptx

NEG_INF = np.float32(-np.inf)

class Params:
    def __init__(self, **kw):
        self.__dict__.update(kw)

def flash_emu(p, Qf, Kf, Vf, lamf, wf, dtype, DK, DV, stats=None, statistics=None):
    """statistics: None, or a dict with 'lse' [rows·2] and 'maps' [rows·2·DV] float32 arrays (NaN) and their
    'lse_writes' / 'maps_writes' counters, filled like the kernel's log_sum_exp and map_outputs."""
    rnd = ptx.rounder(dtype)
    BM = 64
    BN = 32 if DV > 64 else 64
    QS = KS = DK + 8
    VS = DV + 8
    Q_EL = 2 * BM * QS
    K_EL = BN * KS
    STAGE = 2 * K_EL + BN * VS
    NT, NO = BN // 8, DV // 8
    out = np.full(p.batch * p.tokens * p.heads * DV, np.nan, np.float32)
    writes = np.zeros(out.size, np.int32)
    lane = np.arange(32)
    g, t4 = lane >> 2, lane & 3
    q_tiles = (p.tokens + BM - 1) // BM
    for bz in range(p.batch):
        for by in range(p.heads):
            for bx in range(q_tiles):
                smem = np.full(Q_EL + 2 * STAGE, np.nan, np.float32)
                q_tile = q_tiles - 1 - bx if p.causal else bx
                h, b = by, bz
                q0 = q_tile * BM
                group = (h * p.kv_heads) // p.heads
                shared_keys = p.key_heads == p.kv_heads
                q_stride = 2 * p.heads * DK
                q_base = (b * p.tokens * 2 * p.heads + 2 * h) * DK
                k_stride = p.key_heads * DK
                k1_base = (b * p.keys * p.key_heads + (group if shared_keys else 2 * group)) * DK
                k2_base = k1_base if shared_keys else k1_base + DK
                v_stride = p.kv_heads * DV
                v_base = (b * p.keys * p.kv_heads + group) * DV
                key_end = min(p.key_length, p.key_offset + min(q0 + BM, p.tokens)) if p.causal else p.key_length
                tiles = (key_end + BN - 1) // BN

                def cp16(dst, src_arr, src, valid):
                    assert dst % 8 == 0
                    if valid:
                        assert src % 8 == 0 and 0 <= src and src + 8 <= src_arr.size, ('OOB global read', src)
                        smem[dst:dst + 8] = src_arr[src:src + 8]
                    else:
                        smem[dst:dst + 8] = 0

                for c in range(2 * BM * (DK // 8)):
                    mp = c // (BM * (DK // 8))
                    rest = c % (BM * (DK // 8))
                    r, kc = rest // (DK // 8), (rest % (DK // 8)) * 8
                    valid = q0 + r < p.tokens
                    cp16((mp * BM + r) * QS + kc, Qf, q_base + (q0 + r) * q_stride + mp * DK + kc, valid)

                def load_tile(tile, stage):
                    k1s = Q_EL + stage * STAGE
                    k2s = k1s + K_EL
                    vs = k2s + K_EL
                    s0 = tile * BN
                    for c in range(BN * (DK // 8)):
                        r, kc = c // (DK // 8), (c % (DK // 8)) * 8
                        valid = s0 + r < key_end
                        off = (s0 + r) * k_stride + kc
                        cp16(k1s + r * KS + kc, Kf, k1_base + off, valid)
                        if not shared_keys:
                            cp16(k2s + r * KS + kc, Kf, k2_base + off, valid)
                    for c in range(BN * (DV // 8)):
                        r, vc = c // (DV // 8), (c % (DV // 8)) * 8
                        valid = s0 + r < key_end
                        cp16(vs + r * VS + vc, Vf, v_base + (s0 + r) * v_stride + vc, valid)

                W = []
                for warp in range(4):
                    W.append(dict(o1=np.zeros((NO, 32, 4), np.float32), o2=np.zeros((NO, 32, 4), np.float32),
                                  m1=np.full((2, 32), NEG_INF), m2=np.full((2, 32), NEG_INF),
                                  l1=np.zeros((2, 32), np.float32), l2=np.zeros((2, 32), np.float32)))
                scale_log2 = np.float32(p.scale) * np.float32(1.4426950408889634)

                def pair(idx):
                    assert np.all(idx % 2 == 0)
                    return np.stack([smem[idx], smem[idx + 1]], -1)

                def softmax_tile(s, m, l, o):
                    tile_max = np.full((2, 32), NEG_INF)
                    for nt in range(NT):
                        tile_max[0] = np.maximum(tile_max[0], np.maximum(s[nt][:, 0], s[nt][:, 1]))
                        tile_max[1] = np.maximum(tile_max[1], np.maximum(s[nt][:, 2], s[nt][:, 3]))
                    move = np.zeros((2, 32), bool)
                    for r in range(2):
                        tile_max[r] = np.maximum(tile_max[r], ptx.shfl_xor(tile_max[r], 1))
                        tile_max[r] = np.maximum(tile_max[r], ptx.shfl_xor(tile_max[r], 2))
                        move[r] = tile_max[r] > m[r] + np.float32(8)
                    if np.any(move[0] | move[1]):
                        if stats is not None: stats['rescales'] = stats.get('rescales', 0) + 1
                        for r in range(2):
                            alpha = np.where(move[r], ptx.ex2_approx_ftz(m[r] - tile_max[r]), np.float32(1))
                            m[r] = np.where(move[r], tile_max[r], m[r])
                            l[r] = l[r] * alpha
                            for no in range(NO):
                                o[no][:, 2 * r] *= alpha
                                o[no][:, 2 * r + 1] *= alpha
                    base0 = np.where(m[0] == NEG_INF, np.float32(0), m[0])
                    base1 = np.where(m[1] == NEG_INF, np.float32(0), m[1])
                    for nt in range(NT):
                        s[nt][:, 0] = ptx.ex2_approx_ftz(s[nt][:, 0] - base0)
                        s[nt][:, 1] = ptx.ex2_approx_ftz(s[nt][:, 1] - base0)
                        s[nt][:, 2] = ptx.ex2_approx_ftz(s[nt][:, 2] - base1)
                        s[nt][:, 3] = ptx.ex2_approx_ftz(s[nt][:, 3] - base1)
                        l[0] += s[nt][:, 0] + s[nt][:, 1]
                        l[1] += s[nt][:, 2] + s[nt][:, 3]
                    if stats is not None:
                        stats['pmax'] = max(stats.get('pmax', 0), float(np.nanmax([np.nanmax(x) for x in s])))

                if tiles > 0:
                    load_tile(0, 0)
                for j in range(tiles):
                    if j + 1 < tiles:
                        load_tile(j + 1, (j + 1) & 1)
                    k1s = Q_EL + (j & 1) * STAGE
                    k2s = k1s if shared_keys else k1s + K_EL
                    vs = k1s + 2 * K_EL
                    for warp in range(4):
                        st = W[warp]
                        row0 = warp * 16 + g
                        position0 = p.key_offset + q0 + row0
                        s1 = [np.zeros((32, 4), np.float32) for _ in range(NT)]
                        s2 = [np.zeros((32, 4), np.float32) for _ in range(NT)]
                        for kk in range(DK // 16):
                            q1 = row0 * QS + kk * 16 + 2 * t4
                            q2 = q1 + BM * QS
                            a1 = np.stack([pair(q1), pair(q1 + 8 * QS), pair(q1 + 8), pair(q1 + 8 * QS + 8)], 1)
                            a2 = np.stack([pair(q2), pair(q2 + 8 * QS), pair(q2 + 8), pair(q2 + 8 * QS + 8)], 1)
                            for nt in range(NT):
                                k1 = k1s + (nt * 8 + g) * KS + kk * 16 + 2 * t4
                                k2 = k2s + (nt * 8 + g) * KS + kk * 16 + 2 * t4
                                s1[nt] = ptx.mma_m16n8k16(s1[nt], a1, np.stack([pair(k1), pair(k1 + 8)], 1))
                                s2[nt] = ptx.mma_m16n8k16(s2[nt], a2, np.stack([pair(k2), pair(k2 + 8)], 1))
                        s0 = j * BN
                        mask = s0 + BN > p.key_length or (p.causal and s0 + BN - 1 > p.key_offset + q0)
                        for nt in range(NT):
                            for e in range(4):
                                x1 = s1[nt][:, e] * scale_log2
                                x2 = s2[nt][:, e] * scale_log2
                                if mask:
                                    key = s0 + nt * 8 + 2 * t4 + (e & 1)
                                    position = position0 + (e >> 1) * 8
                                    kill = (key >= p.key_length) | ((key > position) if p.causal else False)
                                    x1 = np.where(kill, NEG_INF, x1)
                                    x2 = np.where(kill, NEG_INF, x2)
                                s1[nt][:, e] = x1
                                s2[nt][:, e] = x2
                        softmax_tile(s1, st['m1'], st['l1'], st['o1'])
                        softmax_tile(s2, st['m2'], st['l2'], st['o2'])
                        for kk in range(BN // 16):
                            def pk(s):
                                return np.stack([np.stack([rnd(s[2 * kk][:, 0]), rnd(s[2 * kk][:, 1])], -1),
                                                 np.stack([rnd(s[2 * kk][:, 2]), rnd(s[2 * kk][:, 3])], -1),
                                                 np.stack([rnd(s[2 * kk + 1][:, 0]), rnd(s[2 * kk + 1][:, 1])], -1),
                                                 np.stack([rnd(s[2 * kk + 1][:, 2]), rnd(s[2 * kk + 1][:, 3])], -1)], 1)
                            p1, p2 = pk(s1), pk(s2)
                            matrix = lane >> 3
                            v_row = vs + (kk * 16 + (lane & 7) + (matrix & 1) * 8) * VS + (matrix >> 1) * 8
                            for npp in range(DV // 16):
                                vb = ptx.ldmatrix_x4_trans(smem, v_row + npp * 16)
                                st['o1'][2 * npp] = ptx.mma_m16n8k16(st['o1'][2 * npp], p1, vb[:, 0:2])
                                st['o1'][2 * npp + 1] = ptx.mma_m16n8k16(st['o1'][2 * npp + 1], p1, vb[:, 2:4])
                                st['o2'][2 * npp] = ptx.mma_m16n8k16(st['o2'][2 * npp], p2, vb[:, 0:2])
                                st['o2'][2 * npp + 1] = ptx.mma_m16n8k16(st['o2'][2 * npp + 1], p2, vb[:, 2:4])
                # epilogue
                for warp in range(4):
                    st = W[warp]
                    l1, l2, o1, o2 = st['l1'], st['l2'], st['o1'], st['o2']
                    row0 = warp * 16 + g
                    for r in range(2):
                        l1[r] = l1[r] + ptx.shfl_xor(l1[r], 1); l1[r] = l1[r] + ptx.shfl_xor(l1[r], 2)
                        l2[r] = l2[r] + ptx.shfl_xor(l2[r], 1); l2[r] = l2[r] + ptx.shfl_xor(l2[r], 2)
                    for r in range(2):
                        t = q0 + row0 + 8 * r
                        valid = t < p.tokens
                        lam = np.zeros(32, np.float32)
                        for L in range(32):
                            if valid[L]:
                                li = (b * p.tokens + t[L]) * p.heads + h if p.lambda_per_token else h
                                assert 0 <= li < lamf.size
                                lam[L] = lamf[li]
                        with np.errstate(divide='ignore', invalid='ignore'):
                            inverse1 = np.float32(1) / l1[r]
                            weight2 = lam / l2[r]
                        if statistics is not None:
                            m1, m2 = st['m1'], st['m2']
                            for L in range(32):
                                if not valid[L]:
                                    continue
                                row = (b * p.tokens + t[L]) * p.heads + h
                                if t4[L] == 0:
                                    for mp, (m, l) in enumerate(((m1, l1), (m2, l2))):
                                        ln2 = 1 if statistics.get('mutation') == 'lse-base2' else 0.6931471805599453
                                        statistics['lse'][row * 2 + mp] = np.float32(ln2) * (
                                            m[r][L] + np.log2(l[r][L]))
                                        statistics['lse_writes'][row * 2 + mp] += 1
                                inverse2 = np.float32(1) / l2[r][L]
                                for no in range(NO):
                                    c = no * 8 + 2 * t4[L]
                                    for e in range(2):
                                        i1 = row * 2 * DV + c + e
                                        statistics['maps'][i1] = o1[no][L, 2 * r + e] * inverse1[L]
                                        statistics['maps'][i1 + DV] = o2[no][L, 2 * r + e] * inverse2
                                        statistics['maps_writes'][i1] += 1
                                        statistics['maps_writes'][i1 + DV] += 1
                        squares = np.zeros(32, np.float32)
                        for no in range(NO):
                            for e in range(2):
                                d = o1[no][:, 2 * r + e] * inverse1 - o2[no][:, 2 * r + e] * weight2
                                o1[no][:, 2 * r + e] = d
                                squares += d * d
                        gain = np.ones(32, np.float32)
                        if p.norm:
                            squares = squares + ptx.shfl_xor(squares, 1)
                            squares = squares + ptx.shfl_xor(squares, 2)
                            gain = np.float32(p.output_scale) / np.sqrt(squares / np.float32(DV) + np.float32(p.eps))
                        for L in range(32):
                            if not valid[L]:
                                continue
                            y = ((b * p.tokens + t[L]) * p.heads + h) * DV
                            for no in range(NO):
                                c = no * 8 + 2 * t4[L]
                                y0 = o1[no][L, 2 * r] * gain[L]
                                y1 = o1[no][L, 2 * r + 1] * gain[L]
                                if p.norm and wf is not None:
                                    y0 *= wf[c]; y1 *= wf[c + 1]
                                assert y + c + 1 < out.size
                                out[y + c] = rnd(y0); out[y + c + 1] = rnd(y1)
                                writes[y + c] += 1; writes[y + c + 1] += 1
    return out, writes


def reference(p, Q, K, V, lam, w, DK, DV):
    """float64 reference of the kernel contract. Q [B,T,2H,DK], K [B,S,KH,DK], V [B,S,Hkv,DV]."""
    B, T = p.batch, p.tokens
    out = np.zeros((B, T, p.heads, DV))
    shared = p.key_heads == p.kv_heads
    keys = np.arange(p.keys)
    for b in range(B):
        for h in range(p.heads):
            gidx = h * p.kv_heads // p.heads
            k1 = K[b, :, gidx if shared else 2 * gidx].astype(np.float64)
            k2 = K[b, :, gidx if shared else 2 * gidx + 1].astype(np.float64)
            v = V[b, :, gidx].astype(np.float64)
            q1 = Q[b, :, 2 * h].astype(np.float64)
            q2 = Q[b, :, 2 * h + 1].astype(np.float64)
            ok = keys[None, :] < p.key_length
            if p.causal:
                ok = ok & (keys[None, :] <= p.key_offset + np.arange(T)[:, None])
            def sm(s):
                s = np.where(ok, s, -np.inf)
                s = s - s.max(1, keepdims=True)
                e = np.exp(s)
                return e / e.sum(1, keepdims=True)
            a1 = sm(p.scale * q1 @ k1.T)
            a2 = sm(p.scale * q2 @ k2.T)
            lh = lam[b, :, h][:, None] if p.lambda_per_token else lam[h]
            o = a1 @ v - lh * (a2 @ v)
            if p.norm:
                o = o / np.sqrt((o * o).mean(1, keepdims=True) + p.eps) * p.output_scale
                if w is not None:
                    o = o * w[None, :]
            out[b, :, h] = o
    return out
