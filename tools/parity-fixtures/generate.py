#!/usr/bin/env python3
"""Writes the parity fixtures of diff-transformer from the reference implementations.

Two subcommands:

  modules OFFICIAL_DIR --out DIR
      Imports the official attention modules of microsoft/unilm (folder Diff-Transformer:
      multihead_diffattn.py, multihead_flashdiff_1.py, Diff-Transformer-V2/multihead_flashdiffv2.py)
      from OFFICIAL_DIR (a checkout of unilm, or its Diff-Transformer folder; the files are not part of
      this repository), runs each in float64 on a few configurations and writes one parity fixture per
      run (see packages/conformance/src/parity.ts for the format). Needs PyTorch (1.13 or later) only.

  diffllama --out DIR
      Builds tiny random Hugging Face DiffLlamaForCausalLM models, saves each as a model folder
      (config.json + safetensors, one of them sharded), and writes beside it oracle.safetensors: the
      float64 logits on fixed ids and the greedy continuation of a prompt. Needs PyTorch and
      transformers (the GPU machine has them; CPU is enough).

The official files import things that cannot run here (flash_attn and a Triton rotary kernel, both
CUDA-only; apex; torch.compile on a CPU in float64). Small shims stand in for them, each written from
the documented semantics, in float64:
  - flash_attn.flash_attn_func(q, k, v, causal=True): q [B, T, Hq, d], k [B, S, Hk, d], v [B, S, Hk, dv];
    query head j uses kv head j // (Hq / Hk) (GQA); causal is bottom-right aligned (query t sees keys
    s <= t + S - T); scale 1/sqrt(d).
  - kernel.rotary.apply_rotary_emb(x, cos, sin, interleaved, seqlen_offsets): rotates the first
    r = 2 * cos.shape[1] dims of x [B, T, H, D] with rows offset..offset+T of the tables; interleaved
    pairs (2j, 2j+1) or halves (j, j + r/2); the other dims are copied.
  - apex is made unimportable, so the files take their own fallback: rms_norm.RMSNorm from the same
    folder (or the diff/ subfolder); if neither has it, a shim with that class's semantics.
  - torch.compile is replaced by the identity (torch 1.13 has none; compiling changes no value).
The official code itself computes a few things in float32 even in a float64 run (the naive file's
softmax, their RMSNorm fallback, lambda), so fixtures hold float32 round-off there: NMSE ~1e-14,
far below the 1e-10 the parity check allows.
"""
import argparse
import importlib.util
import json
import math
import os
import struct
import sys
import types

import torch

# ---------------------------------------------------------------------------------------------------
# safetensors writing (own code: the format is an 8-byte header length, a JSON header, the data)
# ---------------------------------------------------------------------------------------------------

_DTYPES = {
    torch.float64: "F64",
    torch.float32: "F32",
    torch.int64: "I64",
    torch.int32: "I32",
}


