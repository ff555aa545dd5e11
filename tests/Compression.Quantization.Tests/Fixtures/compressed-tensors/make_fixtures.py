"""Builds the compressed-tensors layout fixtures from compressed-tensors' own packing code, and checks this library's
exports with the same code.

compressed-tensors (vllm-project/compressed-tensors) needs pydantic 2, which neither the development machine nor the
GPU machine has, so its ModelCompressor cannot run here. Its packing functions are plain torch and are loaded from a
source checkout by file path (packing: compressors/pack_quantized/helpers.py; FP4: compressors/nvfp4/helpers.py, with
its optional triton/backend imports stubbed; MX scales: compressors/mx_utils.py). Around them this script restates,
with the file and line they come from, what the pydantic-based parts decide:

  * which tensors a module gets: each compressor's compression_param_names (pack_quantized/base.py,
    naive_quantized/base.py, nvfp4/base.py, mxfp4/base.py) and _remove_symmetric_zp;
  * scale and zero-point shapes: quantization/lifecycle/initialize.py initialize_qparams (tensor (1,), channel
    (rows, 1), group/tensor_group (rows, cols/group)); scale dtype = the weight's dtype for int/fp8, float8_e4m3fn
    for NVFP4, uint8 for MXFP4; zero points in zp_dtype (int8), packed along dim 0 for group/channel;
  * the QuantizationArgs field order and defaults (quantization/quant_args.py) and the preset values
    (quantization/quant_scheme.py: W4A16 = _int_wnam(4), W8A16, FP8, NVFP4A16, MXFP4A16), and the keys
    ModelCompressor.update_config writes into config.json (compressors/model_compressors/model_compressor.py).

For each scheme it quantizes the real linear weights of a checkpoint (tinystories-656k), packs them with the reference
functions, saves them with safetensors and writes the file's header (names, dtypes, shapes) plus the config group as
<scheme>.json. With --ours, it also reads this library's export of each scheme (folders <ours>/<scheme>/), unpacks
every module with the reference functions, checks that re-packing gives the same bytes, and dequantizes with
compressed-tensors' formula, reporting the largest error against the original weight in units of the module's step.

    python3 make_fixtures.py --ct-src <compressed-tensors>/src --checkpoint ../shared/data/tinystories-656k \
        --out . [--ours <exports>]
"""
import argparse
import importlib.util
import json
import math
import os
import struct
import sys
import tempfile
import types

import torch

# A minimal safetensors reader and writer (the safetensors package may be absent), and FP8 E4M3 by table, so that the
# script also runs on torch builds without float8 dtypes. F8_E4M3 tensors are held as uint8 codes.
ST_DTYPES = {torch.float32: "F32", torch.float16: "F16", torch.bfloat16: "BF16", torch.int64: "I64",
             torch.int32: "I32", torch.int8: "I8", torch.uint8: "U8"}
TORCH_DTYPES = {v: k for k, v in ST_DTYPES.items()}
TORCH_DTYPES["F8_E4M3"] = torch.uint8


def e4m3_table():
    codes = torch.arange(256)
    sign = torch.where(codes >= 128, -1.0, 1.0)
    e, m = (codes >> 3) & 0xF, (codes & 7).float()
    value = torch.where(e == 0, m / 8 * 2.0 ** -6, (1 + m / 8) * 2.0 ** (e.float() - 7))
    value = sign * value
    value[(codes & 0x7F) == 0x7F] = float("nan")
    return value


E4M3 = e4m3_table()


def e4m3_encode(x):
    """Nearest E4M3 code (the few ties go to the lower code; fixtures only use dtypes and shapes)."""
    finite = torch.nan_to_num(E4M3, nan=1e30)
    return (x.reshape(-1, 1) - finite).abs().argmin(-1).to(torch.uint8).reshape(x.shape)


def save_file(tensors, path):
    """tensors: name -> torch tensor, or (\"F8_E4M3\", uint8 tensor)."""
    header, blobs, offset = {}, [], 0
    for name in sorted(tensors):
        value = tensors[name]
        dtype, t = value if isinstance(value, tuple) else (ST_DTYPES[value.dtype], value)
        data = t.contiguous().reshape(-1).clone().view(torch.uint8).numpy().tobytes()
        header[name] = {"dtype": dtype, "shape": list(t.shape), "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    text = json.dumps(header).encode()
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text + b"".join(blobs))


