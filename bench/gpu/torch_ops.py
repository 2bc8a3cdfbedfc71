#!/usr/bin/env python3
"""GPU peer of `xdit check --ops --bench`: the same GEMM and attention shapes in PyTorch on the same card.

bf16, timed with CUDA events (median of 7 after one untimed call), written as JSON and a markdown table.
Attention is torch.nn.functional.scaled_dot_product_attention (FlashAttention-2 class on sm_80/sm_90);
FLOPs as the engine counts them: 2·M·N·K for a GEMM, 4·H·Sq·Sk·D for attention.
Run by bench/gpu/run.sh (stage torch); needs only PyTorch with CUDA.
"""
import json
import statistics
import sys

import torch
import torch.nn.functional as F

GEMMS = [(1024, 1152, 1152)]  # (M, N, K): out = a·bᵀ
ATTENTION = [(1024, 1024, 4, 72), (4096, 4096, 16, 72), (4096, 4096, 24, 64), (4096, 4096, 24, 128),
             (16384, 16384, 2, 72)]  # (Sq, Sk, H, D), batch 1


def timed(fn, runs=7):
    fn()
    torch.cuda.synchronize()
    times = []
    for _ in range(runs):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        fn()
        end.record()
        torch.cuda.synchronize()
        times.append(start.elapsed_time(end))
    return statistics.median(times)


def main(path):
    device = torch.device("cuda")
    torch.manual_seed(1)
    rows = []
    for m, n, k in GEMMS:
        a = torch.randn(m, k, device=device, dtype=torch.bfloat16)
        b = torch.randn(n, k, device=device, dtype=torch.bfloat16)
        ms = timed(lambda: a @ b.t())
        rows.append({"op": "gemm", "case": f"[{m},{k}]·[{n},{k}]ᵀ", "median_ms": ms, "gflops": 2 * m * n * k / ms / 1e6})
    for sq, sk, h, d in ATTENTION:
        q = torch.randn(1, h, sq, d, device=device, dtype=torch.bfloat16)
        k_ = torch.randn(1, h, sk, d, device=device, dtype=torch.bfloat16)
        v = torch.randn(1, h, sk, d, device=device, dtype=torch.bfloat16)
        ms = timed(lambda: F.scaled_dot_product_attention(q, k_, v))
        rows.append({"op": "attention", "case": f"q [1,{sq},{h},{d}], k/v [1,{sk},{h},{d}]", "median_ms": ms,
                     "gflops": 4 * h * sq * sk * d / ms / 1e6})
    report = {"device": torch.cuda.get_device_name(), "torch": torch.__version__, "cuda": torch.version.cuda, "cases": rows}
    with open(path, "w") as f:
        json.dump(report, f, indent=2)
    print(f"PyTorch {torch.__version__}, CUDA {torch.version.cuda}, {report['device']}, bf16")
    print("| op | case | median ms | GFLOP/s |")
    print("|---|---|---:|---:|")
    for r in rows:
        print(f"| {r['op']} | {r['case']} | {r['median_ms']:.3f} | {r['gflops']:.1f} |")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "torch_ops.json")
