#!/usr/bin/python3
"""Peer for BlockBenchmarks: one PixArt-Sigma transformer block computed by PyTorch on the CPU.

Reads the cases the engine's benchmark setup wrote (BenchmarkDotNet.Artifacts/peers/blocks/*.safetensors:
the block's weights under their checkpoint names, its inputs and the engine's output), computes the
same block as diffusers' BasicTransformerBlock with ada_norm_single does (written out here: this
machine's PyTorch 1.13 has no diffusers and no scaled_dot_product_attention, so attention is
bmm + softmax + bmm), checks it against the engine's output (relative L2), and times it with as many
threads as the engine's context (all cores). Prints a markdown table and writes JSON.

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

HEADS, EPS, CAPTION = 16, 1e-6, 300


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


def attention(w, prefix, x, context):
    b, s, c = x.shape
    t = context.shape[1]
    d = c // HEADS
    q = linear(w, prefix + ".to_q", x).view(b, s, HEADS, d).transpose(1, 2).reshape(b * HEADS, s, d)
    k = linear(w, prefix + ".to_k", context).view(b, t, HEADS, d).transpose(1, 2).reshape(b * HEADS, t, d)
    v = linear(w, prefix + ".to_v", context).view(b, t, HEADS, d).transpose(1, 2).reshape(b * HEADS, t, d)
    p = torch.softmax(torch.bmm(q, k.transpose(1, 2)) * d ** -0.5, dim=-1)
    out = torch.bmm(p, v).view(b, HEADS, s, d).transpose(1, 2).reshape(b, s, c)
    return linear(w, prefix + ".to_out.0", out)


def pixart_block(w, x, timestep, caption):
    b, _, c = x.shape
    shift_msa, scale_msa, gate_msa, shift_mlp, scale_mlp, gate_mlp = (
        w["scale_shift_table"][None] + timestep.view(b, 6, c)).unbind(1)
    normed = F.layer_norm(x, (c,), eps=EPS) * (1 + scale_msa[:, None]) + shift_msa[:, None]
    x = x + gate_msa[:, None] * attention(w, "attn1", normed, normed)
    x = x + attention(w, "attn2", x, caption)
    normed = F.layer_norm(x, (c,), eps=EPS) * (1 + scale_mlp[:, None]) + shift_mlp[:, None]
    fed = linear(w, "ff.net.2", F.gelu(linear(w, "ff.net.0.proj", normed), approximate="tanh"))
    return x + gate_mlp[:, None] * fed


def measure(path, repeats=5):
    w = load_safetensors(path)
    x, timestep, caption = w["input.x"], w["input.timestep"], w["input.caption"]
    s, c = x.shape[1], x.shape[2]
    with torch.no_grad():
        out = pixart_block(w, x, timestep, caption)  # also the warm-up
        error = (torch.linalg.norm(out - w["output"]) / torch.linalg.norm(w["output"])).item()
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            pixart_block(w, x, timestep, caption)
            times.append(time.perf_counter() - start)
    median = statistics.median(times)
    flops = 28 * s * c * c + 4 * CAPTION * c * c + 4 * s * s * c + 4 * s * CAPTION * c
    return {"case": os.path.basename(path), "tokens": s, "median_ms": median * 1e3, "gflops": flops / median / 1e9,
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
