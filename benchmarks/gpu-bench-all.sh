#!/usr/bin/env bash
# Every GPU benchmark beside its PyTorch counterpart, in one device session, then the results table.
# Here: `bash benchmarks/gpu-run.sh` (builds .gpu/gpubench.tar.xz) and a checkout of https://github.com/IST-DASLab/gptq
# unpacked into .gpu/gptq (not vendored: the reference GPTQ is only run, never copied). On the GPU machine, from the
# repository root, with .gpu carried:
#   bash benchmarks/gpu-bench-all.sh [results folder]        (default: $OUT, else gpu-results)
# Writes <folder>/all.log (every program's output, in order) and <folder>/table.md (benchmarks/reference/gpu_table.py).
# A failing step (a MISMATCH makes GpuBench exit 1) is reported and the others still run; the exit code is 1 then.
set -uo pipefail
cd "$(dirname "$0")/.."
out=${1:-${OUT:-gpu-results}}
ref=${REF:-benchmarks/reference}
reps=${REPS:-50}
mkdir -p "$out" /tmp/gb /tmp/gb-data
[ -x /tmp/gb/gpubench/Compression.GpuBench ] || tar xJf .gpu/gpubench.tar.xz -C /tmp/gb
bench=/tmp/gb/gpubench/Compression.GpuBench
export PYTHONUNBUFFERED=1 DOTNET_gcServer=0
# ILGPU.Algorithms 1.5.3 binds libcublas.so.12 (or .11, .10); CUDA 13 ships libcublas.so.13 with the same v2 entry
# points. Where only .13 exists (PyTorch's nvidia-cublas wheel), a link named .12 lets our cuBLAS route load it.
if ! ldconfig -p 2>/dev/null | grep -q 'libcublas.so.12'; then
    cublas=$(find $(python3 -c 'import site; print(" ".join(site.getsitepackages()))' 2>/dev/null) /usr/local/cuda*/lib64 \
        -name 'libcublas.so.13*' 2>/dev/null | head -1)
    if [ -n "$cublas" ]; then
        mkdir -p /tmp/gb-cublas && ln -sf "$cublas" /tmp/gb-cublas/libcublas.so.12
        for lt in "$(dirname "$cublas")"/libcublasLt.so.13*; do [ -e "$lt" ] && ln -sf "$lt" /tmp/gb-cublas/libcublasLt.so.13; done
        export LD_LIBRARY_PATH="/tmp/gb-cublas:$(dirname "$cublas")${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
        echo "cuBLAS for ILGPU: $cublas as libcublas.so.12"
    fi
fi
log="$out/all.log"
: > "$log"
status=0
step() {
    local name=$1; shift
    echo "== $name: $*" | tee -a "$log"
    local start=$SECONDS
    if ! "$@" 2>&1 | tee -a "$log"; then echo "FAILED: $name" | tee -a "$log"; status=1; fi
    echo "== $name took $((SECONDS - start)) s" | tee -a "$log"
}
has() { [[ " ${ONLY:-all} " == *" all "* || " ${ONLY:-} " == *" $1 "* ]]; }

nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm,clocks.max.mem --format=csv 2>&1 | tee -a "$log"
has ceilings && step ceilings python3 "$ref/ceilings_torch.py" "$reps"
has quantize && step quantize "$bench" 8192 "$reps"
has quantize && step quantize-torch python3 "$ref/quantize_torch.py" 8192 "$reps"
has gemv && step gemv "$bench" gemv "$reps"
has gemv && step gemv-torch python3 "$ref/gemv_torch.py" "$reps"
has hadamard && step hadamard "$bench" hadamard 8192 20
has hadamard && step hadamard-torch python3 "$ref/hadamard_torch.py" 8192 20
has gemm && step gemm "$bench" gemm 20
has gemm && step gemm-torch python3 "$ref/gemm_torch.py" 20
has svd && step svd "$bench" svd /tmp/gb-data 4096 256 5
has svd && step svd-torch python3 "$ref/svd_torch.py" /tmp/gb-data/svd-4096.safetensors 256 5
has gptq && step gptq "$bench" gptq /tmp/gb-data 0 1024,4096 gpu
has gptq && step gptq-torch python3 "$ref/gptq_reference.py" .gpu/gptq cuda /tmp/gb-data/gptq-1024-0.safetensors /tmp/gb-data/gptq-4096-0.safetensors
python3 "$ref/gpu_table.py" "$log" > "$out/table.md" 2>&1 || status=1
cat "$out/table.md"
exit $status
