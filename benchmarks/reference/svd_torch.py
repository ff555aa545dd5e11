"""PyTorch's SVDs of the matrix Compression.GpuBench's `svd` mode times, on the same GPU.

Run on the GPU machine, after `Compression.GpuBench svd <folder> ...` has written the matrix:

    python3 benchmarks/reference/svd_torch.py <folder>/svd-4096.safetensors [rank] [repetitions]

Times, as medians of synchronised runs after two warm-ups, with the float32 matrix already on the device:
- torch.svd_lowrank(A, q=rank + 10, niter=2): the same algorithm as ours (Halko-Martinsson-Tropp range finder,
  10 extra directions, 2 power iterations), in float32 on the GPU throughout;
- torch.linalg.svd(A, full_matrices=False): the exact SVD (cuSOLVER), the accuracy floor at any rank.
For each it prints sigma_1, sigma_rank and the relative Frobenius error ||A - U_r S_r V_r^T|| / ||A|| of the rank-r
truncation (computed in float64), the figures GpuBench prints for ours.
"""
import json
import statistics
import struct
import sys
import time

import torch


def read_matrix(path):
    with open(path, "rb") as f:
        header_length = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(header_length))
        data = f.read()
    info = header["matrix"]
    assert info["dtype"] == "F32", info["dtype"]
    begin, end = info["data_offsets"]
    return torch.frombuffer(bytearray(data[begin:end]), dtype=torch.float32).reshape(info["shape"])


def median_ms(run, repetitions, warm_ups=2):
    for _ in range(warm_ups):
        run()
    torch.cuda.synchronize()
    times = []
    for _ in range(repetitions):
        start = time.perf_counter()
        run()
        torch.cuda.synchronize()
        times.append((time.perf_counter() - start) * 1e3)
    return statistics.median(times)


def relative_error(a, u, s, v, rank):
    a64 = a.double()
    approximation = (u[:, :rank].double() * s[:rank].double()) @ v[:, :rank].double().T
    return (torch.linalg.norm(a64 - approximation) / torch.linalg.norm(a64)).item()


def main():
    path = sys.argv[1]
    rank = int(sys.argv[2]) if len(sys.argv) > 2 else 256
    repetitions = int(sys.argv[3]) if len(sys.argv) > 3 else 5
    a = read_matrix(path).cuda()
    m, n = a.shape
    print(f"device: {torch.cuda.get_device_name()}; torch {torch.__version__}; {m}x{n} float32 from {path}; rank {rank}")

    torch.manual_seed(0)
    result = {}

    def lowrank():
        result["lowrank"] = torch.svd_lowrank(a, q=rank + 10, niter=2)

    ms = median_ms(lowrank, repetitions)
    u, s, v = result["lowrank"]
    print(f"torch.svd_lowrank q={rank + 10} niter=2: {ms:9.1f} ms; sigma_1 = {s[0].item():.6g}, "
          f"sigma_{rank} = {s[rank - 1].item():.6g}, ||A - A_r||_F/||A||_F = {relative_error(a, u, s, v, rank):.6g}")
    print(f"RESULT torch-svd-randomized|{m}x{n} r{rank}|{ms:.3f}||error {relative_error(a, u, s, v, rank):.6g}")

    def exact():
        result["exact"] = torch.linalg.svd(a, full_matrices=False)

    ms = median_ms(exact, max(1, min(repetitions, 3)), warm_ups=1)
    u, s, vh = result["exact"]
    print(f"torch.linalg.svd (exact):            {ms:9.1f} ms; sigma_1 = {s[0].item():.6g}, "
          f"sigma_{rank} = {s[rank - 1].item():.6g}, ||A - A_r||_F/||A||_F = {relative_error(a, u, s, vh.T, rank):.6g} (optimal)")


if __name__ == "__main__":
    main()
