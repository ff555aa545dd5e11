"""Cross-checks GGUF files written by GgufExporter with llama.cpp's own Python package (gguf-py).

For each file: GGUFReader parses it (header, metadata, tensor infos, offsets); every tensor is dequantized with
gguf.quants.dequantize, the Q/K rows are put back in Hugging Face order, and the result is compared with the original
safetensors weight (max |error|, and the error in units of the block's step). The original weights are also quantized
with gguf.quants.quantize and the bytes compared with the file's (Q8_0 is documented bit-exact with ggml's C reference;
gguf-py's Q4_0/Q5_0 compute x*id + 8.5 in float64, so a few codes may differ where the float32 sum of the C reference
rounds across an integer).

    pip install gguf numpy            # gguf 0.19.0
    dotnet run --project samples/ExportGguf -c Release -- ../shared/data/tinystories-656k /tmp/ts-q8_0.gguf Q8_0
    python3 benchmarks/reference/gguf_check.py ../shared/data/tinystories-656k /tmp/ts-q8_0.gguf [more.gguf ...]
"""
import json
import struct
import sys

import numpy as np
import gguf
import gguf.quants

LAYER_PARTS = {
    "attn_q": "self_attn.q_proj", "attn_k": "self_attn.k_proj", "attn_v": "self_attn.v_proj",
    "attn_output": "self_attn.o_proj", "ffn_gate": "mlp.gate_proj", "ffn_up": "mlp.up_proj",
    "ffn_down": "mlp.down_proj", "attn_norm": "input_layernorm", "ffn_norm": "post_attention_layernorm",
}


