"""The ceilings every GPU figure of benchmarks/README.md is compared with, measured in the same device session:

- the device-to-device copy bandwidth (a 2 GiB float32 buffer copied into another; bytes read + written), the
  memory roof for the bandwidth-bound kernels;
- cuBLAS SGEMM (float32, TF32 off, as the float32 kernels it is compared with), square 4096 and 8192, and the GPTQ
  lazy-update shape 4096x128 @ 128x4096; and cuBLAS bf16 GEMM 8192^3 for scale.

Run on the GPU machine:  python3 benchmarks/reference/ceilings_torch.py [repetitions]
Prints `RESULT torch-<name>|<shape>|<ms>|<rate>|<note>` lines (medians of CUDA-event timings after warm-up).
"""
import sys

import torch

reps = int(sys.argv[1]) if len(sys.argv) > 1 else 50
torch.backends.cuda.matmul.allow_tf32 = False
torch.backends.cudnn.allow_tf32 = False
dev = "cuda"
print(f"device: {torch.cuda.get_device_name()}; torch {torch.__version__}; CUDA {torch.version.cuda}")


def median_ms(fn, repetitions, warm_ups=3):
    for _ in range(warm_ups):
        fn()
    torch.cuda.synchronize()
    times = []
    for _ in range(repetitions):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        fn()
        end.record()
        end.synchronize()
        times.append(start.elapsed_time(end))
    times.sort()
    return times[len(times) // 2]


n = 1 << 29  # 2 GiB of float32: far beyond the 60 MB L2
src = torch.randn(n, device=dev)
dst = torch.empty_like(src)
ms = median_ms(lambda: dst.copy_(src), reps)
print(f"RESULT torch-copy|2 GiB|{ms:.3f}|{2 * 4 * n / ms / 1e6:.0f} GB/s|read + written")
del src, dst

for (m, k, nn, name) in [(4096, 4096, 4096, "sgemm"), (8192, 8192, 8192, "sgemm"), (4096, 128, 4096, "sgemm-gptq-update")]:
    a = torch.randn(m, k, device=dev)
    b = torch.randn(k, nn, device=dev)
    c = torch.randn(m, nn, device=dev)
    if name == "sgemm-gptq-update":
        fn = lambda: c.sub_(a @ b)
    else:
        fn = lambda: torch.mm(a, b, out=c)
    ms = median_ms(fn, reps if m < 8192 else max(5, reps // 5))
    print(f"RESULT torch-{name}|{m}x{k}x{nn}|{ms:.3f}|{2 * m * k * nn / ms / 1e9:.2f} TFLOP/s|cuBLAS float32, TF32 off")

for (m, k, nn) in [(8192, 8192, 8192)]:
    a = torch.randn(m, k, device=dev, dtype=torch.bfloat16)
    b = torch.randn(k, nn, device=dev, dtype=torch.bfloat16)
    ms = median_ms(lambda: a @ b, max(5, reps // 5))
    print(f"RESULT torch-gemm-bf16|{m}x{k}x{nn}|{ms:.3f}|{2 * m * k * nn / ms / 1e9:.0f} TFLOP/s|cuBLAS bf16")
