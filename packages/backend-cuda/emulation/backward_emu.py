"""Emulation of attention_backward.cu, block by block, with the kernels' own index math: the rows kernel, the
key-major dK/dV kernel, the query-major dQ kernel and the column sums of reduce.cuh (a per-head dλ, the norm
weight). Per block, the strided loops `for (e = threadIdx.x; e < n; e += blockDim.x)` run as one vectorised step
over every e (each element has one owner thread, so the order of owners does not matter).

What it checks besides the values: shared memory and the workspace start as NaN, so a read of an element that was
never written (a layout overlap, a missing load, a wrong offset) poisons the outputs; every global read is
bounds-checked; every output element must be written exactly once, every workspace element at most once.

`mutation` names a deliberate bug (see MUTATIONS) for the negative controls: each must make the comparison with
the float64 reference fail on at least one shape.
"""
import numpy as np

THREADS = 256
ROW_THREADS = 128
SHARED_BUDGET = 96 * 1024

MUTATIONS = {
    'gqa-group': "dQ kernel: kv group h % Hkv instead of h·Hkv/H (wrong GQA group)",
    'gqa-heads': "dK/dV kernel: only the group's first head is summed",
    'causal-diagonal': "tile mask: key s visible only when s < keyOffset + t (diagonal dropped)",
    'causal-begin': "dK/dV kernel: queries start one tile late (t_begin + tile)",
    'key-tail': "dK/dV grid: ⌊S/tile⌋ blocks (the last partial key tile is dropped)",
    'map2-sign': "map 2 sees +λ·dU instead of −λ·dU",
    'shared-keys': "shared keys (V2): dK written after each map (map 1 overwritten by map 2)",
    'norm-mean': "rows kernel: mean(g ⊙ n) without the output scale",
    'lambda-sum': "per-head dλ: the last chunk of rows is not summed",
}


class Layout:
    """layout() of attention_backward.cu, in floats."""

    def __init__(self, tile, dk, dv):
        self.q_stride = self.k_stride = dk + 1
        self.u_stride = self.v_stride = dv + 1
        o = 0
        self.q, o = o, o + tile * self.q_stride
        self.k, o = o, o + tile * self.k_stride
        self.u, o = o, o + tile * self.u_stride
        self.v, o = o, o + tile * self.v_stride
        self.p, o = o, o + tile * tile
        self.ds, o = o, o + tile * tile
        self.lse, o = o, o + tile
        self.delta, o = o, o + tile
        self.acc_k, o = o, o + tile * dk
        self.acc_v, o = o, o + tile * dv
        self.total = o


def backward_tile(dk, dv):
    for tile in (32, 16, 8, 4):
        if Layout(tile, dk, dv).total * 4 <= SHARED_BUDGET:
            return tile
    return 0


class Memory:
    """A flat float32 device buffer that starts as NaN and counts writes per element."""

    def __init__(self, n, rnd=None):
        self.data = np.full(n, np.nan, np.float32)
        self.writes = np.zeros(n, np.int64)
        self.rnd = rnd or (lambda x: np.asarray(x, np.float32))

    def load(self, index):
        index = np.asarray(index)
        assert index.size == 0 or (index.min() >= 0 and index.max() < self.data.size), 'out-of-bounds read'
        return self.data[index]

    def store(self, index, values):
        index = np.asarray(index)
        assert index.size == 0 or (index.min() >= 0 and index.max() < self.data.size), 'out-of-bounds write'
        self.data[index] = self.rnd(np.broadcast_to(np.asarray(values, np.float32), index.shape))
        np.add.at(self.writes, index, 1)


def _input(x):
    m = Memory(np.asarray(x).size)
    m.data[:] = np.asarray(x, np.float32).reshape(-1)
    return m


def _lambda_of(p, lam, row):
    row = np.asarray(row)
    return lam.load(row if p.lambda_per_token else row % p.heads)


# ---- 1. rows ------------------------------------------------------------------------------------------------------

