"""PyTorch eager doing the same quantize + pack and dequantize work as Compression.GpuBench, on the same GPU, with the
same traffic formula (bytes read + written, the weight counted once).

Run on the GPU machine:  python3 benchmarks/reference/quantize_torch.py [size] [repetitions]
Quantize: read the float32 or BF16 weight, write packed codes and float32 scales (as the .NET kernels do).
Dequantize: read packed codes and scales, write float32 or BF16 values (computed in float32, then rounded to BF16).
Plain torch ops only (no custom kernels, no torch.compile): that is what the issue compares against. The dequantize
inputs rotate among copies holding 200 MB or more together, as in GpuBench, so they are not served from the L2.
"""
import itertools
import sys

import torch

size = int(sys.argv[1]) if len(sys.argv) > 1 else 8192
reps = int(sys.argv[2]) if len(sys.argv) > 2 else 50
dev = "cuda"
torch.manual_seed(7)
w32 = (torch.randn(size, size, device=dev) * 0.02).float()
w16 = w32.to(torch.bfloat16)

# E2M1 magnitudes and the midpoints between them (round half to even: ties go to the even code).
E2M1 = torch.tensor([0.0, 0.5, 1.0, 1.5, 2.0, 3.0, 4.0, 6.0], device=dev)
E2M1_SIGNED = torch.cat([E2M1, -E2M1])
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


def unpack4(packed):
    return torch.stack([packed & 0xF, packed >> 4], dim=-1).view(packed.shape[0], -1)


# Quantize: reductions (exact in BF16) are widened to float32 before the scale arithmetic; w / s promotes to float32.
def int8_per_channel(w):
    s = w.abs().amax(dim=1, keepdim=True).float() / 127
    q = torch.clamp(torch.round(w / s), -127, 127).to(torch.int8)
    return q, s


def int4_group128(w):
    g = w.view(size, -1, 128)
    s = g.abs().amax(dim=2, keepdim=True).float() / 7
    q = (torch.clamp(torch.round(g / s), -7, 7) + 8).to(torch.uint8).view(size, -1)
    return pack4(q), s


def fp8_per_channel(w):
    s = w.abs().amax(dim=1, keepdim=True).float() / 448
    return (w / s).to(torch.float8_e4m3fn), s


def mx_scale(g, emax):
    amax = g.abs().amax(dim=2, keepdim=True).float()
    e = torch.clamp(torch.floor(torch.log2(amax)) - emax, -127, 127)
    return torch.exp2(e)


def mxfp8(w):
    g = w.view(size, -1, 32)
    x = mx_scale(g, 8)
    return torch.clamp(g / x, -448, 448).to(torch.float8_e4m3fn).view(size, -1), x


def mxfp4(w):
    g = w.view(size, -1, 32)
    x = mx_scale(g, 2)
    return pack4(e2m1_codes(g / x).view(size, -1)), x


def nvfp4(w):
    gs = w.abs().amax().float() / (448 * 6)
    g = w.view(size, -1, 16)
    sb = (g.abs().amax(dim=2, keepdim=True).float() / (6 * gs)).to(torch.float8_e4m3fn).float()
    return (pack4(e2m1_codes(g / (sb * gs)).view(size, -1)), gs), sb


# Dequantize to float32: codes → values in float32, times the scale.
def deq_int8_per_channel(q, s):
    return q.float() * s


def deq_int4_group128(p, s):
    return ((unpack4(p).float() - 8).view(size, -1, 128) * s).view(size, size)


def deq_fp8_per_channel(q, s):
    return q.float() * s


def deq_mxfp8(q, x):
    return (q.float().view(size, -1, 32) * x).view(size, size)


def deq_mxfp4(p, x):
    return (E2M1_SIGNED[unpack4(p).long()].view(size, -1, 32) * x).view(size, size)


def deq_nvfp4(pg, sb):
    p, gs = pg
    return (E2M1_SIGNED[unpack4(p).long()].view(size, -1, 16) * (sb * gs)).view(size, size)


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


def report(work, name, slug, dtype, ms, traffic, copy_bw):
    bw = traffic / (ms * 1e-3) / 1e9
    pct = 100 * bw / copy_bw
    print(f"{name:<22} {work + ' ' + dtype:<16} {ms:8.3f} ms {bw:7.0f} GB/s {pct:7.1f}%")
    print(f"RESULT torch-{work}-{slug}-{dtype}|{size}x{size}|{ms:.4f}|{bw:.0f}|{pct:.1f}% of copy")


def tensor_bytes(t):
    return sum(tensor_bytes(x) for x in t) if isinstance(t, tuple) else t.numel() * t.element_size()


n = size * size
dst = torch.empty_like(w32)
copy_ms = median_ms(lambda: dst.copy_(w32))
copy_bw = 8 * n / (copy_ms * 1e-3) / 1e9
print(f"device: {torch.cuda.get_device_name()} torch {torch.__version__}; weight {size}x{size}; median of {reps}")
print(f"{'device-to-device copy':<22} {copy_ms:8.3f} ms {copy_bw:8.0f} GB/s (read + written)")
print(f"RESULT torch-copy-f32|{size}x{size}|{copy_ms:.4f}|{copy_bw:.0f}|ceiling (read + written)")
for name, slug, fn, deq, code_bytes, groups in [
    ("int8 per-channel", "int8-per-channel", int8_per_channel, deq_int8_per_channel, n, size),
    ("int4 group-128", "int4-g128", int4_group128, deq_int4_group128, n // 2, n // 128),
    ("fp8-e4m3 per-channel", "fp8-e4m3-per-channel", fp8_per_channel, deq_fp8_per_channel, n, size),
    ("mxfp8-e4m3", "mxfp8-e4m3", mxfp8, deq_mxfp8, n, n // 32),
    ("mxfp4", "mxfp4", mxfp4, deq_mxfp4, n // 2, n // 32),
    ("nvfp4", "nvfp4", nvfp4, deq_nvfp4, n // 2, n // 16),
]:
    packed_and_scales = code_bytes + 4 * groups
    for dtype, w, weight_bytes in [("f32", w32, 4 * n), ("bf16", w16, 2 * n)]:
        ms = median_ms(lambda: fn(w))
        report("quantize", name, slug, dtype, ms, weight_bytes + packed_and_scales, copy_bw)

    codes, scales = fn(w32)
    copies = max(1, min(16, (200 << 20) // (tensor_bytes(codes) + tensor_bytes(scales)) + 1))
    inputs = [(codes.clone() if not isinstance(codes, tuple) else tuple(c.clone() for c in codes), scales.clone()) for _ in range(copies)]
    for dtype, out_bytes in [("f32", 4 * n), ("bf16", 2 * n)]:
        rotation = itertools.cycle(inputs)
        if dtype == "f32":
            step = lambda: deq(*next(rotation))
        else:
            step = lambda: deq(*next(rotation)).to(torch.bfloat16)
        ms = median_ms(step)
        report("dequantize", name, slug, dtype, ms, packed_and_scales + out_bytes, copy_bw)
