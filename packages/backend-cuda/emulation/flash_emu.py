"""Line-by-line emulation of native/flash.cuh's flash_kernel for both attention kernels (MAPS 2: differential,
MAPS 1: standard) in float16, bfloat16 and float32 (3xTF32), vectorised over the 32 lanes of a warp: the
Config arithmetic, cp.async zero-fill, the 2- or 3-stage pipeline in issue order, ldmatrix (Q, K) and
ldmatrix.trans (V), the m16n8k16 and TF32 m16n8k8 fragments, the TF32 key permutation of P·V, the online softmax
with the +8 threshold, masking, warps along dv with the norm's cross-warp sum, the key splits' partials, and the
epilogue with the statistics diffAttentionWithStatistics saves.

Shared memory is one array of the size the host computes (shared_bytes), every element NaN until written, every
access bounds-checked, so a read of an element never written poisons the output; global reads are bounds-checked.
A load into a stage happens when the kernel issues it, i.e. as early as the hardware may do it, so a prefetch into
a stage still being read shows.

`mutation` names one deliberate bug (see MUTATIONS) that run.py's negative controls must catch."""
import numpy as np

import ptx

NEG_INF = np.float32(-np.inf)
LN2 = np.float32(0.6931471805599453)
WARPS_M, BM, FIT_BYTES = 4, 64, 96 * 1024

MUTATIONS = {
    'k-ldmatrix-order': 'the K ldmatrix.x4 matrices of the two key tiles swapped',
    'tf32-v-rows': 'float32 P·V reads V rows t and t+4 instead of 2t and 2t+1',
    'stage-reuse': 'the 3-stage prefetch goes into the stage being computed',
    'split-base2': 'a split partial keeps its running max in base 2',
    'norm-cross-warp': 'with warps along dv, each warp normalises by its own columns only',
}

# The (maps, dk, dv) shapes flash.cuh instantiates (DTX_FLASH_SHAPES).
SHAPES = {(2, 16, 16), (2, 16, 32), (2, 32, 32), (2, 32, 64), (2, 64, 64), (2, 64, 128), (2, 96, 96), (2, 96, 192),
          (2, 128, 128), (2, 128, 256), (1, 16, 16), (1, 32, 32), (1, 64, 64), (1, 96, 96), (1, 128, 128)}


class Config:
    """flash::Config<BYTES, MAPS, DK, DV>."""

    def __init__(self, nbytes, maps, dk, dv):
        self.half = nbytes == 2
        self.bytes, self.maps, self.dk, self.dv = nbytes, maps, dk, dv
        self.WN = 2 if maps * dv > 256 else 1
        self.DVW = dv // self.WN
        self.THREADS = 32 * WARPS_M * self.WN
        self.CHUNK = 16 // nbytes
        pad = 8 if self.half else 4
        self.QS, self.KS, self.VS = dk + pad, dk + pad, dv + pad
        self.Q_BYTES = maps * BM * self.QS * nbytes
        self.BN = 64 if self.fits(64) else 32 if self.fits(32) else 16
        bnc_registers = 32 if maps * self.DVW >= 256 else 64
        self.BNC = min(self.BN, bnc_registers)
        self.NORM_BYTES = self.WN * BM * 4 if self.WN > 1 else 0
        self.Q_IN_REGISTERS = self.half and maps * dk <= 128 and maps * self.DVW < 256
        assert dk % 16 == 0 and self.DVW % 16 == 0 and self.BN % self.BNC == 0 and self.BNC % 16 == 0

    def stage_bytes(self, bn, key_maps):
        return (key_maps * bn * self.KS + bn * self.VS) * self.bytes

    def fits(self, bn):
        return self.Q_BYTES + 2 * self.stage_bytes(bn, self.maps) <= FIT_BYTES

    def shared_bytes(self, stages, key_maps):
        return self.Q_BYTES + stages * self.stage_bytes(self.BN, key_maps) + self.NORM_BYTES


def dtype_bytes(dtype):
    return 4 if dtype == 'f32' else 2


