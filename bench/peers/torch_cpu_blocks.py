#!/usr/bin/python3
"""Peer for BlockBenchmarks: full-width transformer blocks computed by PyTorch on the CPU.

Reads the cases the engine's benchmark setup wrote (BenchmarkDotNet.Artifacts/peers/blocks/*.safetensors:
the block's weights under their checkpoint names, its inputs and the engine's output), computes the
same block as diffusers does — PixArt-Sigma's BasicTransformerBlock with ada_norm_single, SD3-medium's
JointTransformerBlock, FLUX.1-dev's FluxTransformerBlock — written out here (this machine's PyTorch 1.13 has no diffusers and no
scaled_dot_product_attention, so attention is bmm + softmax + bmm), checks it against the engine's
output (relative L2), and times it with as many threads as the engine's context (all cores). Prints a
markdown table and writes JSON.

Run by `dotnet pwsh build.ps1 bench-peers` after `build.ps1 bench -BenchArgs '--filter *Block*'`.
"""
import glob
import json
import os
import statistics
import struct
import sys
import time

import torch
import torch.nn.functional as F

EPS = 1e-6
PIXART_HEADS, CAPTION = 16, 300
SD3_HEADS = 24
FLUX_HEADS = 24


def load_safetensors(path):
    """The f32 tensors of a safetensors file (header: 8-byte length, JSON; then the raw data)."""
    with open(path, "rb") as f:
        (length,) = struct.unpack("<Q", f.read(8))
        header = json.loads(f.read(length))
        data = f.read()
    tensors = {}
    for name, entry in header.items():
        if name == "__metadata__":
            continue
        if entry["dtype"] != "F32":
            raise ValueError(f"{path}: {name} is {entry['dtype']}, expected F32")
        start, end = entry["data_offsets"]
        tensors[name] = torch.frombuffer(bytearray(data[start:end]), dtype=torch.float32).reshape(entry["shape"])
    return tensors


def linear(w, prefix, x):
    return F.linear(x, w[prefix + ".weight"], w[prefix + ".bias"])


def heads_first(x, heads):
    b, s, c = x.shape
    return x.view(b, s, heads, c // heads).transpose(1, 2).reshape(b * heads, s, c // heads)


def heads_last(x, b, heads):
    _, s, d = x.shape
    return x.view(b, heads, s, d).transpose(1, 2).reshape(b, s, heads * d)


def sdpa(q, k, v):
    """[B·H, S, D] queries over [B·H, T, D] keys and values."""
    p = torch.softmax(torch.bmm(q, k.transpose(1, 2)) * q.shape[-1] ** -0.5, dim=-1)
    return torch.bmm(p, v)


def attention(w, prefix, x, context):
    q = heads_first(linear(w, prefix + ".to_q", x), PIXART_HEADS)
    k = heads_first(linear(w, prefix + ".to_k", context), PIXART_HEADS)
    v = heads_first(linear(w, prefix + ".to_v", context), PIXART_HEADS)
    return linear(w, prefix + ".to_out.0", heads_last(sdpa(q, k, v), x.shape[0], PIXART_HEADS))


def modulate(x, shift, scale):
    return F.layer_norm(x, (x.shape[-1],), eps=EPS) * (1 + scale[:, None]) + shift[:, None]


def feed_forward(w, prefix, x):
    return linear(w, prefix + ".net.2", F.gelu(linear(w, prefix + ".net.0.proj", x), approximate="tanh"))


def pixart_block(w):
    """diffusers' BasicTransformerBlock (ada_norm_single): the image tokens after the block, and its FLOPs."""
    x, timestep, caption = w["input.x"], w["input.timestep"], w["input.caption"]
    b, s, c = x.shape

    def run():
        shift_msa, scale_msa, gate_msa, shift_mlp, scale_mlp, gate_mlp = (
            w["scale_shift_table"][None] + timestep.view(b, 6, c)).unbind(1)
        normed = modulate(x, shift_msa, scale_msa)
        y = x + gate_msa[:, None] * attention(w, "attn1", normed, normed)
        y = y + attention(w, "attn2", y, caption)
        return y + gate_mlp[:, None] * feed_forward(w, "ff", modulate(y, shift_mlp, scale_mlp))

    return run, s, 28 * s * c * c + 4 * CAPTION * c * c + 4 * s * s * c + 4 * s * CAPTION * c


def sd3_block(w):
    """diffusers' JointTransformerBlock (not the last): the image stream after the block, and its FLOPs.
    The input "activated" is SiLU of the conditioning, as the model hands it to every block."""
    image, text, activated = w["input.image"], w["input.text"], w["input.activated"]
    b, s, c = image.shape
    t = text.shape[1]

    def run():
        rows = linear(w, "norm1.linear", activated).chunk(6, dim=1)
        text_rows = linear(w, "norm1_context.linear", activated).chunk(6, dim=1)
        normed, text_normed = modulate(image, rows[0], rows[1]), modulate(text, text_rows[0], text_rows[1])
        # One attention over [image, text], each stream with its own projections.
        q = torch.cat([linear(w, "attn.to_q", normed), linear(w, "attn.add_q_proj", text_normed)], dim=1)
        k = torch.cat([linear(w, "attn.to_k", normed), linear(w, "attn.add_k_proj", text_normed)], dim=1)
        v = torch.cat([linear(w, "attn.to_v", normed), linear(w, "attn.add_v_proj", text_normed)], dim=1)
        out = heads_last(sdpa(heads_first(q, SD3_HEADS), heads_first(k, SD3_HEADS), heads_first(v, SD3_HEADS)), b, SD3_HEADS)
        y = image + rows[2][:, None] * linear(w, "attn.to_out.0", out[:, :s])
        y = y + rows[5][:, None] * feed_forward(w, "ff", modulate(y, rows[3], rows[4]))
        z = text + text_rows[2][:, None] * linear(w, "attn.to_add_out", out[:, s:])
        z = z + text_rows[5][:, None] * feed_forward(w, "ff_context", modulate(z, text_rows[3], text_rows[4]))
        return y

    return run, s, 24 * (s + t) * c * c + 4 * (s + t) ** 2 * c


def rms_norm(w, name, x):
    """Per-head RMS norm with weight, eps 1e-6, over the last dimension of [B, S, H, D]."""
    return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + EPS) * w[name + ".weight"]