def rows_kernel(p, io, ws, d_u, delta, rho_out, dl_rows, mutation):
    dv = p.dv
    c = np.arange(dv)  # thread t takes c = t, t + 128, …: every c once
    for row in range(p.batch * p.tokens * p.heads):
        g_out = io['d_out'].load(row * dv + c)
        if not p.diff:
            o = io['output'].load(row * dv + c)
            ws.store(d_u + row * dv + c, g_out)
            ws.store(delta + row, np.float32((g_out * o).sum()))
            continue
        lam = _lambda_of(p, io['lam'], row)
        a = io['maps'].load(row * 2 * dv + c)
        b = io['maps'].load(row * 2 * dv + dv + c)
        weight = io['w'].load(c) if io['w'] is not None else np.ones(dv, np.float32)
        rho, mean_gn = np.float32(1), np.float32(0)
        du = g_out
        if p.norm:
            u = a - lam * b
            squares = (u * u).sum()
            projection = (g_out * weight * u).sum()
            rho = np.float32(1) / np.sqrt(squares / np.float32(dv) + np.float32(p.eps))
            scale = np.float32(1) if mutation == 'norm-mean' else np.float32(p.output_scale)
            mean_gn = scale * projection * rho / np.float32(dv)
            du = (g_out * weight * np.float32(p.output_scale) - (a - lam * b) * rho * mean_gn) * rho
        ws.store(d_u + row * dv + c, du)
        d1 = (du * a).sum()
        dl = -(du * b).sum()
        ws.store(delta + row * 2, d1)
        ws.store(delta + row * 2 + 1, lam * dl)
        if p.lambda_per_token:
            io['d_lambda'].store(row, dl)
        else:
            ws.store(dl_rows + row, dl)
        if rho_out is not None:
            ws.store(rho_out + row, rho)


# ---- the tile both kernels share ----------------------------------------------------------------------------------

def score_tile(p, l, smem, tile, t0, s0, mutation):
    pair = np.arange(tile * tile)
    ti, si = pair // tile, pair % tile
    t, s = t0 + ti, s0 + si
    if p.causal:
        seen = (s < p.key_offset + t) if mutation == 'causal-diagonal' else (s <= p.key_offset + t)
    else:
        seen = np.ones_like(t, bool)
    visible = (t < p.tokens) & (s < p.key_length) & seen
    j, c = np.arange(p.dk), np.arange(p.dv)
    q = smem[l.q + ti[:, None] * l.q_stride + j[None, :]]
    k = smem[l.k + si[:, None] * l.k_stride + j[None, :]]
    u = smem[l.u + ti[:, None] * l.u_stride + c[None, :]]
    v = smem[l.v + si[:, None] * l.v_stride + c[None, :]]
    with np.errstate(over='ignore', invalid='ignore'):
        dot = (q * k).sum(1, dtype=np.float32)
        prob = np.exp(np.float32(p.scale) * dot - smem[l.lse + ti]).astype(np.float32)
        dp = (u * v).sum(1, dtype=np.float32)
        ds = prob * (dp - smem[l.delta + ti])
    # Only visible pairs are computed; the others are stored as 0 without reading the tiles.
    smem[l.p + pair] = np.where(visible, prob, 0)
    smem[l.ds + pair] = np.where(visible, ds, 0)


def load_queries(p, io, ws, d_u, delta, l, smem, tile, b, h, m, t0, mutation):
    maps = p.maps
    q_heads = 2 * p.heads if p.diff else p.heads
    q_head = 2 * h + m if p.diff else h
    e = np.arange(tile * p.dk)
    ti, j = e // p.dk, e % p.dk
    t = t0 + ti
    ok = t < p.tokens
    x = np.zeros(e.size, np.float32)
    x[ok] = io['q'].load(((b * p.tokens + t[ok]) * q_heads + q_head) * p.dk + j[ok])
    smem[l.q + ti * l.q_stride + j] = x
    e = np.arange(tile * p.dv)
    ti, c = e // p.dv, e % p.dv
    t = t0 + ti
    ok = t < p.tokens
    x = np.zeros(e.size, np.float32)
    row = (b * p.tokens + t[ok]) * p.heads + h
    x[ok] = ws.load(d_u + row * p.dv + c[ok])
    if m == 1:
        sign = 1 if mutation == 'map2-sign' else -1
        x[ok] *= sign * _lambda_of(p, io['lam'], row)
    smem[l.u + ti * l.u_stride + c] = x
    ti = np.arange(tile)
    t = t0 + ti
    ok = t < p.tokens
    row = (b * p.tokens + t[ok]) * p.heads + h
    lse = np.zeros(tile, np.float32)
    dlt = np.zeros(tile, np.float32)
    lse[ok] = io['lse'].load(row * maps + m)
    dlt[ok] = ws.load(delta + row * maps + m)
    smem[l.lse + ti] = lse
    smem[l.delta + ti] = dlt


def load_keys(p, io, l, smem, tile, b, key_head, g, s0, with_values):
    e = np.arange(tile * p.dk)
    si, j = e // p.dk, e % p.dk
    s = s0 + si
    ok = s < p.key_length
    x = np.zeros(e.size, np.float32)
    x[ok] = io['k'].load(((b * p.keys + s[ok]) * p.key_heads + key_head) * p.dk + j[ok])
    smem[l.k + si * l.k_stride + j] = x
    if not with_values:
        return
    e = np.arange(tile * p.dv)
    si, c = e // p.dv, e % p.dv
    s = s0 + si
    ok = s < p.key_length
    x = np.zeros(e.size, np.float32)
    x[ok] = io['v'].load(((b * p.keys + s[ok]) * p.kv_heads + g) * p.dv + c[ok])
    smem[l.v + si * l.v_stride + c] = x


