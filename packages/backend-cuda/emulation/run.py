"""Runs the emulation of the CUDA training attention kernels and prints one line per check:

  reference      the float64 reference backward against central finite differences of its forward
  forward        diffAttention/attention: the kernel attention_plan picks for the case's device (the flash kernel
                 with 2 or 3 stages, its keys split or not; or the rows kernel) against float64, each output
                 element written once
  statistics     diffAttention/attentionWithStatistics: that kernel's log-sum-exp and (diff) each map's output
  backward       attention_backward.cu from those statistics: dq, dk, dv, dλ, dNormWeight against float64
  embedding      embeddingBackward's bitonic sort and gather (embedding_emu): float64 sums, position order
  matmul         the m ≤ 4 GEMV path of matmul.cu (matmul_emu): its k splits, both layouts of a and b, 16-byte and
                 scalar loads, against float64
  negative       each deliberate bug of backward_emu.MUTATIONS (and of the statistics and the sort) must be caught

Usage: python3 run.py [--json FILE] [--only SUBSTRING]. Exit code 0 when every check passes and every negative
control is caught, 1 otherwise. Needs NumPy only; takes about a minute.
"""
import json
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import backward_emu as bw  # noqa: E402
import embedding_emu  # noqa: E402
import flash_emu as fe  # noqa: E402
import matmul_emu  # noqa: E402
import ptx  # noqa: E402
import reference as ref  # noqa: E402
import rows_emu as re_  # noqa: E402

# NMSE thresholds per storage dtype: float32 compute throughout (the flash kernel's 3xTF32 included); float16/
# bfloat16 round the inputs, the saved map outputs go through probabilities rounded for the tensor cores, and each
# gradient is rounded once.
THRESHOLDS = {'f32': 1e-9, 'f16': 1e-5, 'bf16': 1e-3}
# The forward output, as the conformance suite's rows for the two kernels (diffAttention cancels before the norm).
OUTPUT_THRESHOLDS = {('f32', True): 1e-9, ('f16', True): 1e-4, ('bf16', True): 2e-3,
                     ('f32', False): 1e-9, ('f16', False): 1e-5, ('bf16', False): 5e-4}
# Devices the plans are made for: multiprocessors and the shared memory one block may opt into.
DEVICES = {'h200': (132, 227 * 1024), 'sm86': (82, 99 * 1024), 'h200 one SM': (1, 227 * 1024)}


def case(name, dtype, diff=True, B=1, T=16, H=2, Hkv=1, shared=False, dk=16, dv=32, S=None, causal=True,
         key_offset=0, key_length=None, per_token=False, norm=True, weight=True, scale=None, seed=0, device='h200',
         simt=False):
    S = T if S is None else S
    return dict(name=name, dtype=dtype, diff=diff, B=B, T=T, H=H, Hkv=Hkv, shared=shared, dk=dk, dv=dv, S=S,
                causal=causal, key_offset=key_offset, key_length=S if key_length is None else key_length,
                per_token=per_token, norm=norm and diff, weight=weight and norm and diff, scale=scale, seed=seed,
                device=device, simt=simt)


