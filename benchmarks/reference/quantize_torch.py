"""PyTorch eager doing the same quantize + pack work as Compression.GpuBench, on the same GPU, same traffic formula.

Run on the GPU machine:  python3 benchmarks/reference/quantize_torch.py [size] [repetitions]
Each scheme: read the float32 weight, write packed codes and float32 scales (as the .NET kernels do).
"""
import sys
import torch

size = int(sys.argv[1]) if len(sys.argv) > 1 else 8192
reps = int(sys.argv[2]) if len(sys.argv) > 2 else 50
dev = "cuda"
torch.manual_seed(7)
w = (torch.randn(size, size, device=dev) * 0.02).float()

# E2M1 magnitudes and the midpoints between them (round half to even: ties go to the even code).
E2M1 = torch.tensor([0.0, 0.5, 1.0, 1.5, 2.0, 3.0, 4.0, 6.0], device=dev)
MIDS = torch.tensor([0.25, 0.75, 1.25, 1.75, 2.5, 3.5, 5.0], device=dev)


def e2m1_codes(y):
    a = y.abs()
    # right=False puts an exact midpoint in the lower bucket; move ties with an odd lower code up (RNE).
    idx = torch.bucketize(a, MIDS)
    tie = torch.isin(a, MIDS) & (idx % 2 == 1)
    idx = torch.clamp(idx + tie.to(idx.dtype), max=7)
    return (idx | (y < 0).to(idx.dtype) * 8).to(torch.uint8)


def pack4(codes):
    c = codes.view(codes.shape[0], -1, 2)
    return c[..., 0] | (c[..., 1] << 4)


def int8_per_channel(w):
    s = w.abs().amax(dim=1, keepdim=True) / 127
    q = torch.clamp(torch.round(w / s), -127, 127).to(torch.int8)
    return q, s


def int4_group128(w):
    g = w.view(size, -1, 128)
    s = g.abs().amax(dim=2, keepdim=True) / 7
    q = (torch.clamp(torch.round(g / s), -7, 7) + 8).to(torch.uint8).view(size, -1)
    return pack4(q), s


def fp8_per_channel(w):
    s = w.abs().amax(dim=1, keepdim=True) / 448
    return (w / s).to(torch.float8_e4m3fn), s


def mx_scale(g, emax):
    amax = g.abs().amax(dim=2, keepdim=True)
    e = torch.clamp(torch.floor(torch.log2(amax)) - emax, -127, 127)
    return torch.exp2(e)


def mxfp8(w):
    g = w.view(size, -1, 32)
    x = mx_scale(g, 8)
    return torch.clamp(g / x, -448, 448).to(torch.float8_e4m3fn), x


def mxfp4(w):
    g = w.view(size, -1, 32)
    x = mx_scale(g, 2)
    return pack4(e2m1_codes(g / x).view(size, -1)), x


def nvfp4(w):
    gs = w.abs().amax() / (448 * 6)
    g = w.view(size, -1, 16)
    sb = (g.abs().amax(dim=2, keepdim=True) / (6 * gs)).to(torch.float8_e4m3fn).float()
    return pack4(e2m1_codes(g / (sb * gs)).view(size, -1)), sb


def median_ms(fn):
    for _ in range(3):
        fn()
    torch.cuda.synchronize()
    times = []
    for _ in range(reps):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        fn()
        end.record()
        end.synchronize()
        times.append(start.elapsed_time(end))
    times.sort()
    return times[len(times) // 2]


n = size * size
dst = torch.empty_like(w)
copy_ms = median_ms(lambda: dst.copy_(w))
copy_bw = 8 * n / (copy_ms * 1e-3) / 1e9
print(f"device: {torch.cuda.get_device_name()} torch {torch.__version__}; weight {size}x{size} float32; median of {reps}")
print(f"{'device-to-device copy':<22} {copy_ms:8.3f} ms {copy_bw:8.0f} GB/s (read + written)")
for name, fn, code_bytes, groups in [
    ("int8 per-channel", int8_per_channel, n, size),
    ("int4 group-128", int4_group128, n // 2, n // 128),
    ("fp8-e4m3 per-channel", fp8_per_channel, n, size),
    ("mxfp8-e4m3", mxfp8, n, n // 32),
    ("mxfp4", mxfp4, n // 2, n // 32),
    ("nvfp4", nvfp4, n // 2, n // 16),
]:
    ms = median_ms(lambda: fn(w))
    bw = (4 * n + code_bytes + 4 * groups) / (ms * 1e-3) / 1e9
    print(f"{name:<22} {ms:8.3f} ms {bw:7.0f} GB/s {100 * bw / copy_bw:7.1f}%")
