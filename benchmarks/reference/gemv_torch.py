"""PyTorch reference for GpuBench's gemv mode: dense y = x @ w.T (torch.nn.functional.linear) on the same GPU and
shapes, the weight in bf16 (the usual decode-time baseline) and float32, plus torch's packed paths where they exist
(int4 weight-only _weight_int4pack_mm, FP8 _scaled_mm at batch 16) as extra lines.

Timing: CUDA events around 20 back-to-back calls, rotating among enough weight copies that they total more than 200 MB
(the H200's L2 is 60 MB), median of the repetitions; traffic counts the weight, x and y once per call.

    python3 benchmarks/reference/gemv_torch.py [repetitions]

Prints `RESULT torch-<kind>|<rows>x<cols> b<batch>|<ms>|<GB/s>|<note>` lines, and the device copy bandwidth measured
the same way (read + written bytes).
"""

import statistics
import sys

import torch

SHAPES = [(8192, 8192), (8192, 28672), (28672, 8192)]  # rows x columns = out x in
BATCHES = [1, 4, 16]
LAUNCHES = 20
ROTATION_BYTES = 200 << 20


def timed(repetitions, run, count):
    """Median over repetitions of (LAUNCHES calls of run(i)) / LAUNCHES, in ms; i rotates over count copies."""
    for i in range(3):
        run(i % count)
    torch.cuda.synchronize()
    times = []
    index = 0
    for _ in range(repetitions):
        start = torch.cuda.Event(enable_timing=True)
        end = torch.cuda.Event(enable_timing=True)
        start.record()
        for _ in range(LAUNCHES):
            run(index)
            index = (index + 1) % count
        end.record()
        end.synchronize()
        times.append(start.elapsed_time(end) / LAUNCHES)
    return statistics.median(times)


def copies_for(nbytes):
    return max(4, -(-ROTATION_BYTES // nbytes) + 1)


def report(kind, rows, columns, batch, ms, nbytes, note=""):
    bandwidth = nbytes / (ms * 1e-3) / 1e9
    print(f"RESULT torch-{kind}|{rows}x{columns} b{batch}|{ms:.4f}|{bandwidth:.0f}|{note}", flush=True)


def main():
    repetitions = int(sys.argv[1]) if len(sys.argv) > 1 else 30
    device = torch.device("cuda")
    print(f"device: {torch.cuda.get_device_name(device)}; torch {torch.__version__}", flush=True)

    floats = 64 << 20
    pairs = 4
    sources = [torch.randn(floats, device=device) for _ in range(pairs)]
    targets = [torch.empty_like(s) for s in sources]
    copy_ms = timed(repetitions, lambda i: targets[i].copy_(sources[i]), pairs)
    copy_bandwidth = 2 * 4 * floats / (copy_ms * 1e-3) / 1e9
    print(f"device-to-device copy {4 * floats >> 20} MiB x{pairs} rotating: {copy_ms:.4f} ms, {copy_bandwidth:.0f} GB/s (read + written)")
    print(f"RESULT torch-copy|{4 * floats >> 20}MiB|{copy_ms:.4f}|{copy_bandwidth:.0f}|read+written", flush=True)
    del sources, targets

    for rows, columns in SHAPES:
        for dtype, kind in ((torch.bfloat16, "bf16-linear"), (torch.float32, "fp32-linear")):
            size = torch.tensor([], dtype=dtype).element_size()
            count = copies_for(rows * columns * size)
            weights = [torch.randn(rows, columns, device=device, dtype=dtype) * 0.02 for _ in range(count)]
            for batch in BATCHES:
                x = torch.randn(batch, columns, device=device, dtype=dtype)
                ms = timed(repetitions, lambda i: torch.nn.functional.linear(x, weights[i]), count)
                nbytes = (rows * columns + batch * columns + batch * rows) * size
                report(kind, rows, columns, batch, ms, nbytes, f"{count} copies")
            del weights
            torch.cuda.empty_cache()

        # Optional packed paths: int4 weight-only (tinygemm layout, groups of 128, bf16 scales and zeros) and FP8.
        try:
            count = copies_for(rows * columns // 2)
            packed = []
            for _ in range(count):
                w = torch.randint(0, 16, (rows, columns // 2), dtype=torch.uint8, device=device)
                packed.append(torch.ops.aten._convert_weight_to_int4pack(w, 8))
            scales = torch.randn(columns // 128, rows, 2, device=device, dtype=torch.bfloat16)
            for batch in BATCHES:
                x = torch.randn(batch, columns, device=device, dtype=torch.bfloat16)
                ms = timed(repetitions, lambda i: torch.ops.aten._weight_int4pack_mm(x, packed[i], 128, scales), count)
                nbytes = rows * columns // 2 + scales.numel() * 2 + (batch * columns + batch * rows) * 2
                report("int4pack-mm", rows, columns, batch, ms, nbytes, "tinygemm g128")
            del packed
        except Exception as e:  # noqa: BLE001 - an optional path; say why it is missing
            print(f"int4pack-mm {rows}x{columns}: unavailable ({type(e).__name__}: {str(e).splitlines()[0][:120]})", flush=True)

        try:
            count = copies_for(rows * columns)
            weights = [torch.randn(rows, columns, device=device).to(torch.float8_e4m3fn) for _ in range(count)]
            one = torch.tensor(1.0, device=device)
            batch = 16
            x = torch.randn(batch, columns, device=device).to(torch.float8_e4m3fn)
            ms = timed(repetitions, lambda i: torch._scaled_mm(x, weights[i].t(), scale_a=one, scale_b=one, out_dtype=torch.bfloat16), count)
            nbytes = rows * columns + batch * columns + batch * rows * 2
            report("fp8-scaled-mm", rows, columns, batch, ms, nbytes, "fp8 x and w, per-tensor scales")
            del weights
        except Exception as e:  # noqa: BLE001
            print(f"fp8 _scaled_mm {rows}x{columns}: unavailable ({type(e).__name__}: {str(e).splitlines()[0][:120]})", flush=True)
        torch.cuda.empty_cache()


if __name__ == "__main__":
    main()