CASES = [
    # float32 (the flash kernel as 3xTF32 where it has the widths): tails of every tile (T, S not multiples of
    # the tile), GQA 2 and 4, per-map and shared keys.
    case('v1 gqa2 H4 Hkv2 d16/32 T37 causal subln+w', 'f32', B=2, T=37, H=4, Hkv=2, dk=16, dv=32),
    case('v2 shared keys gqa4 H4 Hkv1 d32/32 T21 per-token λ', 'f32', T=21, H=4, Hkv=1, shared=True, dk=32, dv=32,
         per_token=True, norm=False),
    case('v1 non-causal T7 S45 keyLength 40 subln no weight', 'f32', T=7, S=45, key_length=40, causal=False,
         weight=False),
    case('v1 decode T3 keyOffset 30 keyLength 33 of 40 gqa2', 'f32', T=3, S=40, H=2, Hkv=1, key_offset=30,
         key_length=33),
    # dv 256: two warps along dv, the norm's sum of squares crossing them; on sm_86 it does not fit: rows kernel.
    case('v1 d128/256 T18 warps along dv subln+w', 'f32', T=18, H=1, Hkv=1, dk=128, dv=256),
    case('v1 d128/256 T18 sm86 (flash does not fit) subln+w', 'f32', T=18, H=1, Hkv=1, dk=128, dv=256,
         device='sm86'),
    # Few blocks, many keys: the keys split across blocks (flash partials or the rows kernel's) and the combine.
    case('v1 decode T1 keyOffset 699 of 720 (split keys) subln+w', 'f32', T=1, S=720, key_offset=699,
         key_length=700, H=2, Hkv=1),
    case('attention decode T2 keyOffset 650 (split keys) bf16', 'bf16', diff=False, T=2, S=700, key_offset=650,
         key_length=652, H=2, Hkv=2, dk=32, dv=32),
    case('v1 d512/1024 T6 (no flash width) no norm', 'f32', T=6, H=1, Hkv=1, dk=512, dv=1024, norm=False),
    case('attention gqa2 H4 Hkv2 d16/24 T35 causal (no flash width)', 'f32', diff=False, T=35, H=4, Hkv=2, dk=16,
         dv=24),
    case('attention non-causal T9 S70 keyLength 66 H2 d16/16', 'f32', diff=False, T=9, S=70, key_length=66, H=2,
         Hkv=2, causal=False, dk=16, dv=16),
    case('attention chunk T5 keyOffset 11 keyLength 16 of 20', 'f32', diff=False, T=5, S=20, key_offset=11,
         key_length=16, H=1, Hkv=1, dk=16, dv=16),
    # float16 / bfloat16.
    case('flash v1 d32/64 T40 gqa2 subln+w', 'f16', T=40, H=2, Hkv=1, dk=32, dv=64),
    case('flash v2 d64/64 T20 keyOffset 12 keyLength 32 of 36 per-token', 'bf16', T=20, S=36, key_offset=12,
         key_length=32, shared=True, dk=64, dv=64, per_token=True, norm=False),
    case('flash v1 d32/32 non-causal T17 S50 keyLength 45', 'bf16', T=17, S=50, key_length=45, causal=False,
         dk=32, dv=32),
    case('flash v1 d64/128 T70 gqa2 H4 Hkv2 subln+w (benchmark widths)', 'bf16', T=70, H=4, Hkv=2, dk=64, dv=128),
    case('flash v1 d64/128 T70 sm86 (2 stages) subln+w', 'f16', T=70, H=2, Hkv=1, dk=64, dv=128, device='sm86'),
    case('flash v1 d64/128 T200 three stages, no split', 'bf16', T=200, H=2, Hkv=1, dk=64, dv=128,
         device='h200 one SM'),
    case('flash v1 prefill T20 keyOffset 580 of 600 (split keys) d64/128', 'bf16', T=20, S=600, key_offset=580,
         H=2, Hkv=1, dk=64, dv=128),
    case('flash v1 d96/192 T9 warps along dv subln+w', 'bf16', T=9, H=2, Hkv=1, dk=96, dv=192),
    case('flash v2 d128/128 T19 shared keys', 'f16', T=19, H=2, Hkv=1, shared=True, dk=128, dv=128),
    case('rows v1 f16 d16/32 T9 (DIFFTX_CUDA_ATTENTION=simt)', 'f16', T=9, H=2, Hkv=2, dk=16, dv=32, simt=True),
    case('rows v1 decode T1 of 700 (simt, split keys)', 'bf16', T=1, S=700, key_offset=699, H=2, Hkv=1, dk=64,
         dv=128, simt=True),
    case('attention bf16 d32/32 T19 gqa2', 'bf16', diff=False, T=19, H=2, Hkv=1, dk=32, dv=32),
    case('attention f16 d16/16 T5 (T < 16)', 'f16', diff=False, T=5, H=2, Hkv=2, dk=16, dv=16),
    case('attention f32 d64/64 T33 sm86 (2 stages)', 'f32', diff=False, T=33, H=2, Hkv=1, dk=64, dv=64,
         device='sm86'),
    case('attention bf16 d96/96 T66 non-causal', 'bf16', diff=False, T=66, H=1, Hkv=1, dk=96, dv=96,
         causal=False),
]

