"""float64 reference of both attention kernels of the contract with full T×S matrices: the forward, its
statistics (each map's log-sum-exp, each map's own output) and the gradients of every input, written from the
definitions and checked against central finite differences of the forward by check_by_finite_differences().

Shapes: q [B, T, 2H, dk] (diff) or [B, T, H, dk]; k [B, S, KH, dk] with KH = 2·Hkv (per-map keys), Hkv (shared
keys, or standard attention); v [B, S, Hkv, dv]; lam [H] or [B, T, H]; w [dv] or None.
"""
import numpy as np


class Shape:
    """The attention parameters the kernels and the reference share (names as in AttentionParams)."""

    def __init__(self, **kw):
        self.__dict__.update(kw)

    @property
    def maps(self):
        return 2 if self.diff else 1

    @property
    def shared_keys(self):
        return (not self.diff) or self.key_heads == self.kv_heads

    def group(self, h):
        return h * self.kv_heads // self.heads

    def q_head(self, h, m):
        return 2 * h + m if self.diff else h

    def key_head(self, g, m):
        return g if self.shared_keys else 2 * g + m

    def visible(self):
        """[T, S] boolean: which keys each query sees."""
        t = np.arange(self.tokens)[:, None]
        s = np.arange(self.keys)[None, :]
        ok = s < self.key_length
        if self.causal:
            ok = ok & (s <= self.key_offset + t)
        return ok


def _lambda(p, lam, b, h):
    """λ of every query of head h in batch entry b: [T, 1]."""
    return (lam[b, :, h] if p.lambda_per_token else np.full(p.tokens, lam[h]))[:, None]


def _maps(p, q, k, v, b, h):
    """Per map of head h: (P [T, S], own output P·v [T, dv], log-sum-exp [T])."""
    ok = p.visible()
    g = p.group(h)
    out = []
    for m in range(p.maps):
        s = p.scale * q[b, :, p.q_head(h, m)] @ k[b, :, p.key_head(g, m)].T
        s = np.where(ok, s, -np.inf)
        top = s.max(1, keepdims=True)
        lse = top[:, 0] + np.log(np.exp(s - top).sum(1))
        prob = np.exp(s - lse[:, None])
        out.append((prob, prob @ v[b, :, g], lse))
    return out


def forward(p, q, k, v, lam=None, w=None):
    """Output [B, T, H, dv], log-sum-exp [B, T, H, maps], map outputs [B, T, H, 2, dv] (diff) or None."""
    q, k, v = (np.asarray(x, np.float64) for x in (q, k, v))
    out = np.zeros((p.batch, p.tokens, p.heads, p.dv))
    lse = np.zeros((p.batch, p.tokens, p.heads, p.maps))
    maps = np.zeros((p.batch, p.tokens, p.heads, 2, p.dv)) if p.diff else None
    for b in range(p.batch):
        for h in range(p.heads):
            per_map = _maps(p, q, k, v, b, h)
            for m, (_, o, l) in enumerate(per_map):
                lse[b, :, h, m] = l
                if p.diff:
                    maps[b, :, h, m] = o
            if not p.diff:
                out[b, :, h] = per_map[0][1]
                continue
            u = per_map[0][1] - _lambda(p, lam, b, h) * per_map[1][1]
            if p.norm:
                u = u / np.sqrt((u * u).mean(1, keepdims=True) + p.eps) * p.output_scale
                if w is not None:
                    u = u * w[None, :]
            out[b, :, h] = u
    return out, lse, maps


def backward(p, q, k, v, d_out, lam=None, w=None):
    """dq, dk, dv like q, k, v; dλ like lam and dw like w (diff), from the definitions:
    P = softmax(S), dV = Pᵀ·dO, dP = dO·Vᵀ, dS = P ⊙ (dP − rowsum(P ⊙ dP)), dQ = s·dS·K, dK = s·dSᵀ·Q per map;
    differential attention: u = A − λB, y = u·ρ·w·c (ρ = (mean u² + eps)^−½), dA = du, dB = −λ·du, dλ = −du·B."""
    q, k, v, d_out = (np.asarray(x, np.float64) for x in (q, k, v, d_out))
    dq, dk, dv = np.zeros_like(q), np.zeros_like(k), np.zeros_like(v)
    d_lam = np.zeros_like(lam, dtype=np.float64) if p.diff else None
    dw = np.zeros(p.dv) if (p.diff and p.norm and w is not None) else None
    for b in range(p.batch):
        for h in range(p.heads):
            g = p.group(h)
            per_map = _maps(p, q, k, v, b, h)
            dy = d_out[b, :, h]
            if p.diff:
                lam_t = _lambda(p, lam, b, h)
                a, bm = per_map[0][1], per_map[1][1]
                u = a - lam_t * bm
                du = dy
                if p.norm:
                    rho = 1 / np.sqrt((u * u).mean(1, keepdims=True) + p.eps)
                    wc = (w if w is not None else np.ones(p.dv))[None, :] * p.output_scale
                    proj = (dy * wc * u).sum(1, keepdims=True)
                    du = rho * wc * dy - rho ** 3 / p.dv * u * proj
                    if dw is not None:
                        dw += (dy * u * rho * p.output_scale).sum(0)
                dl = -(du * bm).sum(1)
                if p.lambda_per_token:
                    d_lam[b, :, h] += dl
                else:
                    d_lam[h] += dl.sum()
                grads = [du, -lam_t * du]
            else:
                grads = [dy]
            for m, (prob, _, _) in enumerate(per_map):
                do = grads[m]
                qh, kh = p.q_head(h, m), p.key_head(g, m)
                dv[b, :, g] += prob.T @ do
                dp = do @ v[b, :, g].T
                ds = prob * (dp - (prob * dp).sum(1, keepdims=True))
                dq[b, :, qh] += p.scale * ds @ k[b, :, kh]
                dk[b, :, kh] += p.scale * ds.T @ q[b, :, qh]
    return dq, dk, dv, d_lam, dw


def check_by_finite_differences(p, q, k, v, lam=None, w=None, seed=0, probes=6, h=1e-6):
    """Largest relative difference between backward() and central differences of L = Σ forward ⊙ R, over a few
    random coordinates of every input."""
    rng = np.random.default_rng(seed)
    r = rng.standard_normal((p.batch, p.tokens, p.heads, p.dv))
    q, k, v = (np.array(x, np.float64) for x in (q, k, v))
    lam = None if lam is None else np.array(lam, np.float64)
    w = None if w is None else np.array(w, np.float64)
    inputs = {'q': q, 'k': k, 'v': v}
    if p.diff:
        inputs['lam'] = lam
        if p.norm and w is not None:
            inputs['w'] = w
    grads = dict(zip(('q', 'k', 'v', 'lam', 'w'), backward(p, q, k, v, r, lam, w)))

    def loss():
        return (forward(p, inputs['q'], inputs['k'], inputs['v'], inputs.get('lam'), inputs.get('w'))[0] * r).sum()

    worst = 0.0
    for name, x in inputs.items():
        flat = x.reshape(-1)
        for i in rng.choice(flat.size, min(probes, flat.size), replace=False):
            keep = flat[i]
            flat[i] = keep + h
            up = loss()
            flat[i] = keep - h
            down = loss()
            flat[i] = keep
            numeric = (up - down) / (2 * h)
            analytic = grads[name].reshape(-1)[i]
            worst = max(worst, abs(numeric - analytic) / max(1e-3, abs(numeric)))
    return worst
