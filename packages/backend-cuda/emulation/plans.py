"""Prints, as JSON, what the emulation takes the host side of the flash kernel to decide (flash_emu.Config and
flash_emu.plan), so test/kernels.test.ts can hold the built addon's flashShape and attentionPlan to it:

  shapes  every instantiation × storage width × key layout × stages: shared memory, keys per tile, threads
  plans   attention_plan for a set of shapes on two devices: path, key splits, stages

Usage: python3 plans.py"""
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import flash_emu as fe  # noqa: E402
from reference import Shape  # noqa: E402

DTYPES = {'f32': 0, 'f16': 1, 'bf16': 2}


def shapes():
    out = []
    for dtype, code in DTYPES.items():
        for maps, dk, dv in sorted(fe.SHAPES):
            for key_maps in ((1, 2) if maps == 2 else (1,)):
                for stages in (2, 3):
                    c = fe.Config(fe.dtype_bytes(dtype), maps, dk, dv)
                    out.append(dict(dtype=code, maps=maps, dk=dk, dv=dv, keyMaps=key_maps, stages=stages,
                                    sharedBytes=c.shared_bytes(stages, key_maps), keysPerTile=c.BN,
                                    threads=c.THREADS))
    return out


def plans():
    devices = {'h200': (132, 227 * 1024), 'sm86': (82, 99 * 1024)}
    # (dtype, diff, shared keys, B, T, S, H, Hkv, dk, dv, causal, keyOffset, keyLength)
    cases = [
        ('bf16', True, False, 1, 8192, 8192, 16, 16, 64, 128, True, 0, 8192),
        ('bf16', True, False, 1, 1, 32768, 16, 16, 64, 128, True, 32767, 32768),
        ('bf16', True, False, 1, 40, 4040, 4, 2, 64, 128, True, 4000, 4040),
        ('f32', True, False, 1, 100, 100, 2, 1, 128, 256, True, 0, 100),
        ('f32', True, False, 2, 300, 300, 4, 2, 128, 128, True, 0, 300),
        ('f16', False, True, 1, 1, 5001, 8, 1, 128, 128, True, 5000, 5001),
        ('f32', False, True, 2, 300, 300, 8, 2, 64, 64, False, 0, 280),
        ('bf16', True, True, 1, 20, 36, 2, 1, 64, 64, True, 12, 32),
        ('f16', True, False, 1, 9, 9, 2, 2, 16, 24, True, 0, 9),
        ('bf16', False, True, 1, 3, 63, 4, 4, 96, 96, True, 60, 63),
    ]
    out = []
    for name, (sms, shared) in devices.items():
        for dtype, diff, shared_keys, B, T, S, H, Hkv, dk, dv, causal, offset, length in cases:
            key_heads = (Hkv if shared_keys else 2 * Hkv) if diff else Hkv
            p = Shape(batch=B, tokens=T, keys=S, heads=H, kv_heads=Hkv, key_heads=key_heads, dk=dk, dv=dv, diff=diff,
                      causal=causal, key_offset=offset, key_length=length)
            path, splits, stages = fe.plan(p, dtype, sms, shared)
            out.append(dict(device=dict(multiprocessors=sms, sharedMemoryPerBlock=shared), dtype=DTYPES[dtype],
                            diff=diff, batch=B, tokens=T, keys=S, heads=H, kvHeads=Hkv, keyHeads=key_heads, dk=dk,
                            dv=dv, causal=causal, keyOffset=offset, keyLength=length,
                            plan=dict(path=path, splits=splits, stages=stages)))
    return out


if __name__ == '__main__':
    json.dump({'shapes': shapes(), 'plans': plans()}, sys.stdout)
