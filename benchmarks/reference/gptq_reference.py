"""Times the reference GPTQ implementation (IST-DASLab/gptq) on the layer sizes of the GPTQ issue, beside ours.

The reference is not vendored here: pass the path of a checkout of https://github.com/IST-DASLab/gptq (its code is
imported and run unmodified; only its unused `transformers` import is stubbed, and `torch.cuda.synchronize` is a no-op
when running on the CPU).

    python3 benchmarks/reference/gptq_reference.py <path-to-gptq-checkout> [cpu|cuda] [inputs.safetensors ...]

Without input files it draws correlated calibration inputs itself (X = Z·A with a random mixing A, a few outlier
channels); with files (written by our benchmark: tensors "weight" [rows, cols] and "inputs" [n, cols], float32) both
implementations see the same numbers. Reports, per layer: seconds for the Hessian (add_batch over 512-row batches)
and for quantization (fasterquant, INT4, groups of 128, act-order, percdamp 0.01, block 128), the reference's own
error figure (sum of its per-column losses; it counts a 2-D batch as one sample, so its H and losses are 512 times
ours), and the layer objective ||(W - Q)X^T||^2/n computed here in float64 (the figure our GptqReport.Objective gives).
"""
import json
import os
import struct
import sys
import time
import types

import torch


def load_safetensors(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        data = f.read()
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        assert info["dtype"] == "F32", f"{name}: {info['dtype']}"
        begin, end = info["data_offsets"]
        out[name] = torch.frombuffer(bytearray(data[begin:end]), dtype=torch.float32).reshape(info["shape"])
    return out


def correlated(n, cols, seed):
    g = torch.Generator().manual_seed(seed)
    z = torch.randn(n, cols, generator=g)
    a = torch.randn(cols, cols, generator=g) / cols ** 0.5 + torch.eye(cols)
    x = z @ a
    x[:, :: max(1, cols // 16)] *= 20  # outlier channels
    return x


def main():
    reference = sys.argv[1]
    device = sys.argv[2] if len(sys.argv) > 2 else "cpu"
    files = sys.argv[3:]
    sys.path.insert(0, reference)
    sys.modules.setdefault("transformers", types.SimpleNamespace(Conv1D=type("Conv1D", (), {})))
    if device == "cpu":
        torch.cuda.synchronize = lambda *a, **k: None
    from gptq import GPTQ  # noqa: E402  (the reference's module)
    from quant import Quantizer  # noqa: E402

    cases = []
    if files:
        for path in files:
            t = load_safetensors(path)
            cases.append((path, t["weight"], t["inputs"]))
    else:
        for cols, n in ((1024, 4096), (4096, 2048)):
            g = torch.Generator().manual_seed(cols)
            cases.append((f"{cols}x{cols}, {n} rows", torch.randn(cols, cols, generator=g) * 0.02, correlated(n, cols, cols + 1)))

    # Every core, so the baseline is the reference at its best on this machine (Debian's build defaults to one thread).
    torch.set_num_threads(os.cpu_count() or 1)
    print(f"reference GPTQ, torch {torch.__version__}, {device}, threads {torch.get_num_threads()}")
    for name, w, x in cases:
        layer = torch.nn.Linear(w.shape[1], w.shape[0], bias=False).to(device)
        layer.weight.data = w.clone().to(device)
        x = x.to(device)
        # The Hessian takes milliseconds on a GPU: the median of 21 accumulations (the last one is kept), each
        # synchronised, and beside it the one cuBLAS product X^T X over all rows as the ceiling.
        times = []
        for _ in range(21):
            tick = time.perf_counter()
            gptq = GPTQ(layer)
            for start in range(0, x.shape[0], 512):
                gptq.add_batch(x[start:start + 512], None)
            if device == "cuda":
                torch.cuda.synchronize()
            times.append(time.perf_counter() - tick)
        hessian_s = sorted(times)[len(times) // 2]
        times = []
        for _ in range(21):
            tick = time.perf_counter()
            x.t().matmul(x)
            if device == "cuda":
                torch.cuda.synchronize()
            times.append(time.perf_counter() - tick)
        gemm_s = sorted(times)[len(times) // 2]
        gptq.quantizer = Quantizer()
        gptq.quantizer.configure(4, perchannel=True, sym=True, mse=False)
        tick = time.perf_counter()
        gptq.fasterquant(blocksize=128, percdamp=0.01, groupsize=128, actorder=True)
        if device == "cuda":
            torch.cuda.synchronize()
        quant_s = time.perf_counter() - tick
        # The layer-output error ||(W - Q) X^T||^2 / n (fasterquant leaves Q in the layer), float64.
        delta = (w.to(device) - layer.weight.data).double()
        objective = ((delta @ x.double().t()) ** 2).sum().item() / x.shape[0]
        print(f"{name}: hessian {hessian_s * 1e3:.3f} ms (one X^T X product {gemm_s * 1e3:.3f} ms), quantize {quant_s:.3f} s, objective {objective:.3f}")
        cols = w.shape[1]
        print(f"RESULT torch-gptq-{device}-hessian|{cols}x{cols} n{x.shape[0]}|{hessian_s * 1e3:.3f}||")
        print(f"RESULT torch-gptq-{device}-quantize|{cols}x{cols} n{x.shape[0]}|{quant_s * 1e3:.1f}||objective {objective:.6g}")
        print(f"RESULT torch-sgemm-xtx|{cols}x{cols} n{x.shape[0]}|{gemm_s * 1e3:.3f}|{2 * cols * cols * x.shape[0] / gemm_s / 1e12:.2f} TFLOP/s|one X^T X")


if __name__ == "__main__":
    main()