# Each mutation and the shapes that can show it (by name prefix of CASES).
NEGATIVE = {
    'gqa-group': 'v1 gqa2 H4',
    'gqa-heads': 'v2 shared keys gqa4',
    'causal-diagonal': 'v1 gqa2 H4',
    'causal-begin': 'v1 gqa2 H4',
    'key-tail': 'v1 gqa2 H4',
    'map2-sign': 'v1 gqa2 H4',
    'shared-keys': 'v2 shared keys gqa4',
    'norm-mean': 'v1 gqa2 H4',
    'lambda-sum': 'v1 gqa2 H4',  # B·T = 74 rows: two chunks of the column sums
}
# A deliberate bug of the forward's statistics epilogue (flash_emu): the log-sum-exp left in base 2.
STATISTICS_NEGATIVE = {'lse-base2': 'flash v1 d32/64'}
# Deliberate bugs of the flash kernel (flash_emu.MUTATIONS) and the shapes that can show them.
FLASH_NEGATIVE = {
    'k-ldmatrix-order': 'flash v1 d32/64',
    'tf32-v-rows': 'v1 gqa2 H4',
    'stage-reuse': 'flash v1 d64/128 T200',
    'split-base2': 'flash v1 prefill T20',
    'norm-cross-warp': 'flash v1 d96/192',
}


def shape_of(c):
    key_heads = (c['Hkv'] if c['shared'] else 2 * c['Hkv']) if c['diff'] else c['Hkv']
    scale = (1 / np.sqrt(c['dk'])) if c['scale'] is None else c['scale']
    return ref.Shape(batch=c['B'], tokens=c['T'], keys=c['S'], heads=c['H'], kv_heads=c['Hkv'], key_heads=key_heads,
                     dk=c['dk'], dv=c['dv'], diff=c['diff'], causal=c['causal'], lambda_per_token=c['per_token'],
                     norm=c['norm'], key_offset=c['key_offset'], key_length=c['key_length'], scale=np.float32(scale),
                     eps=1e-5, output_scale=0.8)


def inputs(c, p):
    rng = np.random.default_rng(c['seed'])
    rnd = ptx.rounder(c['dtype'])
    q_heads = 2 * p.heads if p.diff else p.heads
    q = rnd(rng.standard_normal((p.batch, p.tokens, q_heads, p.dk)).astype(np.float32))
    k = rnd(rng.standard_normal((p.batch, p.keys, p.key_heads, p.dk)).astype(np.float32))
    v = rnd(rng.standard_normal((p.batch, p.keys, p.kv_heads, p.dv)).astype(np.float32))
    d_out = rnd(rng.standard_normal((p.batch, p.tokens, p.heads, p.dv)).astype(np.float32))
    lam = w = None
    if p.diff:
        shape = (p.batch, p.tokens, p.heads) if p.lambda_per_token else (p.heads,)
        lam = rnd((rng.random(shape) * 1.6 - 0.3).astype(np.float32))
        if c['weight']:
            w = rnd((1 + 0.3 * rng.standard_normal(p.dv)).astype(np.float32))
    return q, k, v, d_out, lam, w


def nmse(actual, expected):
    actual, expected = np.asarray(actual, np.float64).ravel(), np.asarray(expected, np.float64).ravel()
    if np.isnan(actual).any():
        return float('nan')
    energy = (expected ** 2).sum()
    return float(((actual - expected) ** 2).sum() / (energy if energy > 0 else 1))


def forward_statistics(c, p, q, k, v, lam, w, mutation=None):
    """The forward kernel attention_plan picks, emulated with its statistics:
    (output, output writes, lse, maps, kernel description, write problems)."""
    rows = p.batch * p.tokens * p.heads
    stats = {'lse': np.full(rows * p.maps, np.nan, np.float32), 'lse_writes': np.zeros(rows * p.maps, np.int64),
             'mutation': mutation}
    if p.diff:
        stats['maps'] = np.full(rows * 2 * p.dv, np.nan, np.float32)
        stats['maps_writes'] = np.zeros(rows * 2 * p.dv, np.int64)
    rnd = ptx.rounder(c['dtype'])
    sms, shared = DEVICES[c['device']]
    path, splits, stages = fe.plan(p, c['dtype'], sms, shared, force_simt=c['simt'])
    lam_flat = lam.ravel() if lam is not None else None
    if path == 'flash':
        flash_mutation = mutation if mutation in fe.MUTATIONS else None
        out, writes, ws, ws_writes = fe.flash_emu(p, q.ravel(), k.ravel(), v.ravel(), lam_flat, w, c['dtype'], stages,
                                                  splits, statistics=stats, mutation=flash_mutation)
        problems = []
        if splits > 1:
            # Every partial element written once; standard attention has no second map's outputs.
            expected = np.ones((rows * splits, 4 + 2 * p.dv), np.int32)
            if not p.diff:
                expected[:, 4 + p.dv:] = 0
            if not (ws_writes.reshape(expected.shape) == expected).all():
                problems.append(f'partials written {sorted(set(ws_writes.tolist()))} times')
            re_.combine(p, ws, splits, lam_flat, w, p.diff, rnd, out, writes, stats)
        problems += write_problems(stats)
        kernel = f'flash kernel, {stages} stages' + (f', {splits} key splits + combine' if splits > 1 else '')
    else:
        out, splits, writes = re_.rows_emu(p, q.ravel(), k.ravel(), v.ravel(), lam_flat, w, p.diff, rnd, sms=sms,
                                           statistics=stats)
        problems = write_problems(stats)
        kernel = 'rows kernel' + (f' with {splits} key splits + combine' if splits > 1 else '')
    if not (writes == 1).all():
        problems.append(f'output written {sorted(set(writes.tolist()))} times')
    return out, stats['lse'], stats.get('maps'), kernel, problems


