#!/usr/bin/env bash
# The GPU check kit: runs on a GPU machine that has nvcc, CMake and a driver (PyTorch optional) but no
# .NET SDK and no internet. Prepare it on a build machine with
#     dotnet pwsh -NoProfile -File build.ps1 gpukit      # writes artifacts/gpukit/xdit (self-contained)
# then, on the GPU machine, from the repository root (artifacts/gpukit carried along):
#     bench/gpu/run.sh [stage ...]                       # default: build env ops comm meshes graph sanitizer bench torch blocks
# Stages, each under its own time limit (< 10 minutes):
#   build      the native library with this machine's CUDA (kernels for sm_80 and sm_90), alone first,
#              so that a compile error on a newer toolkit shows at once
#   env        xdit check: the library, the CUDA runtime and devices it finds
#   ops        xdit check --ops --device cuda: every operator against the CPU backend, f32 and bf16
#   comm       xdit check --comm inproc --device cuda: every collective between 4 in-process ranks that
#              share the GPU (device-to-device copies ordered by events between their streams); then, where
#              libnccl.so.2 is found (PyTorch's packages ship it; or XDIT_NCCL_LIB), the NCCL communicator
#              with one rank
#   meshes     xdit check --meshes --device cuda: every parallel method (≤ 8 ranks sharing the GPU) of the
#              tiny PixArt, SD3 and Flux against the single-rank run, each mesh twice, f32 then bf16
#   graph      xdit check --graph --device cuda: tiny PixArt, SD3 and Flux with every step from the third a
#              replay of the second, captured as a CUDA graph (--use_cuda_graph), against the eager run, bit
#              for bit, on one rank and two (CFG / data parallel), f32 then bf16; with the replayed steps' speed-up
#   sanitizer  the f32 op checks again under compute-sanitizer's memcheck (skipped where it is absent)
#   bench      the op cases timed on the GPU in bf16 (synchronised calls, median of 7)
#   torch      the same GEMM and attention shapes in PyTorch on the same card (skipped without PyTorch)
#   blocks     xdit bench --blocks: one PixArt-Σ, SD3-medium and FLUX.1-dev block at 1024 and 4096 image tokens
#              in bf16 (CUDA events), then bench/gpu/torch_blocks.py: the same blocks in PyTorch on the card
#              (SDPA), checked against the engine's outputs
#   latency    (not by default) xdit bench of PixArt-Σ (20 steps) and SD3-medium (28) at 1024², bf16, random
#              weights of the real size: text encoders, each step, VAE decode, TFLOP/s, peak memory
#   latency-graph  (not by default) the PixArt-Σ and SD3-medium latency runs again with --use_cuda_graph
#   latency-flux  (not by default) the same for FLUX.1-dev (12B; 34 GB of random weights on disk first)
# Logs and JSON go to $OUT (default artifacts/gpukit-results); the summary table prints last.
set -u
root=$(cd "$(dirname "$0")/../.." && pwd)
out=${OUT:-$root/artifacts/gpukit-results}
kit=$root/artifacts/gpukit
build=$root/build/gpu
mkdir -p "$out"
: > "$out/summary.tsv"
export XDIT_NATIVE_LIB=$build/libxdit_native.so
stages=("$@")
[ ${#stages[@]} -eq 0 ] && stages=(build env ops comm meshes graph sanitizer bench torch blocks)

# run_stage NAME SECONDS COMMAND...: logs to $OUT/NAME.log, shows its tail, records exit code and time.
run_stage() {
    local name=$1 limit=$2
    shift 2
    echo "== $name (limit ${limit} s): $*"
    local start=$SECONDS
    timeout --kill-after=10 "$limit" "$@" > "$out/$name.log" 2>&1
    local rc=$?
    tail -n 25 "$out/$name.log"
    local verdict
    verdict=$(grep -E "passed, [0-9]+ failed|achieved" "$out/$name.log" | tail -n 1)
    printf '%s\t%s\t%s\t%s\n' "$name" "$rc" "$((SECONDS - start))" "${verdict:-}" >> "$out/summary.tsv"
}

# The libnccl.so.2 that PyTorch's packages ship (nvidia/nccl/lib beside torch), or the system's.
nccl_library() {
    local path
    path=$(python3 - 2> /dev/null <<'PY'
import glob, os, torch
here = os.path.dirname(torch.__file__)
found = glob.glob(os.path.join(os.path.dirname(here), "nvidia", "nccl", "lib", "libnccl.so.2")) + glob.glob(os.path.join(here, "lib", "libnccl.so*"))
print(found[0] if found else "")
PY
    )
    [ -n "$path" ] || path=$(ldconfig -p 2> /dev/null | awk '/libnccl\.so\.2 / { print $NF; exit }')
    [ -n "$path" ] && echo "$path"
}

skip() { printf '%s\tskipped\t0\t%s\n' "$1" "$2" >> "$out/summary.tsv"; echo "== $1 skipped: $2"; }

for stage in "${stages[@]}"; do
    case $stage in
        build)
            run_stage build 570 bash -c "cmake -S '$root' -B '$build' -DCMAKE_BUILD_TYPE=Release -DXDIT_CUDA=ON \
                && cmake --build '$build' --parallel $(nproc)" ;;
        env)
            run_stage env 120 "$kit/xdit" check ;;
        ops)
            run_stage ops 540 "$kit/xdit" check --ops --device cuda:0 --dtype f32,bf16 --json "$out/ops.json" ;;
        comm)
            run_stage comm 120 "$kit/xdit" check --comm inproc --ranks 4 --device cuda:0
            export XDIT_NCCL_LIB=${XDIT_NCCL_LIB:-$(nccl_library)}
            if [ -n "$XDIT_NCCL_LIB" ]; then
                run_stage nccl 120 "$kit/xdit" check --comm nccl --device cuda:0
            else skip nccl "libnccl.so.2 not found (set XDIT_NCCL_LIB)"; fi ;;
        meshes)
            run_stage meshes 300 "$kit/xdit" check --meshes --device cuda:0 --dtype f32 --json "$out/meshes.json"
            run_stage meshes-bf16 240 "$kit/xdit" check --meshes --device cuda:0 --dtype bf16 --json "$out/meshes-bf16.json" ;;
        blocks)
            # One full-width block of each model at 1024 and 4096 image tokens, then the same blocks in PyTorch
            # on the same card. The cases (weights, inputs, output; GBs for Flux) stay outside $OUT.
            cases=$root/artifacts/block-cases
            rm -rf "$cases"
            run_stage blocks 400 "$kit/xdit" bench --blocks --device cuda:0 --dtype bf16 --tokens 1024,4096 \
                --write_cases "$cases" --json "$out/blocks.json"
            if python3 -c "import torch; assert torch.cuda.is_available()" 2> /dev/null; then
                run_stage torch-blocks 300 python3 "$root/bench/gpu/torch_blocks.py" "$cases" "$out/torch-blocks.json" bf16
            else skip torch-blocks "PyTorch with CUDA not found"; fi
            rm -rf "$cases" ;;
        latency)
            # Real-size models with random weights, bf16, 1024², the steps of their model cards (issue 12);
            # one warm-up run, then one measured run (the step times are the median over its steps).
            run_stage latency-pixart-sigma 540 "$kit/xdit" bench --arch pixart-sigma --random_weights --device cuda:0 --dtype bf16 \
                --height 1024 --width 1024 --num_inference_steps 20 --warmup 1 --runs 1 --json "$out/latency-pixart-sigma.json"
            run_stage latency-sd3-medium 540 "$kit/xdit" bench --arch sd3-medium --random_weights --device cuda:0 --dtype bf16 \
                --height 1024 --width 1024 --num_inference_steps 28 --warmup 1 --runs 1 --json "$out/latency-sd3-medium.json" ;;
        graph)
            run_stage graph 240 "$kit/xdit" check --graph --device cuda:0 --dtype f32 --json "$out/graph.json"
            run_stage graph-bf16 240 "$kit/xdit" check --graph --device cuda:0 --dtype bf16 --json "$out/graph-bf16.json" ;;
        latency-graph)
            run_stage latency-graph-pixart-sigma 540 "$kit/xdit" bench --arch pixart-sigma --random_weights --device cuda:0 --dtype bf16 \
                --height 1024 --width 1024 --num_inference_steps 20 --warmup 1 --runs 1 --use_cuda_graph --json "$out/latency-graph-pixart-sigma.json"
            run_stage latency-graph-sd3-medium 540 "$kit/xdit" bench --arch sd3-medium --random_weights --device cuda:0 --dtype bf16 \
                --height 1024 --width 1024 --num_inference_steps 28 --warmup 1 --runs 1 --use_cuda_graph --json "$out/latency-graph-sd3-medium.json" ;;
        latency-flux)
            run_stage latency-flux-dev 590 "$kit/xdit" bench --arch flux-dev --random_weights --device cuda:0 --dtype bf16 \
                --height 1024 --width 1024 --num_inference_steps 28 --warmup 1 --runs 1 --json "$out/latency-flux-dev.json" ;;
        sanitizer)
            if command -v compute-sanitizer > /dev/null; then
                run_stage sanitizer 570 compute-sanitizer --tool memcheck --error-exitcode 99 \
                    "$kit/xdit" check --ops --device cuda:0 --dtype f32 --json "$out/sanitizer.json"
            else skip sanitizer "compute-sanitizer not found"; fi ;;
        bench)
            run_stage bench 540 "$kit/xdit" check --ops --device cuda:0 --dtype bf16 --bench --json "$out/bench.json" ;;
        torch)
            if python3 -c "import torch; assert torch.cuda.is_available()" 2> /dev/null; then
                run_stage torch 300 python3 "$root/bench/gpu/torch_ops.py" "$out/torch.json"
            else skip torch "PyTorch with CUDA not found"; fi ;;
        *)
            echo "unknown stage '$stage' (stages: build env ops comm meshes graph sanitizer bench torch blocks latency latency-graph latency-flux)" >&2
            exit 2 ;;
    esac
done

echo
echo "| stage | exit | seconds | result |"
echo "|---|---:|---:|---|"
while IFS=$'\t' read -r name rc seconds verdict; do
    echo "| $name | $rc | $seconds | $verdict |"
done < "$out/summary.tsv"
