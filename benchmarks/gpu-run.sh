#!/usr/bin/env bash
# Publishes Compression.GpuBench self-contained for linux-x64 and packs it for the GPU machine (no .NET there).
#   bash benchmarks/gpu-run.sh            # here: builds .gpu/gpubench.tar.xz (about 30 MB, git-ignored)
# Then, on the GPU machine (device tool: carry .gpu/gpubench.tar.xz), from the repository root:
#   mkdir -p /tmp/gb && tar xJf .gpu/gpubench.tar.xz -C /tmp/gb && /tmp/gb/gpubench/Compression.GpuBench 8192 50 \
#     && python3 benchmarks/reference/quantize_torch.py 8192 50
set -euo pipefail
cd "$(dirname "$0")/.."
rm -rf .gpu/gpubench && mkdir -p .gpu
dotnet publish benchmarks/Compression.GpuBench -c Release -r linux-x64 --self-contained -o .gpu/gpubench -p:TreatWarningsAsErrors=false
tar cJf .gpu/gpubench.tar.xz -C .gpu gpubench
ls -la .gpu/gpubench.tar.xz
