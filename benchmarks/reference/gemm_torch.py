"""cuBLAS SGEMM through PyTorch eager for the float32 products that `Compression.GpuBench gemm` times, same GPU.

Run on the GPU machine:  python3 benchmarks/reference/gemm_torch.py [repetitions]
TF32 is off (torch.backends.cuda.matmul.allow_tf32 = False, float32 matmul precision 'highest'): true float32
products, as our kernels compute. Shapes:
  lazy-update  C[4096x4096] -= A[4096x128] @ B[128x4096]  (GPTQ's lazy block update; C.sub_(A @ B) and addmm_ in place)
  square       C -= A @ B at 4096^3 and 8192^3
  xtx          X.T @ X for X of 2048 and 8192 rows x 4096 features (the Hessian; cuBLAS runs a full GEMM), and
               addmm_(M, X.T, X, beta=a, alpha=b) as the accumulator's M <- a.M + b.X^T.X
TFLOP/s = 2mnk / time (X^T X: 2 n^2 rows, the full matrix). CUDA events, median over batches of back-to-back calls
after warm-up. Prints RESULT torch-sgemm-<name>|<m>x<n>x<k>|<ms>|<TFLOP/s>|<note>.
"""
import sys
import torch

reps = int(sys.argv[1]) if len(sys.argv) > 1 else 10
dev = "cuda"
torch.backends.cuda.matmul.allow_tf32 = False
torch.backends.cudnn.allow_tf32 = False
torch.set_float32_matmul_precision("highest")
torch.manual_seed(0)


def timed(fn, batch):
    for _ in range(2):
        fn()
    torch.cuda.synchronize()
    times = []
    for _ in range(reps):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        for _ in range(batch):
            fn()
        end.record()
        end.synchronize()
        times.append(start.elapsed_time(end) / batch)
    times.sort()
    return times[len(times) // 2]


def report(name, shape, flops, ms, note):
    rate = flops / (ms * 1e-3) / 1e12
    print(f"{name:<34} {shape:<22} {ms:9.3f} ms {rate:6.1f} TFLOP/s  {note}")
    print(f"RESULT {name}|{shape}|{ms:.4f}|{rate:.2f}|{note}")


blas = getattr(torch.backends.cuda, "preferred_blas_library", lambda: "?")()
print(f"device: {torch.cuda.get_device_name()}; torch {torch.__version__}; BLAS {blas}; "
      f"allow_tf32={torch.backends.cuda.matmul.allow_tf32}; median of {reps}")

# Agreement with float64 on a small shape: TF32 would show up as ~1e-3 relative error, true float32 as ~1e-7.
a = torch.rand(150, 70, device=dev) * 2 - 1
b = torch.rand(70, 230, device=dev) * 2 - 1
err = ((a @ b).double() - a.double() @ b.double()).norm() / (a.double() @ b.double()).norm()
print(f"check float32 matmul vs float64: relative error {err.item():.2e} {'ok' if err.item() < 1e-5 else 'FAILED (TF32?)'}")

for name, m, n, k in [("lazy-update", 4096, 4096, 128), ("square", 4096, 4096, 4096), ("square", 8192, 8192, 8192)]:
    A = torch.rand(m, k, device=dev) * 2 - 1
    B = torch.rand(k, n, device=dev) * 2 - 1
    C = torch.zeros(m, n, device=dev)
    flops = 2.0 * m * n * k
    batch = 1 if flops > 1e11 else 5
    shape = f"{m}x{n}x{k}"
    report(f"torch-sgemm-{name}-sub", shape, flops, timed(lambda: C.sub_(A @ B), batch), "C.sub_(A @ B): product + a pass over C")
    report(f"torch-sgemm-{name}-addmm", shape, flops, timed(lambda: C.addmm_(A, B, alpha=-1.0), batch), "C.addmm_(A, B, alpha=-1): one GEMM with beta = 1")
    del A, B, C

for features, rows in [(4096, 2048), (4096, 8192)]:
    X = torch.rand(rows, features, device=dev) * 2 - 1
    M = torch.zeros(features, features, device=dev)
    flops = 2.0 * features * features * rows
    shape = f"{features}x{features}<-{rows}rows"
    report("torch-sgemm-xtx", shape, flops, timed(lambda: X.T @ X, 3), "X.T @ X, full-matrix GEMM")
    report("torch-sgemm-xtx-addmm", shape, flops, timed(lambda: M.addmm_(X.T, X, beta=0.5, alpha=0.5), 3),
           "M.addmm_(X.T, X): the accumulator's update")
    del X, M