def load_file(path):
    """name -> torch tensor (F8_E4M3 decoded to float32, BF16 widened to float32)."""
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        data = f.read()
    header.pop("__metadata__", None)
    out = {}
    for name, info in header.items():
        begin, end = info["data_offsets"]
        raw = torch.frombuffer(bytearray(data[begin:end]) or bytearray(1), dtype=torch.uint8)[:end - begin]
        dtype = info["dtype"]
        if dtype == "F8_E4M3":
            t = E4M3[raw.long()]
        elif dtype == "BF16":
            t = (raw.view(torch.int16).to(torch.int32) << 16).view(torch.float32)
        else:
            t = raw.view(TORCH_DTYPES[dtype])
        out[name] = t.reshape(info["shape"])
    return out


def load_reference(src):
    """Loads compressed-tensors' packing helpers by path, without importing the package (pydantic)."""
    class Anything(types.ModuleType):
        def __getattr__(self, name):
            return Anything(name)

        def __call__(self, *args, **kwargs):
            if len(args) == 1 and callable(args[0]) and not kwargs:
                return args[0]
            return lambda f: f

        def __getitem__(self, key):
            return self

    for name in ["compressed_tensors", "compressed_tensors.utils", "compressed_tensors.utils.impl_backend",
                 "compressed_tensors.utils.triton"]:
        sys.modules[name] = Anything(name)
    sys.modules["compressed_tensors.utils.impl_backend"].ImplBackend = Anything("ImplBackend")

    def module(relative):
        spec = importlib.util.spec_from_file_location(relative.replace("/", "_"), os.path.join(src, "compressed_tensors", relative))
        loaded = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(loaded)
        return loaded

    return (module("compressors/pack_quantized/helpers.py"), module("compressors/nvfp4/helpers.py"),
            module("compressors/mx_utils.py"))


# QuantizationArgs fields in declaration order (quant_args.py), serialized as model_dump does.
def weight_args(num_bits, type_, symmetric, group_size, strategy, scale_dtype=None):
    return {
        "num_bits": num_bits, "type": type_, "symmetric": symmetric, "group_size": group_size, "strategy": strategy,
        "block_structure": None, "dynamic": False, "actorder": None,
        "scale_dtype": scale_dtype,
        # field_serializer("zp_dtype"): None when symmetric, else str(dtype); int zp_dtype is pytorch_dtype() = int8.
        "zp_dtype": None if symmetric else "torch.int8",
        "observer": "memoryless_minmax", "observer_kwargs": {},
    }


# FP8_DYNAMIC's input_activations (quant_scheme.py: num_bits 8, FLOAT, strategy TOKEN, symmetric, dynamic True), with the
# fields validate_model_after fills in (quant_args.py): dynamic=True sets observer to None; zp_dtype serializes to None
# when symmetric.
def activation_args():
    return {
        "num_bits": 8, "type": "float", "symmetric": True, "group_size": None, "strategy": "token",
        "block_structure": None, "dynamic": True, "actorder": None, "scale_dtype": None, "zp_dtype": None,
        "observer": None, "observer_kwargs": {},
    }


# Schemes with declared input activations; the others have input_activations None.
ACTIVATIONS = {"fp8-dynamic": activation_args()}

SCHEMES = {
    # name: (format, weight args)
    "w4a16": ("pack-quantized", weight_args(4, "int", True, 128, "group")),
    "w4a16-asym": ("pack-quantized", weight_args(4, "int", False, 128, "group")),
    "w3a16": ("pack-quantized", weight_args(3, "int", True, 128, "group")),
    "w8a16": ("pack-quantized", weight_args(8, "int", True, None, "channel")),
    "w4a16-channel-asym": ("pack-quantized", weight_args(4, "int", False, None, "channel")),
    "fp8-channel": ("float-quantized", weight_args(8, "float", True, None, "channel")),
    "fp8-tensor": ("float-quantized", weight_args(8, "float", True, None, "tensor")),
    # FP8_DYNAMIC: the weights of FP8 (per channel, static); activations quantized at run time, so no extra tensor.
    "fp8-dynamic": ("float-quantized", weight_args(8, "float", True, None, "channel")),
    "nvfp4a16": ("nvfp4-pack-quantized", weight_args(4, "float", True, 16, "tensor_group", "torch.float8_e4m3fn")),
    "mxfp4a16": ("mxfp4-pack-quantized", weight_args(4, "float", True, 32, "group", "torch.uint8")),
}

# ModelCompressor.update_config: version, quant_method, sparsity_config, transform_config, then QuantizationConfig's
# model_dump(exclude=["quant_method"]) (run_compressed is excluded by its Field).
CONFIG_KEYS = ["version", "quant_method", "sparsity_config", "transform_config", "config_groups", "kv_cache_scheme",
               "format", "quantization_status", "global_compression_ratio", "ignore"]