# ---- 2. dK and dV --------------------------------------------------------------------------------------------------

def dkdv_kernel(p, io, ws, d_u, delta, tile, mutation):
    l = Layout(tile, p.dk, p.dv)
    maps = p.maps
    shared_keys = (not p.diff) or p.key_heads == p.kv_heads
    group_heads = p.heads // p.kv_heads
    blocks = p.keys // tile if mutation == 'key-tail' else (p.keys + tile - 1) // tile
    for b in range(p.batch):
        for g in range(p.kv_heads):
            for bx in range(blocks):
                smem = np.full(l.total, np.nan, np.float32)
                s0 = bx * tile
                t_begin = max(0, s0 - p.key_offset) if p.causal else 0
                if mutation == 'causal-begin' and p.causal:
                    t_begin += tile
                t_end = p.tokens if s0 < p.key_length else 0
                load_keys(p, io, l, smem, tile, b, 2 * g if (p.diff and not shared_keys) else g, g, s0, True)
                smem[l.acc_v + np.arange(tile * p.dv)] = 0
                for m in range(maps):
                    key_head = 2 * g + m if (p.diff and not shared_keys) else g
                    if m > 0 and not shared_keys:
                        load_keys(p, io, l, smem, tile, b, key_head, g, s0, False)
                    if m == 0 or not shared_keys:
                        smem[l.acc_k + np.arange(tile * p.dk)] = 0
                    last_head = g * group_heads + 1 if mutation == 'gqa-heads' else (g + 1) * group_heads
                    for h in range(g * group_heads, last_head):
                        for t0 in range(t_begin, t_end, tile):
                            load_queries(p, io, ws, d_u, delta, l, smem, tile, b, h, m, t0, mutation)
                            score_tile(p, l, smem, tile, t0, s0, mutation)
                            ti = np.arange(tile)[:, None]
                            e = np.arange(tile * p.dv)
                            si, c = e // p.dv, e % p.dv
                            smem[l.acc_v + e] += (smem[l.p + ti * tile + si[None, :]] *
                                                  smem[l.u + ti * l.u_stride + c[None, :]]).sum(0, dtype=np.float32)
                            e = np.arange(tile * p.dk)
                            si, j = e // p.dk, e % p.dk
                            smem[l.acc_k + e] += (smem[l.ds + ti * tile + si[None, :]] *
                                                  smem[l.q + ti * l.q_stride + j[None, :]]).sum(0, dtype=np.float32)
                    if not shared_keys or m == maps - 1 or mutation == 'shared-keys':
                        e = np.arange(tile * p.dk)
                        si, j = e // p.dk, e % p.dk
                        s = s0 + si
                        ok = s < p.keys
                        index = ((b * p.keys + s[ok]) * p.key_heads + key_head) * p.dk + j[ok]
                        if mutation == 'shared-keys' and shared_keys and m < maps - 1:
                            io['dk'].data[index] = io['dk'].rnd(np.float32(p.scale) * smem[l.acc_k + e[ok]])
                            smem[l.acc_k + e] = 0
                        else:
                            io['dk'].store(index, np.float32(p.scale) * smem[l.acc_k + e[ok]])
                e = np.arange(tile * p.dv)
                si, c = e // p.dv, e % p.dv
                s = s0 + si
                ok = s < p.keys
                io['dv'].store(((b * p.keys + s[ok]) * p.kv_heads + g) * p.dv + c[ok], smem[l.acc_v + e[ok]])


# ---- 3. dQ ---------------------------------------------------------------------------------------------------------