def rotate(x, cos, sin):
    """diffusers' apply_rotary_emb with interleaved pairs: cos, sin [S, D] (each angle twice)."""
    pairs = x.reshape(*x.shape[:-1], -1, 2)
    rotated = torch.stack([-pairs[..., 1], pairs[..., 0]], dim=-1).flatten(-2)
    return x * cos[None, :, None] + rotated * sin[None, :, None]


def flux_block(w):
    """diffusers' FluxTransformerBlock (double stream): the image stream after the block, and its FLOPs.
    The input "activated" is SiLU of the conditioning; cos/sin are the joint sequence's rotary tables."""
    image, text, activated, cos, sin = (w[f"input.{n}"] for n in ("image", "text", "activated", "cos", "sin"))
    b, s, c = image.shape
    t = text.shape[1]
    d = c // FLUX_HEADS

    def project(name, norm, x):
        y = linear(w, name, x).view(b, x.shape[1], FLUX_HEADS, d)
        return rms_norm(w, norm, y) if norm else y

    def run():
        rows = linear(w, "norm1.linear", activated).chunk(6, dim=1)
        text_rows = linear(w, "norm1_context.linear", activated).chunk(6, dim=1)
        normed, text_normed = modulate(image, rows[0], rows[1]), modulate(text, text_rows[0], text_rows[1])
        # One attention over [text, image] (text first, as in every Flux sequence), rotated by position.
        q = torch.cat([project("attn.add_q_proj", "attn.norm_added_q", text_normed), project("attn.to_q", "attn.norm_q", normed)], dim=1)
        k = torch.cat([project("attn.add_k_proj", "attn.norm_added_k", text_normed), project("attn.to_k", "attn.norm_k", normed)], dim=1)
        v = torch.cat([project("attn.add_v_proj", None, text_normed), project("attn.to_v", None, normed)], dim=1)
        q, k = rotate(q, cos, sin), rotate(k, cos, sin)
        flat = lambda x: x.transpose(1, 2).reshape(b * FLUX_HEADS, t + s, d)
        out = heads_last(sdpa(flat(q), flat(k), flat(v)), b, FLUX_HEADS)
        y = image + rows[2][:, None] * linear(w, "attn.to_out.0", out[:, t:])
        y = y + rows[5][:, None] * feed_forward(w, "ff", modulate(y, rows[3], rows[4]))
        z = text + text_rows[2][:, None] * linear(w, "attn.to_add_out", out[:, :t])
        z = z + text_rows[5][:, None] * feed_forward(w, "ff_context", modulate(z, text_rows[3], text_rows[4]))
        return y

    return run, s, 24 * (s + t) * c * c + 4 * (s + t) ** 2 * c


BLOCKS = {"pixart_sigma": pixart_block, "sd3_medium": sd3_block, "flux_dev": flux_block}


def measure(path, repeats=5):
    w = load_safetensors(path)
    name = os.path.basename(path)
    kind = next(k for k in BLOCKS if name.startswith(k))
    run, s, flops = BLOCKS[kind](w)
    with torch.no_grad():
        out = run()  # also the warm-up
        error = (torch.linalg.norm(out - w["output"]) / torch.linalg.norm(w["output"])).item()
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            run()
            times.append(time.perf_counter() - start)
    median = statistics.median(times)
    return {"case": name, "tokens": s, "median_ms": median * 1e3, "gflops": flops / median / 1e9,
            "relative_l2_vs_engine": error}


def main():
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    cases = sorted(glob.glob(os.path.join(root, "BenchmarkDotNet.Artifacts", "peers", "blocks", "*.safetensors")),
                   key=lambda p: os.path.getsize(p))
    if not cases:
        sys.exit("no block cases: run `dotnet pwsh build.ps1 bench -BenchArgs '--filter *Block*'` first")
    threads = os.cpu_count()
    torch.set_num_threads(threads)
    results = [measure(p) for p in cases]
    out = sys.argv[1] if len(sys.argv) > 1 else "torch_cpu_blocks.json"
    with open(out, "w") as f:
        json.dump({"torch": torch.__version__, "threads": threads, "results": results}, f, indent=1)
    print(f"PyTorch {torch.__version__}, {threads} threads")
    print("| case | tokens | median ms | GFLOP/s | relative L2 vs engine |")
    print("|---|---:|---:|---:|---:|")
    for r in results:
        print(f"| {r['case']} | {r['tokens']} | {r['median_ms']:.1f} | {r['gflops']:.1f} | {r['relative_l2_vs_engine']:.2e} |")
    if any(r["relative_l2_vs_engine"] > 1e-4 for r in results):
        sys.exit("the PyTorch block disagrees with the engine's output")


if __name__ == "__main__":
    main()
