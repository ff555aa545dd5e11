"""Turns the RESULT lines of one benchmarks/gpu-bench-all.sh run into the markdown tables of benchmarks/README.md.

    python3 benchmarks/reference/gpu_table.py <all.log>

A RESULT line is `RESULT <kernel>|<shape>|<ms>|<rate with unit>|<note>`; ours come from Compression.GpuBench, PyTorch's
carry a `torch-` prefix. Every ratio below is between two figures of the same log, hence of one device session:
share of the ceiling = our rate / the ceiling's rate (the device copy for bandwidth-bound kernels, cuBLAS SGEMM for
float32 products); "vs PyTorch" = PyTorch's time / ours (above 1: ours is faster).
"""
import re
import sys


def parse(path):
    results = {}
    order = []
    for line in open(path, encoding="utf-8", errors="replace"):
        if not line.startswith("RESULT "):
            continue
        parts = line[len("RESULT "):].rstrip("\n").split("|")
        parts += [""] * (5 - len(parts))
        kernel, shape, ms, rate, note = (p.strip() for p in parts[:5])
        try:
            ms = float(ms)
        except ValueError:
            continue
        key = (kernel, shape)
        if key not in results:
            order.append(key)
        results[key] = (ms, rate, note)
    return results, order


def number(rate):
    m = re.match(r"\s*([0-9.eE+-]+)", rate or "")
    return float(m.group(1)) if m else None


def torch_counterpart(kernel, shape, results):
    """PyTorch's line for the same work: the same name with a torch- prefix, else the family's stand-in."""
    candidates = ["torch-" + kernel]
    if kernel.startswith("gemv-"):
        candidates.append("torch-bf16-linear")  # the dense bf16 product a quantized GEMV replaces
    if kernel.startswith("gptq-gpu-"):
        candidates.append("torch-gptq-cuda-" + kernel[len("gptq-gpu-"):])
    if kernel.startswith("hadamard-"):
        candidates += ["torch-" + kernel + suffix for suffix in ("-butterfly", "-matmul")]
    found = [(results[(c, shape)], c) for c in candidates if (c, shape) in results]
    if not found:
        return None
    return min(found, key=lambda f: f[0][0])  # the fastest PyTorch route


def main():
    results, order = parse(sys.argv[1])
    copy = next((number(v[1]) for (k, _), v in results.items() if k == "torch-copy"), None)
    sgemm = {s: number(v[1]) for (k, s), v in results.items() if k.startswith("torch-sgemm")}
    best_sgemm = max(sgemm.values()) if sgemm else None
    print(f"Ceilings (same session): device copy {copy:.0f} GB/s; " if copy else "Ceilings: no device copy line; ", end="")
    print(", ".join(f"{k} {s} {v[0]:.3f} ms ({v[1]})" for (k, s), v in results.items() if k.startswith("torch-sgemm") or k.startswith("torch-gemm")))
    print()
    print("| kernel | shape | ours | rate | share of ceiling | PyTorch | vs PyTorch | note |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for kernel, shape in order:
        if kernel.startswith("torch-"):
            continue
        ms, rate, note = results[(kernel, shape)]
        value = number(rate)
        share = ""
        if value is not None and "GB/s" in rate and copy:
            share = f"{100 * value / copy:.0f}% of copy"
        elif value is not None and "TFLOP/s" in rate and best_sgemm:
            share = f"{100 * value / best_sgemm:.0f}% of cuBLAS SGEMM"
        torch = torch_counterpart(kernel, shape, results)
        torch_cell = ratio = ""
        if torch:
            (tms, trate, _), tname = torch
            torch_cell = f"{tms:.3f} ms ({tname[len('torch-'):]})"
            ratio = f"{tms / ms:.2f}×" if ms > 0 else ""
        print(f"| {kernel} | {shape} | {ms:.3f} ms | {rate} | {share} | {torch_cell} | {ratio} | {note} |")


if __name__ == "__main__":
    main()