def read_safetensors(folder):
    """name -> float32 array, and the metadata (a minimal reader: F32, F16 and BF16 only)."""
    with open(f"{folder}/model.safetensors", "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        data = f.read()
    metadata = header.pop("__metadata__", {})
    tensors = {}
    for name, info in header.items():
        begin, end = info["data_offsets"]
        raw = np.frombuffer(data[begin:end], dtype=np.uint8)
        if info["dtype"] == "F32":
            values = raw.view(np.float32)
        elif info["dtype"] == "F16":
            values = raw.view(np.float16).astype(np.float32)
        elif info["dtype"] == "BF16":
            values = (raw.view(np.uint16).astype(np.uint32) << 16).view(np.float32)
        else:
            raise ValueError(f"{name}: dtype {info['dtype']}")
        tensors[name] = values.reshape(info["shape"])
    return tensors, metadata


def hf_name(gguf_name, tensors, metadata):
    if gguf_name == "token_embd.weight":
        if "model.embed_tokens.weight" in tensors:
            return "model.embed_tokens.weight"
        return metadata.get("model.embed_tokens.weight", "lm_head.weight")
    if gguf_name == "output_norm.weight":
        return "model.norm.weight"
    if gguf_name == "output.weight":
        return "lm_head.weight"
    _, layer, part, _ = gguf_name.split(".")
    return f"model.layers.{layer}.{LAYER_PARTS[part]}.weight"


def rope_order(w, heads):
    """llama.cpp converter's permutation (HF rotate_half halves -> adjacent pairs)."""
    return w.reshape(heads, 2, w.shape[0] // heads // 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def c_float32_q4_0_q5_0(blocks, levels):
    """ggml's quantize_row_q4_0_ref / q5_0_ref with every operation in float32 (the C code compiled without FMA
    contraction), to tell those differences from gguf-py's float64 sum apart from real ones."""
    blocks = blocks.astype(np.float32)
    imax = np.abs(blocks).argmax(axis=-1, keepdims=True)
    d = (np.take_along_axis(blocks, imax, axis=-1) / np.float32(-levels)).astype(np.float32)
    with np.errstate(divide="ignore"):
        inv = np.where(d == 0, np.float32(0), np.float32(1) / d).astype(np.float32)
    x = (blocks * inv).astype(np.float32) + np.float32(levels + 0.5)
    q = np.minimum(np.trunc(x.astype(np.float32)), 2 * levels - 1).astype(np.uint8)
    lo, hi = q[:, :16], q[:, 16:]
    qs = (lo & 0x0F) | ((hi & 0x0F) << 4)
    parts = [d.astype(np.float16).view(np.uint8)]
    if levels == 16:
        bits = ((q >> 4) & 1).astype(np.uint32) << np.arange(32, dtype=np.uint32)
        parts.append(bits.sum(axis=1, dtype=np.uint32).reshape(-1, 1).view(np.uint8))
    return np.concatenate(parts + [qs.astype(np.uint8)], axis=1).tobytes()


def field(reader, key):
    f = reader.get_field(key)
    if f is None:
        return None
    if f.types[0] == gguf.GGUFValueType.ARRAY:
        return f"array[{len(f.data)}]"
    if f.types[0] == gguf.GGUFValueType.STRING:
        return bytes(f.parts[-1]).decode()
    return f.parts[-1][0].item()


def check(folder, path):
    tensors, metadata = read_safetensors(folder)
    reader = gguf.GGUFReader(path)
    print(f"== {path}")
    keys = [k for k in reader.fields if not k.startswith("GGUF.")]
    print(f"version {field(reader, 'GGUF.version')}, {len(reader.tensors)} tensors, {len(keys)} metadata keys, "
          f"alignment {reader.alignment}, data at {getattr(reader, 'data_offset', '?')}")
    for key in keys:
        print(f"  {key} = {field(reader, key)}")
    tokens = reader.get_field("tokenizer.ggml.tokens")
    if tokens is not None:
        print(f"  tokens[0:4] = {[bytes(tokens.parts[i]).decode() for i in tokens.data[:4]]}")
    heads = field(reader, "llama.attention.head_count")
    heads_kv = field(reader, "llama.attention.head_count_kv")
    worst = 0.0
    for t in reader.tensors:
        source = hf_name(t.name, tensors, metadata)
        original = tensors[source]
        shape = tuple(reversed([int(d) for d in t.shape]))
        expected = original
        if t.name.endswith("attn_q.weight"):
            expected = rope_order(original, heads)
        elif t.name.endswith("attn_k.weight"):
            expected = rope_order(original, heads_kv)
        values = gguf.quants.dequantize(np.asarray(t.data), t.tensor_type).reshape(shape)
        error = np.abs(values - expected)
        qtype = t.tensor_type
        if qtype in (gguf.GGMLQuantizationType.F32, gguf.GGMLQuantizationType.F16):
            steps = float(error.max() / max(np.abs(expected).max(), 1e-30))
            note = "relative"
            ours = np.asarray(t.data).tobytes()
            theirs = gguf.quants.quantize(expected, qtype).tobytes()
        else:
            blocks = expected.reshape(-1, 32)
            amax = np.abs(blocks).max(axis=1, keepdims=True)
            step = {gguf.GGMLQuantizationType.Q8_0: amax / 127, gguf.GGMLQuantizationType.Q4_0: amax / 8,
                    gguf.GGMLQuantizationType.Q5_0: amax / 16}.get(qtype)
            if step is None:
                step = (blocks.max(axis=1, keepdims=True) - blocks.min(axis=1, keepdims=True)) / 15
            steps = float((error.reshape(-1, 32) / np.where(step == 0, 1, step)).max())
            note = "steps"
            ours = np.asarray(t.data).tobytes()
            theirs = gguf.quants.quantize(expected, qtype).tobytes()
        size = gguf.GGML_QUANT_SIZES[qtype][1]
        differing = sum(ours[i:i + size] != theirs[i:i + size] for i in range(0, len(ours), size))
        worst = max(worst, steps if note == "steps" else 0)
        c_note = ""
        if qtype in (gguf.GGMLQuantizationType.Q4_0, gguf.GGMLQuantizationType.Q5_0):
            levels = 8 if qtype == gguf.GGMLQuantizationType.Q4_0 else 16
            c_bytes = c_float32_q4_0_q5_0(expected.reshape(-1, 32), levels)
            c_diff = sum(ours[i:i + size] != c_bytes[i:i + size] for i in range(0, len(ours), size))
            c_note = f", from float32 C arithmetic: {c_diff}"
        undo = ""
        if t.name.endswith(("attn_q.weight", "attn_k.weight")):
            n = heads if t.name.endswith("attn_q.weight") else heads_kv
            back = values.reshape(n, values.shape[0] // n // 2, 2, -1).swapaxes(1, 2).reshape(values.shape)
            undo = f", un-permuted max|err| {np.abs(back - original).max():.3g}"
        print(f"  {t.name:26s} {qtype.name:5s} {str(shape):14s} <- {source:42s} max|err| {error.max():.3g} "
              f"({steps:.3f} {note}); blocks differing from gguf.quants.quantize: {differing}/{len(ours) // size}{c_note}{undo}")
    print(f"  worst error {worst:.3f} steps")


if __name__ == "__main__":
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    for p in sys.argv[2:]:
        check(sys.argv[1], p)
