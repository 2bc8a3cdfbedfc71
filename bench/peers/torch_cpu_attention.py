#!/usr/bin/python3
"""Peer for AttentionBenchmarks: the same attention computed by PyTorch on the CPU.

Debian's python3-torch (1.13) has no scaled_dot_product_attention, so attention is written as
bmm + softmax + bmm, which is what PyTorch's math path does. Same shapes, f32, and the same number of
threads as the engine's context (all cores). Prints one markdown table row per shape and writes JSON.

Run by `dotnet pwsh build.ps1 bench-peers`, which installs python3-torch and libopenblas0-pthread (so
PyTorch calls OpenBLAS, not the reference BLAS).
"""
import json
import os
import statistics
import sys
import time

import torch

SHAPES = [(1024, 16, 72), (4096, 4, 72), (2048, 8, 128)]  # (S, H, D), batch 1


def attention(q, k, v, scale):
    scores = torch.bmm(q, k.transpose(1, 2)) * scale
    return torch.bmm(torch.softmax(scores, dim=-1), v)


def measure(s, h, d, repeats=5):
    generator = torch.Generator().manual_seed(1)
    q, k, v = (torch.rand(h, s, d, generator=generator) - 0.5 for _ in range(3))
    scale = d ** -0.5
    attention(q, k, v, scale)  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        attention(q, k, v, scale)
        times.append(time.perf_counter() - start)
    median = statistics.median(times)
    flops = 4.0 * h * s * s * d
    return {"shape": f"{s}x{h}x{d}", "median_ms": median * 1e3, "gflops": flops / median / 1e9,
            "peak_scores_mib": h * s * s * 4 / 2**20}


def main():
    threads = os.cpu_count()
    torch.set_num_threads(threads)
    results = [measure(*shape) for shape in SHAPES]
    out = sys.argv[1] if len(sys.argv) > 1 else "torch_cpu_attention.json"
    with open(out, "w") as f:
        json.dump({"torch": torch.__version__, "threads": threads, "results": results}, f, indent=1)
    print(f"PyTorch {torch.__version__}, {threads} threads")
    print("| S×H×D | median ms | GFLOP/s | score matrix MiB |")
    print("|---|---:|---:|---:|")
    for r in results:
        print(f"| {r['shape']} | {r['median_ms']:.1f} | {r['gflops']:.1f} | {r['peak_scores_mib']:.0f} |")


if __name__ == "__main__":
    main()
