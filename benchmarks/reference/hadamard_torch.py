"""PyTorch eager doing the block-wise Hadamard rotation that `Compression.GpuBench hadamard` times, on the same GPU.

Run on the GPU machine:  python3 benchmarks/reference/hadamard_torch.py [size] [repetitions]
Each configuration transforms every block of `block` consecutive floats of a size x size float32 weight (rows of
W become rows of W.R^T, R = H_b.D/sqrt(b), D the optional random +-1 diagonal), two ways:
  matmul:    reshape to (-1, block) and multiply by the normalised Sylvester-Hadamard matrix (float32, TF32 off);
             with signs, the weight is first multiplied by D (broadcast over rows), as a real pipeline would;
  butterfly: log2(block) eager stages of (a + b, a - b) on a (-1, block/2h, 2, h) view, then the scale: the same
             expression order as the .NET kernels (one eager kernel or two per stage, so log2(block) passes).
Traffic counted as in the .NET benchmark: the weight read once and written once (2 x 4 x size^2 bytes), whatever
the eager kernels really move. Times with CUDA events: median over batches of 10 back-to-back runs, after warm-up,
beside a device-to-device copy of the weight (the ceiling). The weight (268 MB at 8192) is over four times the L2.
Prints RESULT torch-hadamard-<block>[-signed]-<matmul|butterfly>|<size>x<size>|<ms>|<GB/s>|<% of copy>.
"""
import sys
import torch

size = int(sys.argv[1]) if len(sys.argv) > 1 else 8192
reps = int(sys.argv[2]) if len(sys.argv) > 2 else 20
batch = 10
dev = "cuda"
torch.backends.cuda.matmul.allow_tf32 = False
torch.backends.cudnn.allow_tf32 = False
torch.set_float32_matmul_precision("highest")
torch.manual_seed(7)
w = (torch.randn(size, size, device=dev) * 0.02).float()
nbytes = 2 * 4 * w.numel()


def hadamard_matrix(n):
    h = torch.ones(1, 1, dtype=torch.float64)
    while h.shape[0] < n:
        h = torch.cat([torch.cat([h, h], 1), torch.cat([h, -h], 1)], 0)
    return h


def signs(columns, seed):
    # The library's diagonal: SplitMix64 of seed + (j + 1) * golden ratio, top bit. Python ints, wrapped to 64 bits.
    mask = (1 << 64) - 1
    out = []
    for j in range(columns):
        z = (seed + (j + 1) * 0x9E3779B97F4A7C15) & mask
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & mask
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & mask
        z ^= z >> 31
        out.append(-1.0 if z >> 63 else 1.0)
    return torch.tensor(out, device=dev, dtype=torch.float32)


def matmul_rotation(x, block, h, d):
    if d is not None:
        x = x * d
    return (x.view(-1, block) @ h).view_as(x)


def butterfly_rotation(x, block, scale, d):
    y = x * d if d is not None else x.clone()
    hstride = 1
    while hstride < block:
        v = y.view(-1, block // (2 * hstride), 2, hstride)
        a, b = v[:, :, 0, :], v[:, :, 1, :]
        y = torch.stack((a + b, a - b), dim=2).view_as(x)
        hstride *= 2
    return y * scale


def timed(fn):
    for _ in range(3):
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


print(f"device: {torch.cuda.get_device_name()}; torch {torch.__version__}; Hadamard rotation of {size}x{size} float32; "
      f"median of {reps} batches of {batch}")
copy = torch.empty_like(w)
copy_ms = timed(lambda: copy.copy_(w))
copy_bw = nbytes / (copy_ms * 1e-3) / 1e9
print(f"device-to-device copy {copy_ms:.4f} ms {copy_bw:.0f} GB/s (read + written)")
print(f"RESULT torch-copy|{size}x{size}|{copy_ms:.4f}|{copy_bw:.0f}|ceiling")

for block, seed in [(16, None), (16, 7), (32, None), (32, 7), (64, None), (128, None), (128, 7), (4096, 11)]:
    if size % block:
        continue
    scale = float(torch.tensor(1.0 / block ** 0.5, dtype=torch.float32))
    h = (hadamard_matrix(block) / block ** 0.5).float().to(dev)
    d = signs(size, seed) if seed is not None else None
    # The butterfly has the library's expression order; the matmul sums in cuBLAS's order, so report how far apart.
    ref = butterfly_rotation(w, block, scale, d)
    mm = matmul_rotation(w, block, h, d)
    dev_max = (mm - ref).abs().max().item()
    name = f"torch-hadamard-{block}{'-signed' if seed is not None else ''}"
    for kind, fn in (("matmul", lambda: matmul_rotation(w, block, h, d)), ("butterfly", lambda: butterfly_rotation(w, block, scale, d))):
        ms = timed(fn)
        bw = nbytes / (ms * 1e-3) / 1e9
        print(f"{name + '-' + kind:<34} {ms:8.4f} ms {bw:7.0f} GB/s {100 * bw / copy_bw:6.1f}% of copy (matmul vs butterfly max |diff| {dev_max:.2e})")
        print(f"RESULT {name}-{kind}|{size}x{size}|{ms:.4f}|{bw:.0f}|{100 * bw / copy_bw:.1f}% of copy")