def plan(p, dtype, sms, shared_per_block, force_simt=False):
    """attention.cu's attention_plan: ('flash', splits, stages) or ('rows', splits, 0)."""
    maps = 2 if p.diff else 1
    key_maps = 2 if p.diff and p.key_heads != p.kv_heads else 1
    visible = min(p.key_length, p.key_offset + p.tokens) if p.causal else p.key_length
    if not force_simt and (maps, p.dk, p.dv) in SHAPES:
        c = Config(dtype_bytes(dtype), maps, p.dk, p.dv)
        if c.shared_bytes(2, key_maps) <= shared_per_block:
            stages = 3 if c.shared_bytes(3, key_maps) <= shared_per_block else 2
            blocks = p.batch * p.heads * ((p.tokens + 63) // 64)
            target = 2 * max(1, sms)
            splits = 1
            if blocks < target:
                splits = -(-target // blocks)
                splits = min(splits, (-(-visible // c.BN)) // 2, 64)
                splits = max(1, splits)
            return 'flash', splits, stages
    rows = p.batch * p.tokens * p.heads
    target = 4 * max(1, sms)
    splits = 1
    if rows < target:
        splits = max(1, min(-(-target // rows), (visible + 255) // 256, 64))
    return 'rows', splits, 0


def flash_emu(p, Qf, Kf, Vf, lamf, wf, dtype, stages, splits, statistics=None, stats=None, mutation=None):
    """Runs every block of the grid. Returns (out, writes, workspace or None, workspace writes or None).
    statistics: None, or a dict with 'lse' [rows·maps] and (diff) 'maps' [rows·2·dv] float32 arrays and their
    'lse_writes' / 'maps_writes' counters, filled like the kernel's log_sum_exp and map_outputs."""
    rnd = ptx.rounder(dtype)
    half = dtype != 'f32'
    MAPS = 2 if p.diff else 1
    DK, DV = p.dk, p.dv
    C = Config(dtype_bytes(dtype), MAPS, DK, DV)
    BN, BNC, QS, KS, VS, DVW, WN = C.BN, C.BNC, C.QS, C.KS, C.VS, C.DVW, C.WN
    NT, NO, QK = BNC // 8, DVW // 8, DK // 16
    shared_keys = MAPS == 1 or p.key_heads == p.kv_heads
    key_maps = 1 if shared_keys else 2
    stage_elements = key_maps * BN * KS + BN * VS
    elem = C.bytes
    q_elements = C.Q_BYTES // elem
    total_bytes = C.shared_bytes(stages, key_maps)
    norm_offset = C.Q_BYTES + stages * stage_elements * elem  # bytes, as the kernel computes norm_sums
    assert norm_offset % 4 == 0 and norm_offset + (WN * BM * 4 if WN > 1 else 0) <= total_bytes
    assert (q_elements + stages * stage_elements) * elem <= total_bytes

    rows_total = p.batch * p.tokens * p.heads
    out = np.full(rows_total * DV, np.nan, np.float32)
    writes = np.zeros(out.size, np.int32)
    pf = 4 + 2 * DV
    ws = np.full(rows_total * splits * pf, np.nan, np.float32) if splits > 1 else None
    ws_writes = np.zeros(ws.size, np.int32) if splits > 1 else None
    lane = np.arange(32)
    g, t4 = lane >> 2, lane & 3
    matrix = lane >> 3
    q_tiles = (p.tokens + BM - 1) // BM
    scale_log2 = np.float32(p.scale) * np.float32(1.4426950408889634)

    for bz in range(p.batch * splits):
        for h in range(p.heads):
            for bx in range(q_tiles):
                smem = np.full(total_bytes // elem, np.nan, np.float32)
                norm_sums = np.full(WN * BM, np.nan, np.float32)
                q_tile = q_tiles - 1 - bx if p.causal else bx
                b, split = bz // splits, bz % splits
                q0 = q_tile * BM
                group = (h * p.kv_heads) // p.heads
                q_stride = MAPS * p.heads * DK
                q_base = (b * p.tokens * MAPS * p.heads + MAPS * h) * DK
                k_stride = p.key_heads * DK
                k1_base = (b * p.keys * p.key_heads + (group if shared_keys else 2 * group)) * DK
                v_stride = p.kv_heads * DV
                v_base = (b * p.keys * p.kv_heads + group) * DV
                key_end = min(p.key_length, p.key_offset + min(q0 + BM, p.tokens)) if p.causal else p.key_length
                all_tiles = (key_end + BN - 1) // BN
                per_split = (all_tiles + splits - 1) // splits
                tile_begin = min(all_tiles, split * per_split)
                tiles = min(all_tiles, tile_begin + per_split) - tile_begin

                def cp16(dst, src_arr, src, valid):
                    assert dst % C.CHUNK == 0 and 0 <= dst and dst + C.CHUNK <= q_elements + stages * stage_elements
                    if valid:
                        assert src % C.CHUNK == 0 and 0 <= src and src + C.CHUNK <= src_arr.size, ('OOB read', src)
                        smem[dst:dst + C.CHUNK] = src_arr[src:src + C.CHUNK]
                    else:
                        smem[dst:dst + C.CHUNK] = 0

                per_row_k = DK // C.CHUNK
                for c in range(MAPS * BM * per_row_k):
                    mp, rest = c // (BM * per_row_k), c % (BM * per_row_k)
                    r, kc = rest // per_row_k, (rest % per_row_k) * C.CHUNK
                    valid = q0 + r < p.tokens
                    cp16((mp * BM + r) * QS + kc, Qf, q_base + (q0 + r) * q_stride + mp * DK + kc, valid)

                def load_tile(tile, stage):
                    ks = q_elements + stage * stage_elements
                    vs = ks + key_maps * BN * KS
                    s0 = (tile_begin + tile) * BN
                    for c in range(key_maps * BN * per_row_k):
                        mp, rest = c // (BN * per_row_k), c % (BN * per_row_k)
                        r, kc = rest // per_row_k, (rest % per_row_k) * C.CHUNK
                        valid = s0 + r < key_end
                        cp16(ks + (mp * BN + r) * KS + kc, Kf, k1_base + (s0 + r) * k_stride + mp * DK + kc, valid)
                    per_row_v = DV // C.CHUNK
                    for c in range(BN * per_row_v):
                        r, vc = c // per_row_v, (c % per_row_v) * C.CHUNK
                        valid = s0 + r < key_end
                        cp16(vs + r * VS + vc, Vf, v_base + (s0 + r) * v_stride + vc, valid)

                W = [dict(o=np.zeros((MAPS, NO, 32, 4), np.float32), m=np.full((MAPS, 2, 32), NEG_INF),
                          l=np.zeros((MAPS, 2, 32), np.float32), qf=None) for _ in range(WARPS_M * WN)]

                def pair(idx):
                    assert np.all(idx % 2 == 0) and idx.min() >= 0 and idx.max() + 2 <= smem.size
                    return np.stack([smem[idx], smem[idx + 1]], -1)

                def word(idx):
                    assert idx.min() >= 0 and idx.max() < smem.size
                    return smem[idx]

                def q_fragment(wm, mp, kk):
                    return ptx.ldmatrix_x4(smem, (mp * BM + wm * 16 + (lane & 7) + (matrix & 1) * 8) * QS + kk * 16
                                           + (matrix >> 1) * 8)

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
                        if stats is not None:
                            stats['rescales'] = stats.get('rescales', 0) + 1
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

                # Prologue: stages − 1 tiles; the loop then prefetches tile j + stages − 1.
                if tiles > 0:
                    load_tile(0, 0)
                for s_ in range(1, stages - 1):
                    if s_ < tiles:
                        load_tile(s_, s_)
                for j in range(tiles):
                    # barrier: tile j is in
                    if C.Q_IN_REGISTERS and j == 0:
                        for warp in range(WARPS_M * WN):
                            wm = warp % WARPS_M
                            W[warp]['qf'] = [[q_fragment(wm, mp, kk) for kk in range(QK)] for mp in range(MAPS)]
                    nxt = j + stages - 1
                    if nxt < tiles:
                        target = (j % stages) if mutation == 'stage-reuse' and stages == 3 else nxt % stages
                        load_tile(nxt, target)
                    ks = q_elements + (j % stages) * stage_elements
                    vs = ks + key_maps * BN * KS
                    for warp in range(WARPS_M * WN):
                        wm, wn = warp % WARPS_M, warp // WARPS_M
                        if not q0 + wm * 16 < p.tokens:
                            continue
                        st = W[warp]
                        row0 = wm * 16 + g
                        position0 = p.key_offset + q0 + row0
                        column0 = wn * DVW
                        for step in range(BN // BNC):
                            s0 = (tile_begin + j) * BN + step * BNC
                            sk = step * BNC
                            mask = s0 + BNC > p.key_length or (p.causal and s0 + BNC - 1 > p.key_offset + q0 + wm * 16)
                            s = np.zeros((MAPS, NT, 32, 4), np.float32)
                            for mp in range(MAPS):
                                kmap = ks + (0 if shared_keys else mp) * BN * KS
                                for kk in range(QK):
                                    if half:
                                        a = st['qf'][mp][kk] if C.Q_IN_REGISTERS else q_fragment(wm, mp, kk)
                                        for nt in range(0, NT, 2):
                                            mhi, mlo = matrix >> 1, matrix & 1
                                            if mutation == 'k-ldmatrix-order':
                                                mhi, mlo = mlo, mhi
                                            kb = ptx.ldmatrix_x4(smem, kmap + (sk + nt * 8 + (lane & 7) + mhi * 8) * KS
                                                                 + kk * 16 + mlo * 8)
                                            s[mp, nt] = ptx.mma_m16n8k16(s[mp, nt], a, kb[:, 0:2])
                                            s[mp, nt + 1] = ptx.mma_m16n8k16(s[mp, nt + 1], a, kb[:, 2:4])
                                    else:
                                        for hf in range(2):
                                            k0 = kk * 16 + hf * 8
                                            qrow = (mp * BM + row0) * QS + k0 + t4
                                            a = ptx.split_tf32(np.stack([word(qrow), word(qrow + 8 * QS),
                                                                         word(qrow + 4), word(qrow + 8 * QS + 4)], 1))
                                            for nt in range(NT):
                                                krow = kmap + (sk + nt * 8 + g) * KS + k0 + t4
                                                b_ = ptx.split_tf32(np.stack([word(krow), word(krow + 4)], 1))
                                                s[mp, nt] = ptx.mma_3xtf32(s[mp, nt], a, b_)
                            for mp in range(MAPS):
                                for nt in range(NT):
                                    for e in range(4):
                                        x = s[mp, nt][:, e] * scale_log2
                                        if mask:
                                            key = s0 + nt * 8 + 2 * t4 + (e & 1)
                                            position = position0 + (e >> 1) * 8
                                            kill = (key >= p.key_length) | ((key > position) if p.causal else False)
                                            x = np.where(kill, NEG_INF, x)
                                        s[mp, nt][:, e] = x
                            for mp in range(MAPS):
                                softmax_tile(s[mp], st['m'][mp], st['l'][mp], st['o'][mp])
                            if stats is not None:
                                stats['pmax'] = max(stats.get('pmax', 0), float(np.nanmax(s)))
                            if half:
                                for kk in range(BNC // 16):
                                    pa = []
                                    for mp in range(MAPS):
                                        x = s[mp]
                                        pa.append(np.stack([
                                            np.stack([rnd(x[2 * kk][:, 0]), rnd(x[2 * kk][:, 1])], -1),
                                            np.stack([rnd(x[2 * kk][:, 2]), rnd(x[2 * kk][:, 3])], -1),
                                            np.stack([rnd(x[2 * kk + 1][:, 0]), rnd(x[2 * kk + 1][:, 1])], -1),
                                            np.stack([rnd(x[2 * kk + 1][:, 2]), rnd(x[2 * kk + 1][:, 3])], -1)], 1))
                                    v_row = vs + (sk + kk * 16 + (lane & 7) + (matrix & 1) * 8) * VS + column0 \
                                        + (matrix >> 1) * 8
                                    for npp in range(DVW // 16):
                                        vb = ptx.ldmatrix_x4_trans(smem, v_row + npp * 16)
                                        for mp in range(MAPS):
                                            o = st['o'][mp]
                                            o[2 * npp] = ptx.mma_m16n8k16(o[2 * npp], pa[mp], vb[:, 0:2])
                                            o[2 * npp + 1] = ptx.mma_m16n8k16(o[2 * npp + 1], pa[mp], vb[:, 2:4])
                            else:
                                for nt in range(NT):
                                    pa = [ptx.split_tf32(np.stack([s[mp, nt][:, 0], s[mp, nt][:, 2], s[mp, nt][:, 1],
                                                                   s[mp, nt][:, 3]], 1)) for mp in range(MAPS)]
                                    first = (sk + nt * 8 + (t4 if mutation == 'tf32-v-rows' else 2 * t4))
                                    second = VS * (4 if mutation == 'tf32-v-rows' else 1)
                                    v_row = vs + first * VS + column0 + g
                                    for no in range(NO):
                                        b_ = ptx.split_tf32(np.stack([word(v_row + no * 8),
                                                                      word(v_row + second + no * 8)], 1))
                                        for mp in range(MAPS):
                                            st['o'][mp][no] = ptx.mma_3xtf32(st['o'][mp][no], pa[mp], b_)

                # Epilogue.
                for warp in range(WARPS_M * WN):
                    st = W[warp]
                    for mp in range(MAPS):
                        for r in range(2):
                            st['l'][mp][r] = st['l'][mp][r] + ptx.shfl_xor(st['l'][mp][r], 1)
                            st['l'][mp][r] = st['l'][mp][r] + ptx.shfl_xor(st['l'][mp][r], 2)
                if splits > 1:
                    for warp in range(WARPS_M * WN):
                        wm, wn = warp % WARPS_M, warp // WARPS_M
                        st, row0, column0 = W[warp], wm * 16 + g, wn * DVW
                        factor = np.float32(1) if mutation == 'split-base2' else LN2
                        for r in range(2):
                            t = q0 + row0 + 8 * r
                            for L in range(32):
                                if t[L] >= p.tokens:
                                    continue
                                row = (b * p.tokens + t[L]) * p.heads + h
                                base = (row * splits + split) * pf

                                def put(i, value):
                                    assert 0 <= i < ws.size
                                    ws[i] = value
                                    ws_writes[i] += 1
                                if wn == 0 and t4[L] == 0:
                                    put(base, factor * st['m'][0][r][L])
                                    put(base + 1, st['l'][0][r][L])
                                    put(base + 2, factor * st['m'][MAPS - 1][r][L] if MAPS == 2 else NEG_INF)
                                    put(base + 3, st['l'][MAPS - 1][r][L] if MAPS == 2 else 0)
                                for mp in range(MAPS):
                                    for no in range(NO):
                                        c = column0 + no * 8 + 2 * t4[L]
                                        put(base + 4 + mp * DV + c, st['o'][mp][no][L, 2 * r])
                                        put(base + 4 + mp * DV + c + 1, st['o'][mp][no][L, 2 * r + 1])
                    continue

                squares = {}
                for warp in range(WARPS_M * WN):
                    wm, wn = warp % WARPS_M, warp // WARPS_M
                    st, row0, column0 = W[warp], wm * 16 + g, wn * DVW
                    o, m, l = st['o'], st['m'], st['l']
                    sq = np.zeros((2, 32), np.float32)
                    for r in range(2):
                        t = q0 + row0 + 8 * r
                        valid = t < p.tokens
                        rows = (b * p.tokens + t) * p.heads + h
                        with np.errstate(divide='ignore', invalid='ignore'):
                            inverse1 = np.float32(1) / l[0][r]
                        if statistics is not None:
                            for L in range(32):
                                if not valid[L] or wn != 0 or t4[L] != 0:
                                    continue
                                for mp in range(MAPS):
                                    ln2 = 1 if statistics.get('mutation') == 'lse-base2' else 0.6931471805599453
                                    statistics['lse'][rows[L] * MAPS + mp] = np.float32(ln2) * (
                                        m[mp][r][L] + np.log2(l[mp][r][L]))
                                    statistics['lse_writes'][rows[L] * MAPS + mp] += 1
                        if MAPS == 2:
                            with np.errstate(divide='ignore', invalid='ignore'):
                                inverse2 = np.float32(1) / l[1][r]
                            if statistics is not None and 'maps' in statistics:
                                for L in range(32):
                                    if not valid[L]:
                                        continue
                                    for no in range(NO):
                                        c = column0 + no * 8 + 2 * t4[L]
                                        for e in range(2):
                                            i1 = rows[L] * 2 * DV + c + e
                                            statistics['maps'][i1] = o[0][no][L, 2 * r + e] * inverse1[L]
                                            statistics['maps'][i1 + DV] = o[1][no][L, 2 * r + e] * inverse2[L]
                                            statistics['maps_writes'][i1] += 1
                                            statistics['maps_writes'][i1 + DV] += 1
                            lam = np.zeros(32, np.float32)
                            for L in range(32):
                                if valid[L]:
                                    li = rows[L] if p.lambda_per_token else h
                                    assert 0 <= li < lamf.size
                                    lam[L] = lamf[li]
                            with np.errstate(invalid='ignore'):
                                weight2 = lam * inverse2
                            for no in range(NO):
                                for e in range(2):
                                    with np.errstate(invalid='ignore', over='ignore'):  # rows past T: never stored
                                        d = o[0][no][:, 2 * r + e] * inverse1 - o[1][no][:, 2 * r + e] * weight2
                                    o[0][no][:, 2 * r + e] = d
                                    sq[r] += d * d
                            sq[r] = sq[r] + ptx.shfl_xor(sq[r], 1)
                            sq[r] = sq[r] + ptx.shfl_xor(sq[r], 2)
                        else:
                            for no in range(NO):
                                o[0][no][:, 2 * r] *= inverse1
                                o[0][no][:, 2 * r + 1] *= inverse1
                    squares[warp] = sq
                # Norm: with warps along dv, the sums of squares cross warps through shared memory.
                gains = {}
                for warp in range(WARPS_M * WN):
                    wm, wn = warp % WARPS_M, warp // WARPS_M
                    row0 = wm * 16 + g
                    if MAPS == 2 and p.norm and WN > 1:
                        for L in range(32):
                            if t4[L] == 0:
                                norm_sums[wn * BM + row0[L]] = squares[warp][0][L]
                                norm_sums[wn * BM + row0[L] + 8] = squares[warp][1][L]
                for warp in range(WARPS_M * WN):
                    wm, wn = warp % WARPS_M, warp // WARPS_M
                    row0 = wm * 16 + g
                    sq = squares[warp].copy()
                    if MAPS == 2 and p.norm and WN > 1 and mutation != 'norm-cross-warp':
                        for r in range(2):
                            sq[r] = np.zeros(32, np.float32)
                            for w_ in range(WN):
                                sq[r] = sq[r] + norm_sums[w_ * BM + row0 + 8 * r]
                    gain = np.ones((2, 32), np.float32)
                    if MAPS == 2 and p.norm:
                        with np.errstate(invalid='ignore', divide='ignore'):
                            gain = np.float32(p.output_scale) / np.sqrt(sq / np.float32(DV) + np.float32(p.eps))
                    gains[warp] = gain
                for warp in range(WARPS_M * WN):
                    wm, wn = warp % WARPS_M, warp // WARPS_M
                    st, row0, column0 = W[warp], wm * 16 + g, wn * DVW
                    for r in range(2):
                        t = q0 + row0 + 8 * r
                        for L in range(32):
                            if t[L] >= p.tokens:
                                continue
                            y = ((b * p.tokens + t[L]) * p.heads + h) * DV
                            for no in range(NO):
                                c = column0 + no * 8 + 2 * t4[L]
                                y0 = st['o'][0][no][L, 2 * r] * gains[warp][r][L]
                                y1 = st['o'][0][no][L, 2 * r + 1] * gains[warp][r][L]
                                if MAPS == 2 and p.norm and wf is not None:
                                    y0 *= wf[c]
                                    y1 *= wf[c + 1]
                                assert y + c + 1 < out.size
                                out[y + c] = rnd(y0)
                                out[y + c + 1] = rnd(y1)
                                writes[y + c] += 1
                                writes[y + c + 1] += 1
    return out, writes, ws, ws_writes