def write_problems(stats):
    problems = []
    for key in ('lse_writes', 'maps_writes'):
        if key in stats and not (stats[key] == 1).all():
            problems.append(f'{key[:-7]} written {sorted(set(stats[key].tolist()))} times')
    return problems


def run_backward(c, p, q, k, v, d_out, lam, w, lse, maps, output, mutation=None):
    rnd = ptx.rounder(c['dtype'])
    io, ws, tile = bw.attention_backward(p, q, k, v, lse, d_out, rnd, output=output, maps=maps, lam=lam, w=w,
                                         lam_rnd=rnd, mutation=mutation)
    expected = ref.backward(p, q, k, v, d_out, lam, w)
    names = ['dq', 'dk', 'dv', 'dλ', 'dNormWeight']
    actual = [io['dq'], io['dk'], io['dv'], io.get('d_lambda'), io.get('d_w')]
    errors, problems = {}, []
    for name, got, want in zip(names, actual, expected):
        if want is None:
            continue
        errors[name] = nmse(got.data, want)
        if not (got.writes == 1).all():
            problems.append(f'{name} written {sorted(set(got.writes.tolist()))} times')
    if (ws.writes > 1).any():
        problems.append('workspace element written twice')
    return errors, problems, tile


def main():
    args = sys.argv[1:]
    only = args[args.index('--only') + 1] if '--only' in args else ''
    json_file = args[args.index('--json') + 1] if '--json' in args else None
    results = []
    began = time.time()

    def report(kind, name, ok, detail):
        results.append({'kind': kind, 'name': name, 'pass': bool(ok), 'detail': detail})
        print(f"{'pass' if ok else 'FAIL'}  {kind:10s} {name}: {detail}", flush=True)

    # The reference itself, by finite differences (float64), on one shape of each kind.
    for c in [x for x in CASES if x['name'].startswith(('v1 gqa2', 'v2 shared', 'v1 non-causal', 'attention gqa2'))]:
        if only not in c['name']:
            continue
        p = shape_of(c)
        small = dict(c, B=1, T=min(c['T'], 6), S=min(c['S'], 9), key_length=min(c['key_length'], 9),
                     key_offset=min(c['key_offset'], 3))
        ps = shape_of(small)
        q, k, v, _, lam, w = inputs(small, ps)
        worst = ref.check_by_finite_differences(ps, q, k, v, lam, w)
        # A wrong derivation is off by O(1); central differences in float64 agree to ~1e-7 here.
        report('reference', c['name'], worst < 1e-4, f'max relative difference to finite differences {worst:.1e}')

    for c in CASES:
        if only not in c['name']:
            continue
        p = shape_of(c)
        q, k, v, d_out, lam, w = inputs(c, p)
        out, lse, maps, kernel, problems = forward_statistics(c, p, q, k, v, lam, w)
        want_out, want_lse, want_maps = ref.forward(p, q, k, v, lam, w)
        error = nmse(out, want_out)
        ok = not problems and error <= OUTPUT_THRESHOLDS[(c['dtype'], p.diff)]
        detail = f'{kernel}, output NMSE {error:.1e}' + ''.join(f'; {x}' for x in problems)
        report('forward', f"{c['name']} [{c['dtype']}]", ok, detail)
        errors = {'lse': nmse(lse, want_lse)}
        if p.diff:
            errors['maps'] = nmse(maps, want_maps)
        limit = THRESHOLDS[c['dtype']]
        ok = not problems and all(e <= limit for e in errors.values())
        detail = f"{kernel}, " + ', '.join(f'{n} NMSE {e:.1e}' for n, e in errors.items())
        report('statistics', f"{c['name']} [{c['dtype']}]", ok, detail + ''.join(f'; {x}' for x in problems))

        output = None if p.diff else out  # attention's backward reads the forward's (rounded) output
        errors, problems, tile = run_backward(c, p, q, k, v, d_out, lam, w, lse, maps, output)
        ok = not problems and all(e <= limit for e in errors.values())
        detail = f'tile {tile}, ' + ', '.join(f'{n} {e:.1e}' for n, e in errors.items())
        report('backward', f"{c['name']} [{c['dtype']}]", ok, detail + ''.join(f'; {x}' for x in problems))

    for mutation, prefix in NEGATIVE.items():
        if only and only not in mutation:
            continue
        c = next(x for x in CASES if x['name'].startswith(prefix))
        p = shape_of(c)
        q, k, v, d_out, lam, w = inputs(c, p)
        _, lse, maps = ref.forward(p, q, k, v, lam, w)
        output = None if p.diff else ref.forward(p, q, k, v)[0]
        maps = None if maps is None else maps.astype(np.float32)
        errors, problems, _ = run_backward(c, p, q, k, v, d_out, lam, w, lse.astype(np.float32), maps, output,
                                           mutation=mutation)
        limit = THRESHOLDS[c['dtype']]
        failing = {n: e for n, e in errors.items() if not e <= limit}
        caught = bool(failing or problems)
        detail = ', '.join(f'{n} NMSE {e:.1e}' for n, e in failing.items()) or '; '.join(problems) or 'not caught'
        report('negative', f'{mutation} ({bw.MUTATIONS[mutation]})', caught, detail)

    for mutation, prefix in STATISTICS_NEGATIVE.items():
        if only and only not in mutation:
            continue
        c = next(x for x in CASES if x['name'].startswith(prefix))
        p = shape_of(c)
        q, k, v, _, lam, w = inputs(c, p)
        _, lse, _, kernel, _ = forward_statistics(c, p, q, k, v, lam, w, mutation=mutation)
        error = nmse(lse, ref.forward(p, q, k, v, lam, w)[1])
        caught = not error <= THRESHOLDS[c['dtype']]
        report('negative', f'{mutation} ({kernel}: log-sum-exp without the factor ln 2)', caught,
               f'lse NMSE {error:.1e}' if caught else 'not caught')

    for mutation, prefix in FLASH_NEGATIVE.items():
        if only and only not in mutation:
            continue
        c = next(x for x in CASES if x['name'].startswith(prefix))
        p = shape_of(c)
        q, k, v, _, lam, w = inputs(c, p)
        out, _, _, kernel, problems = forward_statistics(c, p, q, k, v, lam, w, mutation=mutation)
        error = nmse(out, ref.forward(p, q, k, v, lam, w)[0])
        caught = bool(problems) or not error <= OUTPUT_THRESHOLDS[(c['dtype'], p.diff)]
        report('negative', f'{mutation} ({kernel}: {fe.MUTATIONS[mutation]})', caught,
               f'output NMSE {error:.1e}' if caught else 'not caught')

    if not only or 'embedding' in only:
        # Counts below, at and above powers of two (the network pads to one), repeated and unused ids.
        for count, width, vocab in [(1, 3, 2), (37, 5, 7), (256, 8, 5), (1000, 4, 300)]:
            error, ordered = embedding_emu.check(count, width, vocab, seed=count)
            report('embedding', f'embeddingBackward {count} ids, vocabulary {vocab}', error <= 1e-12 and ordered,
                   f"NMSE {error:.1e}, {'sums in position order' if ordered else 'NOT in position order'}")
        error, ordered = embedding_emu.check(257, 8, 5, seed=257, mutation='descending')
        caught = not (error <= 1e-12 and ordered)
        report('negative', 'descending (embedding sort: the network’s direction test flipped)', caught,
               f'NMSE {error:.1e}' if caught else 'not caught')

    if not only or 'matmul' in only or 'gemv' in only:
        matmul_emu.run(report)

    failed = [r for r in results if not r['pass']]
    print(f'{len(results) - len(failed)} passed, {len(failed)} failed in {time.time() - began:.0f} s')
    if json_file:
        with open(json_file, 'w') as f:
            json.dump({'results': results}, f, indent=1)
    sys.exit(1 if failed else 0)


if __name__ == '__main__':
    main()
