"""Turns the RESULT lines of one benchmarks/gpu-bench-all.sh run into the markdown tables of benchmarks/README.md.

    python3 benchmarks/reference/gpu_table.py <all.log>

A RESULT line is `RESULT <kernel>|<shape>|<ms>|<rate>|<note>`; ours come from Compression.GpuBench, PyTorch's carry
a `torch-` prefix. Every ratio is between two figures of the same log, hence of one device session: "of copy" = our
bandwidth / the device-to-device copy's (PyTorch's 2 GiB copy, bytes read + written); "of cuBLAS" = our rate / cuBLAS
SGEMM's on the same shape in the same run; "vs PyTorch" = PyTorch's time / ours (above 1: ours is faster).
"""
import re
import sys


def parse(path):
    results, order = {}, []
    for line in open(path, encoding="utf-8", errors="replace"):
        if not line.startswith("RESULT "):
            continue
        parts = (line[len("RESULT "):].rstrip("\n").split("|") + [""] * 5)[:5]
        kernel, shape, ms, rate, note = (p.strip() for p in parts)
        try:
            ms = float(ms)
        except ValueError:
            continue
        if (kernel, shape) not in results:
            order.append((kernel, shape))
        results[(kernel, shape)] = (ms, rate, note)
    return results, order


def number(text):
    m = re.match(r"\s*([0-9.eE+-]+)", text or "")
    return float(m.group(1)) if m else None


def fastest(results, names, shape):
    found = [(results[(n, shape)], n) for n in names if (n, shape) in results]
    return min(found, key=lambda f: f[0][0]) if found else None


def table(header, rows):
    if not rows:
        return
    print("| " + " | ".join(header) + " |")
    print("| " + " | ".join("---" for _ in header) + " |")
    for row in rows:
        print("| " + " | ".join(row) + " |")
    print()


def main():
    results, order = parse(sys.argv[1])
    copy = next((number(v[1]) for (k, _), v in results.items() if k == "torch-copy"), None)
    print("Ceilings in this session: " + ", ".join(
        f"{k[len('torch-'):]} {s}: {v[0]:.3f} ms, {v[1]}" for (k, s), v in results.items()
        if k in ("torch-copy", "torch-sgemm", "torch-gemm-bf16")) + "\n")

    def ours(prefix):
        return [(k, s) for (k, s) in order if k.startswith(prefix)]

    def vs(tms, ms):
        return f"{tms / ms:.2f}×" if ms > 0 else ""

    # Bandwidth-bound kernels: quantize + pack, dequantize, Hadamard, fused dequantize-GEMV.
    rows = []
    for kernel, shape in ours("quantize-") + ours("dequantize-") + ours("hadamard-"):
        ms, rate, note = results[(kernel, shape)]
        gbs = number(rate)
        names = ["torch-" + kernel] + ["torch-" + kernel + s for s in ("-butterfly", "-matmul")]
        t = fastest(results, names, shape)
        rows.append([kernel, shape, f"{ms:.3f} ms", f"{gbs:.0f} GB/s" if gbs else "",
                     f"{100 * gbs / copy:.0f}%" if gbs and copy else "",
                     f"{t[0][0]:.3f} ms ({t[1][len('torch-'):]})" if t else "", vs(t[0][0], ms) if t else ""])
    table(["kernel", "shape", "ours", "traffic", "of copy", "PyTorch eager", "vs PyTorch"], rows)

    rows = []
    for kernel, shape in ours("gemv-"):
        ms, rate, note = results[(kernel, shape)]
        gbs = number(rate)
        t = fastest(results, ["torch-bf16-linear"], shape)
        rows.append([kernel[len("gemv-"):], shape, f"{ms:.4f} ms", f"{gbs:.0f} GB/s" if gbs else "",
                     f"{100 * gbs / copy:.0f}%" if gbs and copy else "",
                     f"{t[0][0]:.4f} ms" if t else "", vs(t[0][0], ms) if t else "", note])
    table(["fused dequantize-GEMV", "weight, batch", "ours", "traffic", "of copy", "PyTorch bf16 linear", "vs PyTorch", "note"], rows)

    # Float32 products against cuBLAS SGEMM (through ILGPU's bindings, same run) and PyTorch.
    rows = []
    for kernel, shape in ours("gemm-") + ours("syrk-"):
        if "cublas" in kernel:
            continue
        ms, rate, note = results[(kernel, shape)]
        tf = number(rate)
        base = kernel[:-len("-multiply-subtract")] if kernel.endswith("-multiply-subtract") else None
        cublas = results.get((base + "-cublas-sgemm", shape)) if base else results.get(("syrk-cublasgemm", shape))
        torch = fastest(results, [f"torch-sgemm-{base[len('gemm-'):]}-addmm", f"torch-sgemm-{base[len('gemm-'):]}-sub"] if base
                        else ["torch-sgemm-xtx", "torch-sgemm-xtx-addmm"], shape)
        rows.append([kernel, shape, f"{ms:.3f} ms", f"{tf:.1f} TFLOP/s" if tf else "",
                     f"{100 * tf / number(cublas[1]):.0f}%" if cublas and tf else "",
                     f"{torch[0][0]:.3f} ms" if torch else "", vs(torch[0][0], ms) if torch else "", note])
    table(["float32 product", "shape", "ours", "rate", "of cuBLAS (same run)", "PyTorch (cuBLAS)", "vs PyTorch", "note"], rows)

    # Algorithms end to end.
    rows = []
    for kernel, shape in ours("svd-") + ours("gptq-gpu-"):
        ms, rate, note = results[(kernel, shape)]
        names = ["torch-" + kernel, "torch-gptq-cuda-" + kernel[len("gptq-gpu-"):]]
        t = fastest(results, names, shape)
        rows.append([kernel, shape, f"{ms:.3f} ms", f"{t[0][0]:.3f} ms" if t else "", vs(t[0][0], ms) if t else "",
                     note + (f"; PyTorch: {t[0][2]}" if t and t[0][2] else "")])
    table(["algorithm", "shape", "ours", "PyTorch / reference", "vs PyTorch", "note"], rows)


if __name__ == "__main__":
    main()
