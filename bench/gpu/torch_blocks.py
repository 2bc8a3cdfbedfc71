#!/usr/bin/env python3
"""GPU peer of `xdit bench --blocks`: the same transformer blocks in PyTorch on the same card.

Reads the cases that `xdit bench --blocks --write_cases DIR` wrote (each block's weights under their
checkpoint names, its inputs and the engine's output, f32), computes each block with the functions of
bench/peers/torch_cpu_blocks.py (diffusers' blocks written out; no diffusers needed) on CUDA in the
engine's dtype, with PyTorch's scaled_dot_product_attention (FlashAttention on recent cards) instead of
the CPU peer's bmm + softmax, checks the output against the engine's, and times it with CUDA events
(median of the runs after a warm-up). Prints a markdown table and writes JSON.

    python3 bench/gpu/torch_blocks.py CASES_DIR OUT.json [bf16|f16|f32]
"""
import glob
import json
import os
import statistics
import sys

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "peers"))
import torch_cpu_blocks as blocks  # noqa: E402

DTYPES = {"bf16": torch.bfloat16, "f16": torch.float16, "f32": torch.float32}
# Both sides round to the storage dtype at every op, each its own way: half-precision blocks agree to ~1e-2.
BOUND = {"bf16": 3e-2, "f16": 1e-2, "f32": 1e-4}


def sdpa(q, k, v):
    """[B·H, S, D] queries over [B·H, T, D] keys and values, through PyTorch's fused attention."""
    return F.scaled_dot_product_attention(q, k, v)


def measure(path, dtype, runs=7):
    weights = blocks.load_safetensors(path)
    expected = weights.pop("output").cuda()
    w = {name: t.to("cuda", dtype) for name, t in weights.items()}
    name = os.path.basename(path)
    kind = next(k for k in blocks.BLOCKS if name.startswith(k))
    run, tokens, flops = blocks.BLOCKS[kind](w)
    with torch.no_grad():
        out = run().float()  # also the warm-up
        error = (torch.linalg.norm(out - expected) / torch.linalg.norm(expected)).item()
        times = []
        for _ in range(runs):
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            run()
            end.record()
            end.synchronize()
            times.append(start.elapsed_time(end))
    median = statistics.median(times)
    del w
    torch.cuda.empty_cache()
    return {"case": name, "tokens": tokens, "median_ms": median, "tflops": flops / (median / 1e3) / 1e12,
            "relative_l2_vs_engine": error}


def main():
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    cases = sorted(glob.glob(os.path.join(sys.argv[1], "*.safetensors")), key=os.path.getsize)
    if not cases:
        sys.exit(f"no block cases in {sys.argv[1]}: run `xdit bench --blocks --write_cases DIR` first")
    dtype_name = sys.argv[3] if len(sys.argv) > 3 else "bf16"
    blocks.sdpa = sdpa
    results = [measure(p, DTYPES[dtype_name]) for p in cases]
    card = torch.cuda.get_device_name(0)
    with open(sys.argv[2], "w") as f:
        json.dump({"torch": torch.__version__, "cuda": torch.version.cuda, "device": card, "dtype": dtype_name,
                   "results": results}, f, indent=1)
    print(f"PyTorch {torch.__version__} (CUDA {torch.version.cuda}) on {card}, {dtype_name}")
    print("| case | image tokens | median ms | TFLOP/s | relative L2 vs engine |")
    print("|---|---:|---:|---:|---:|")
    for r in results:
        print(f"| {r['case']} | {r['tokens']} | {r['median_ms']:.2f} | {r['tflops']:.2f} | {r['relative_l2_vs_engine']:.2e} |")
    failed = sum(r["relative_l2_vs_engine"] > BOUND[dtype_name] for r in results)
    print(f"{len(results) - failed} passed, {failed} failed (the engine's output within {BOUND[dtype_name]:g} relative L2)")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