GROUP_KEYS = ["targets", "weights", "input_activations", "output_activations", "format"]
FP4 = torch.tensor([0.0, 0.5, 1.0, 1.5, 2.0, 3.0, 4.0, 6.0])


def groups_of(w, args):
    rows, cols = w.shape
    if args["strategy"] == "tensor":
        return w.reshape(1, 1, -1), (1,)
    if args["strategy"] == "channel":
        return w.reshape(rows, 1, cols), (rows, 1)
    g = args["group_size"]
    return w.reshape(rows, cols // g, g), (rows, cols // g)


def compress(w, fmt, args, ref):
    pack, nvfp4, mx = ref
    rows, cols = w.shape
    blocks, scale_shape = groups_of(w, args)
    out = {}
    if fmt == "pack-quantized":
        bits = args["num_bits"]
        if args["symmetric"]:
            scale = blocks.abs().amax(-1, keepdim=True) / ((2 ** bits - 1) / 2)
            zp = torch.zeros_like(scale)
        else:
            lo, hi = blocks.amin(-1, keepdim=True).clamp(max=0), blocks.amax(-1, keepdim=True).clamp(min=0)
            scale = (hi - lo) / (2 ** bits - 1)
            zp = (-(2 ** (bits - 1)) - torch.round(lo / scale)).clamp(-(2 ** (bits - 1)), 2 ** (bits - 1) - 1)
        q = torch.clamp(torch.round(blocks / scale) + zp, -(2 ** (bits - 1)), 2 ** (bits - 1) - 1)
        out["weight_packed"] = pack.pack_to_int32(q.reshape(rows, cols).to(torch.int8), bits)
        out["weight_scale"] = scale.reshape(scale_shape).to(w.dtype)
        out["weight_shape"] = torch.tensor(w.shape)
        if not args["symmetric"]:
            zp = zp.reshape(scale_shape).to(torch.int8)
            out["weight_zero_point"] = pack.pack_to_int32(zp, bits, packed_dim=0) if args["strategy"] in ("group", "channel") else zp
    elif fmt == "float-quantized":
        scale = blocks.abs().amax(-1, keepdim=True) / 448
        out["weight"] = ("F8_E4M3", e4m3_encode((blocks / scale).reshape(rows, cols)))
        out["weight_scale"] = scale.reshape(scale_shape).to(w.dtype)
    else:
        amax = blocks.abs().amax(-1, keepdim=True)
        if fmt == "nvfp4-pack-quantized":
            global_scale = torch.tensor([448 * 6 / w.abs().max().item()], dtype=torch.float32)
            codes = e4m3_encode(global_scale * amax / 6)
            x = blocks / (E4M3[codes.long()] / global_scale)
            out["weight_global_scale"] = global_scale
            out["weight_scale"] = ("F8_E4M3", codes.reshape(scale_shape))
        else:
            scale = 2.0 ** (torch.floor(torch.log2(amax)) - 2)
            x = blocks / scale
            out["weight_scale"] = mx.compress_mx_scale(scale.reshape(scale_shape), torch.uint8)
        values = FP4[(x.abs().unsqueeze(-1) - FP4).abs().argmin(-1)] * torch.sign(x)
        out["weight_packed"] = nvfp4.pack_fp4_to_uint8(values.reshape(rows, cols))
    return out


def header(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        h = json.loads(f.read(n))
    h.pop("__metadata__", None)
    return {k: {"dtype": v["dtype"], "shape": v["shape"]} for k, v in sorted(h.items())}


def linear_modules(weights):
    return sorted(n[:-len(".weight")] for n, t in weights.items()
                  if n.endswith(".weight") and t.dim() == 2 and "embed" not in n and not n.startswith("lm_head"))


def make(args, ref):
    weights = load_file(os.path.join(args.checkpoint, "model.safetensors"))
    for name, (fmt, wargs) in SCHEMES.items():
        state = {}
        for module in linear_modules(weights):
            for suffix, tensor in compress(weights[module + ".weight"].float(), fmt, wargs, ref).items():
                state[f"{module}.{suffix}"] = tensor
        with tempfile.TemporaryDirectory() as tmp:
            save_file(state, os.path.join(tmp, "model.safetensors"))
            tensors = header(os.path.join(tmp, "model.safetensors"))
        fixture = {
            "produced_by": "make_fixtures.py from compressed-tensors' packing functions (see README.md)",
            "checkpoint": os.path.basename(os.path.normpath(args.checkpoint)),
            "format": fmt,
            "config_keys": CONFIG_KEYS,
            "group_keys": GROUP_KEYS,
            "weights": wargs,
            "input_activations": ACTIVATIONS.get(name),
            "tensors": tensors,
        }
        with open(os.path.join(args.out, f"{name}.json"), "w") as f:
            json.dump(fixture, f, indent=1)
            f.write("\n")
        print(f"{name}: {fmt}, {len(tensors)} tensors")


def check(args, ref):
    pack, nvfp4, mx = ref
    weights = load_file(os.path.join(args.checkpoint, "model.safetensors"))
    for name, (fmt, _) in SCHEMES.items():
        folder = os.path.join(args.ours, name)
        if not os.path.isdir(folder):
            continue
        ours = load_file(os.path.join(folder, "model.safetensors"))
        config = json.load(open(os.path.join(folder, "config.json")))["quantization_config"]
        worst, repacked, same, total, largest = 0.0, 0, 0, 0, 0.0
        decoded_path = os.path.join(folder, "decoded.safetensors")
        decoded = load_file(decoded_path) if os.path.exists(decoded_path) else {}
        modules = linear_modules(weights)
        for module in modules:
            group = next(g for g in config["config_groups"].values() if module in g["targets"])
            a = group["weights"]
            w = weights[module + ".weight"].float()
            rows, cols = w.shape
            scale = ours[module + ".weight_scale"]
            if fmt == "pack-quantized":
                bits = a["num_bits"]
                packed = ours[module + ".weight_packed"]
                q = pack.unpack_from_int32(packed, bits, torch.Size([rows, cols])).float()
                repacked += torch.equal(pack.pack_to_int32(q.to(torch.int8), bits), packed)
                zp = torch.zeros_like(scale.float())
                if not a["symmetric"]:
                    z = ours[module + ".weight_zero_point"]
                    zp = (pack.unpack_from_int32(z, bits, torch.Size(scale.shape), packed_dim=0) if a["strategy"] != "tensor" else z).float()
                    if a["strategy"] != "tensor":
                        repacked += torch.equal(pack.pack_to_int32(zp.to(torch.int8), bits, packed_dim=0), z) - 1
                step = scale.float()
                blocks, _ = groups_of(q, a)
                dq = ((blocks - zp.reshape(*zp.shape, 1) if zp.dim() > 1 else blocks - zp) * (step.reshape(*step.shape, 1) if step.dim() > 1 else step)).reshape(rows, cols)
            elif fmt == "float-quantized":
                step = scale.float()
                blocks, _ = groups_of(ours[module + ".weight"].float(), a)
                dq = (blocks * (step.reshape(*step.shape, 1) if step.dim() > 1 else step)).reshape(rows, cols)
                step = step * 32    # E4M3 spacing near the top of the range, in units of the scale
                repacked += 1
            else:
                packed = ours[module + ".weight_packed"]
                values = nvfp4.unpack_fp4_from_uint8(packed, rows, cols, dtype=torch.float32)
                repacked += torch.equal(nvfp4.pack_fp4_to_uint8(values), packed)
                if fmt == "nvfp4-pack-quantized":
                    step = scale.float() / ours[module + ".weight_global_scale"]
                else:
                    step = mx.decompress_mx_scale(scale).float()
                blocks, _ = groups_of(values, a)
                dq = (blocks * step.reshape(*step.shape, 1)).reshape(rows, cols)
                step = step * 2     # the widest E2M1 spacing (4 → 6) in units of the block scale
            if module + ".weight" in decoded:
                ours_dq = decoded[module + ".weight"]
                same += int((ours_dq == dq.float()).sum())
                total += dq.numel()
                largest = max(largest, float((ours_dq - dq.float()).abs().max()))
            err = (dq - w).abs()
            blocks_err, _ = groups_of(err, a)
            units = blocks_err / (step.reshape(*step.shape, 1) if step.dim() > 1 else step).clamp(min=1e-30)
            worst = max(worst, units.max().item())
        agreement = f"; equal to our decoding for {same}/{total} values (max diff {largest:.3g})" if total else ""
        print(f"{name}: {len(modules)} modules; reference re-pack identical for {repacked}/{len(modules)}; "
              f"max |dequantized - original| = {worst:.3f} steps{agreement}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--ct-src", required=True)
    parser.add_argument("--checkpoint", required=True)
    parser.add_argument("--out")
    parser.add_argument("--ours")
    parsed = parser.parse_args()
    reference = load_reference(parsed.ct_src)
    if parsed.out:
        make(parsed, reference)
    if parsed.ours:
        check(parsed, reference)