def dq_kernel(p, io, ws, d_u, delta, tile, mutation):
    l = Layout(tile, p.dk, p.dv)
    maps = p.maps
    shared_keys = (not p.diff) or p.key_heads == p.kv_heads
    q_heads = 2 * p.heads if p.diff else p.heads
    for b in range(p.batch):
        for h in range(p.heads):
            g = h % p.kv_heads if mutation == 'gqa-group' else h * p.kv_heads // p.heads
            for bx in range((p.tokens + tile - 1) // tile):
                smem = np.full(l.total, np.nan, np.float32)
                t0 = bx * tile
                key_end = min(p.key_length, p.key_offset + min(t0 + tile, p.tokens)) if p.causal else p.key_length
                for m in range(maps):
                    key_head = 2 * g + m if (p.diff and not shared_keys) else g
                    load_queries(p, io, ws, d_u, delta, l, smem, tile, b, h, m, t0, mutation)
                    e = np.arange(tile * p.dk)
                    smem[l.acc_k + e] = 0
                    for s0 in range(0, key_end, tile):
                        load_keys(p, io, l, smem, tile, b, key_head, g, s0, True)
                        score_tile(p, l, smem, tile, t0, s0, mutation)
                        ti, j = e // p.dk, e % p.dk
                        si = np.arange(tile)[:, None]
                        smem[l.acc_k + e] += (smem[l.ds + ti[None, :] * tile + si] *
                                              smem[l.k + si * l.k_stride + j[None, :]]).sum(0, dtype=np.float32)
                    q_head = 2 * h + m if p.diff else h
                    ti, j = e // p.dk, e % p.dk
                    t = t0 + ti
                    ok = t < p.tokens
                    io['dq'].store(((b * p.tokens + t[ok]) * q_heads + q_head) * p.dk + j[ok],
                                   np.float32(p.scale) * smem[l.acc_k + e[ok]])


# ---- 4. column sums (reduce.cuh) ------------------------------------------------------------------------------------

def column_chunk_rows(rows):
    return max(64, (rows + 2047) // 2048)


def column_sums(term, rows, columns, factor, out, mutation=None):
    chunk = column_chunk_rows(rows)
    chunks = (rows + chunk - 1) // chunk
    partials = Memory(chunks * columns)
    c = np.arange(columns)
    for k in range(chunks):
        total = np.zeros(columns, np.float32)
        for r in range(k * chunk, min(rows, (k + 1) * chunk)):
            total += term(r, c)
        partials.store(k * columns + c, total)
    used = chunks - 1 if (mutation == 'lambda-sum' and chunks > 1) else chunks
    total = np.zeros(columns, np.float32)
    for k in range(used):
        total += partials.load(k * columns + c)
    out.store(c, np.float32(factor) * total)


# ---- the launcher ---------------------------------------------------------------------------------------------------

def attention_backward(p, q, k, v, lse, d_out, rnd, output=None, maps=None, lam=None, w=None, lam_rnd=None,
                       mutation=None):
    """Runs the four steps as launch_backward does. Inputs are float32 arrays holding stored values; rnd rounds
    to the storage dtype (lam_rnd: λ's and the norm weight's dtype). Returns the outputs (Memory) and the
    workspace, for the write-count checks."""
    tile = backward_tile(p.dk, p.dv)
    assert tile > 0
    io = {'q': _input(q), 'k': _input(k), 'v': _input(v), 'lse': _input(lse), 'd_out': _input(d_out),
          'output': _input(output) if output is not None else None,
          'maps': _input(maps) if maps is not None else None,
          'lam': _input(lam) if lam is not None else None,
          'w': _input(w) if w is not None else None,
          'dq': Memory(np.asarray(q).size, rnd), 'dk': Memory(np.asarray(k).size, rnd),
          'dv': Memory(np.asarray(v).size, rnd)}
    rows = p.batch * p.tokens * p.heads
    maps_count = p.maps
    want_rho = p.diff and p.norm and w is not None
    per_head_lambda = p.diff and not p.lambda_per_token
    if p.diff:
        io['d_lambda'] = Memory(np.asarray(lam).size, lam_rnd)
    io['d_w'] = Memory(p.dv, lam_rnd) if want_rho else None
    ws = Memory(rows * (p.dv + maps_count + want_rho + per_head_lambda))
    d_u = 0
    delta = d_u + rows * p.dv
    rho = delta + rows * maps_count if want_rho else None
    dl_rows = delta + rows * maps_count + (rows if want_rho else 0) if per_head_lambda else None
    rows_kernel(p, io, ws, d_u, delta, rho, dl_rows, mutation)
    if p.keys > 0:
        dkdv_kernel(p, io, ws, d_u, delta, tile, mutation)
    if p.tokens > 0:
        dq_kernel(p, io, ws, d_u, delta, tile, mutation)
    if per_head_lambda:
        column_sums(lambda bt, h: ws.load(dl_rows + bt * p.heads + h), p.batch * p.tokens, p.heads, 1,
                    io['d_lambda'], mutation)
    if want_rho:
        def term(row, c):
            a = io['maps'].load(row * 2 * p.dv + c)
            u = a - _lambda_of(p, io['lam'], row) * io['maps'].load(row * 2 * p.dv + p.dv + c)
            return io['d_out'].load(row * p.dv + c) * u * ws.load(rho + row)
        column_sums(term, rows, p.dv, p.output_scale, io['d_w'])
    return io, ws, tile