def write_safetensors(path, tensors, metadata):
    header = {"__metadata__": {k: v for k, v in metadata.items()}}
    blobs = []
    offset = 0
    for name, t in tensors.items():
        t = t.detach().contiguous().cpu()
        data = t.numpy().astype(t.numpy().dtype.newbyteorder("<"), copy=False).tobytes()
        header[name] = {"dtype": _DTYPES[t.dtype], "shape": list(t.shape), "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    text = json.dumps(header, separators=(",", ":")).encode("utf-8")
    text += b" " * ((8 - len(text) % 8) % 8)
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for b in blobs:
            f.write(b)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


# ---------------------------------------------------------------------------------------------------
# Shims for what the official files import
# ---------------------------------------------------------------------------------------------------


def flash_attn_func(q, k, v, dropout_p=0.0, softmax_scale=None, causal=False, **_ignored):
    """flash_attn's function in plain float64 PyTorch: GQA by kv-head groups, bottom-right causal mask."""
    assert dropout_p == 0.0
    bsz, tgt, hq, d = q.shape
    src, hk = k.shape[1], k.shape[2]
    assert hq % hk == 0, "query heads must be a multiple of kv heads"
    group = hq // hk
    scale = softmax_scale if softmax_scale is not None else d ** -0.5
    kk = k.repeat_interleave(group, dim=2)
    vv = v.repeat_interleave(group, dim=2)
    scores = torch.einsum("bthd,bshd->bhts", q, kk) * scale
    if causal:
        t_index = torch.arange(tgt).unsqueeze(1)
        s_index = torch.arange(src).unsqueeze(0)
        scores = scores.masked_fill(s_index > t_index + (src - tgt), float("-inf"))
    weights = torch.softmax(scores, dim=-1)
    return torch.einsum("bhts,bshd->bthd", weights, vv)


def apply_rotary_emb(x, cos, sin, interleaved=False, inplace=False, seqlen_offsets=0, cu_seqlens=None, max_seqlen=None):
    """The rotary kernel's function: rotate the first 2*cos.shape[1] dims of x [B, T, H, D]."""
    assert cu_seqlens is None and isinstance(seqlen_offsets, int)
    tokens = x.shape[1]
    rot = 2 * cos.shape[1]
    c = cos[seqlen_offsets : seqlen_offsets + tokens].to(x.dtype)[None, :, None, :]
    s = sin[seqlen_offsets : seqlen_offsets + tokens].to(x.dtype)[None, :, None, :]
    xr, rest = x[..., :rot], x[..., rot:]
    if interleaved:
        a, b = xr[..., 0::2], xr[..., 1::2]
        out = torch.stack((a * c - b * s, b * c + a * s), dim=-1).flatten(-2)
    else:
        a, b = xr[..., : rot // 2], xr[..., rot // 2 :]
        out = torch.cat((a * c - b * s, b * c + a * s), dim=-1)
    return torch.cat((out, rest), dim=-1)


class _ShimRMSNorm(torch.nn.Module):
    """Used only when the official folder has no rms_norm.py: x / sqrt(mean(x^2) + eps) [* weight]."""

    def __init__(self, dim, eps=1e-6, elementwise_affine=True, memory_efficient=False):
        super().__init__()
        self.eps = eps
        self.weight = torch.nn.Parameter(torch.ones(dim)) if elementwise_affine else None

    def forward(self, x):
        out = (x.float() * torch.rsqrt(x.float().pow(2).mean(-1, keepdim=True) + self.eps)).type_as(x)
        return out * self.weight if self.weight is not None else out


def _install_shims(package, rms_norm_file):
    rotary = types.ModuleType("kernel.rotary")
    rotary.apply_rotary_emb = apply_rotary_emb
    kernel = types.ModuleType("kernel")
    kernel.__path__ = []
    kernel.rotary = rotary
    flash = types.ModuleType("flash_attn")
    flash.flash_attn_func = flash_attn_func
    for prefix in ("", package + "."):
        sys.modules[prefix + "kernel"] = kernel
        sys.modules[prefix + "kernel.rotary"] = rotary
    sys.modules["flash_attn"] = flash
    sys.modules["apex"] = None  # makes `from apex... import` raise ModuleNotFoundError
    if rms_norm_file is not None:
        spec = importlib.util.spec_from_file_location(package + ".rms_norm", rms_norm_file)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    else:
        module = types.ModuleType("rms_norm")
        module.RMSNorm = _ShimRMSNorm
    sys.modules[package + ".rms_norm"] = module
    sys.modules["rms_norm"] = module
    torch.compile = lambda fn=None, **_kw: fn if fn is not None else (lambda f: f)


def _find(root, *candidates):
    for c in candidates:
        p = os.path.join(root, c)
        if os.path.isfile(p):
            return p
    return None


def load_official(root, file_name):
    """Imports one official file as a submodule of a synthetic package, so its relative imports resolve."""
    folders = ["", "Diff-Transformer"]
    subfolder = "Diff-Transformer-V2" if file_name == "multihead_flashdiffv2.py" else ""
    path = _find(root, *[os.path.join(f, subfolder, file_name) for f in folders])
    if path is None:
        raise SystemExit(f"generate.py: {file_name} not found under {root} (give a unilm checkout or its Diff-Transformer folder)")
    folder = os.path.dirname(path)
    rms = _find(folder, "rms_norm.py", os.path.join("diff", "rms_norm.py"), os.path.join("..", "diff", "rms_norm.py"))
    package = "difftx_official_" + file_name[:-3]
    pkg = types.ModuleType(package)
    pkg.__path__ = [folder]
    sys.modules[package] = pkg
    _install_shims(package, rms)
    spec = importlib.util.spec_from_file_location(package + "." + file_name[:-3], path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    relative = os.path.relpath(path, root)
    if not relative.startswith("Diff-Transformer"):
        relative = os.path.join("Diff-Transformer", relative)
    return module, relative.replace(os.sep, "/")


# ---------------------------------------------------------------------------------------------------
# Module fixtures
# ---------------------------------------------------------------------------------------------------


class Args:
    def __init__(self, kv_heads):
        self.decoder_kv_attention_heads = kv_heads
        self.model_parallel_size = 1


def rotary_tables(positions, rotary_dim, theta=10000.0):
    j = torch.arange(rotary_dim // 2, dtype=torch.float64)
    inv = theta ** (-2.0 * j / rotary_dim)
    angles = torch.arange(positions, dtype=torch.float64)[:, None] * inv[None, :]
    return torch.cos(angles), torch.sin(angles)


def make_v1(module_file, embed_dim, depth, num_heads, kv_heads):
    import inspect

    cls = getattr(module_file, "MultiheadFlashDiff1", None) or getattr(module_file, "MultiheadDiffAttn")
    params = list(inspect.signature(cls.__init__).parameters)
    if "args" in params:
        return cls(Args(kv_heads), embed_dim, depth, num_heads)
    if "num_kv_heads" in params:
        return cls(embed_dim, depth, num_heads, kv_heads)
    return cls(embed_dim, depth, num_heads)


# (name, file, embed_dim/d_model, num_heads, num_kv_heads, head_dim (V2), depth (V1), batch, tokens, rotary fraction)
CASES = [
    ("flashdiff1-mha-depth0", "multihead_flashdiff_1.py", 64, 2, None, None, 0, 2, 7, 1.0),
    ("flashdiff1-gqa2-depth3", "multihead_flashdiff_1.py", 64, 4, 2, None, 3, 1, 13, 1.0),
    ("flashdiff1-mqa-depth11", "multihead_flashdiff_1.py", 64, 4, 1, None, 11, 2, 9, 1.0),
    ("flashdiff1-partial-rotary", "multihead_flashdiff_1.py", 64, 2, 1, None, 5, 1, 6, 0.5),
    ("diffattn-mha-depth1", "multihead_diffattn.py", 48, 3, None, None, 1, 2, 5, 1.0),
    ("diffattn-gqa2-depth5", "multihead_diffattn.py", 64, 4, 2, None, 5, 1, 11, 1.0),
    ("diffattn-mqa-depth2", "multihead_diffattn.py", 64, 4, 1, None, 2, 1, 6, 1.0),
    ("flashdiffv2-mha", "multihead_flashdiffv2.py", 64, 4, None, 16, None, 1, 9, 1.0),
    ("flashdiffv2-gqa2", "multihead_flashdiffv2.py", 64, 4, 2, 8, None, 2, 15, 1.0),
    ("flashdiffv2-mqa", "multihead_flashdiffv2.py", 48, 2, 1, 12, None, 1, 3, 1.0),
]


def generate_modules(official, out, only):
    os.makedirs(out, exist_ok=True)
    loaded = {}
    for index, (name, file_name, embed, heads, kv, v2_head_dim, depth, batch, tokens, fraction) in enumerate(CASES):
        if only and name not in only:
            continue
        if file_name not in loaded:
            loaded[file_name] = load_official(official, file_name)
        module_file, source = loaded[file_name]
        torch.manual_seed(1000 + index)
        v2 = file_name == "multihead_flashdiffv2.py"
        if v2:
            module = module_file.MultiheadFlashDiffV2(True, embed, heads, kv, v2_head_dim)
            head_dim = v2_head_dim
        else:
            module = make_v1(module_file, embed, depth, heads, kv)
            head_dim = module.head_dim
            if getattr(module.subln, "weight", None) is not None:
                with torch.no_grad():  # a weight of ones would hide a missing or misplaced norm weight
                    module.subln.weight.copy_(1 + 0.2 * torch.randn_like(module.subln.weight))
        with torch.no_grad():
            for p in module.parameters():  # float32 values, exactly representable in the F32 fixture
                p.copy_(p.float())
        module = module.double().eval()
        x = torch.randn(batch, tokens, embed).float().double()
        rotary_dim = int(head_dim * fraction)
        cos, sin = rotary_tables(tokens, rotary_dim)
        with torch.no_grad():
            y = module(x, (cos, sin))
        tensors = {"x": x, "y": y, "rope_cos": cos, "rope_sin": sin}
        for key, value in module.state_dict().items():
            tensors["weights." + key] = value.float()
        metadata = {
            "source": json.dumps(source),
            "num_heads": json.dumps(heads),
            "num_kv_heads": json.dumps(kv),
            "head_dim": json.dumps(head_dim),
            "generator": json.dumps("tools/parity-fixtures/generate.py modules"),
            "torch": json.dumps(torch.__version__),
            "case": json.dumps(name),
        }
        if v2:
            metadata["d_model"] = json.dumps(embed)
        else:
            metadata["embed_dim"] = json.dumps(embed)
            metadata["depth"] = json.dumps(depth)
            metadata["lambda_init"] = json.dumps(module.lambda_init)
        path = os.path.join(out, name + ".safetensors")
        write_safetensors(path, tensors, metadata)
        print(f"{path}: {source} B={batch} T={tokens} E={embed} H={heads} Hkv={kv} d={head_dim} ({os.path.getsize(path)} bytes)")


# ---------------------------------------------------------------------------------------------------
# Hugging Face DiffLlama oracle
# ---------------------------------------------------------------------------------------------------

# (name, num_attention_heads, num_key_value_heads, head_dim, layers, tie, rope_theta, shard)
DIFFLLAMA_CASES = [
    ("gqa-sharded", 8, 4, 8, 3, False, 10000.0, "40KB"),
    ("mqa-tied", 4, 1, 16, 2, True, 500000.0, None),
    ("kv3-odd", 6, 3, 8, 2, False, 10000.0, None),
]
PROMPT = [3, 17, 42, 5, 88]
IDS = [[1, 5, 9, 33, 2, 71, 14, 60, 8, 27, 90], [4, 4, 18, 52, 96, 0, 7, 31, 45, 12, 66]]
NEW_TOKENS = 12


def generate_diffllama(out, only):
    try:
        import transformers
        from transformers import DiffLlamaConfig, DiffLlamaForCausalLM
    except ImportError as error:
        raise SystemExit(f"generate.py diffllama needs Hugging Face transformers with DiffLlama (>= 4.48): {error}")

    os.makedirs(out, exist_ok=True)
    for index, (name, heads, kv, head_dim, layers, tie, theta, shard) in enumerate(DIFFLLAMA_CASES):
        if only and name not in only:
            continue
        torch.manual_seed(2000 + index)
        config = DiffLlamaConfig(
            vocab_size=97,
            hidden_size=48,
            intermediate_size=80,
            num_hidden_layers=layers,
            num_attention_heads=heads,
            num_key_value_heads=kv,
            head_dim=head_dim,
            max_position_embeddings=128,
            rms_norm_eps=1e-5,
            tie_word_embeddings=tie,
            initializer_range=0.15,
            rope_parameters={"rope_type": "default", "rope_theta": theta},
            bos_token_id=None,
            eos_token_id=None,
            pad_token_id=None,
        )
        config._attn_implementation = "eager"  # the reference forward: explicit softmax, no fused kernels
        model = DiffLlamaForCausalLM(config)
        if hasattr(model, "set_attn_implementation"):
            model.set_attn_implementation("eager")
        with torch.no_grad():  # norms away from 1, so a misplaced norm weight shows
            for key, p in model.named_parameters():
                if key.endswith("layernorm.weight") or key.endswith("norm.weight"):
                    p.copy_(1 + 0.2 * torch.randn_like(p))
        model = model.float().eval()
        folder = os.path.join(out, name)
        model_dir = os.path.join(folder, "model")
        kwargs = {}  # safetensors is the default format of save_pretrained
        if shard:
            kwargs["max_shard_size"] = shard
        model.save_pretrained(model_dir, **kwargs)
        model = model.double()
        with torch.no_grad():
            logits = model(torch.tensor(IDS)).logits
            generated = model.generate(
                torch.tensor([PROMPT]), max_new_tokens=NEW_TOKENS, do_sample=False, pad_token_id=0, use_cache=True
            )[0, len(PROMPT) :]
        write_safetensors(
            os.path.join(folder, "oracle.safetensors"),
            {
                "ids": torch.tensor(IDS, dtype=torch.int64),
                "logits": logits,
                "prompt": torch.tensor(PROMPT, dtype=torch.int64),
                "greedy": generated.to(torch.int64),
            },
            {
                "generator": json.dumps("tools/parity-fixtures/generate.py diffllama"),
                "torch": json.dumps(torch.__version__),
                "transformers": json.dumps(transformers.__version__),
                "case": json.dumps(name),
            },
        )
        print(f"{folder}: H={heads} Hkv={kv} D={head_dim} layers={layers} tied={tie} theta={theta} greedy={generated.tolist()}")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    m = sub.add_parser("modules", help="fixtures from the official attention modules")
    m.add_argument("official", help="a microsoft/unilm checkout, or its Diff-Transformer folder")
    m.add_argument("--out", default="fixtures/parity")
    m.add_argument("--only", nargs="*", default=None, help="case names")
    d = sub.add_parser("diffllama", help="Hugging Face DiffLlama model folders and their float64 oracle")
    d.add_argument("--out", default="fixtures/diffllama")
    d.add_argument("--only", nargs="*", default=None, help="case names")
    args = parser.parse_args()
    torch.set_grad_enabled(False)
    if args.command == "modules":
        generate_modules(args.official, args.out, args.only)
    else:
        generate_diffllama(args.out, args.only)


if __name__ == "__main__":
    main()
