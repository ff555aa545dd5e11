using System.Runtime.InteropServices;
using System.Buffers.Binary;
using System.Text.Json.Nodes;
using Compression.Calibration;
using Compression.Quantization.Checkpoints;
using Compression.Safetensors;
using Compression.Tensors;
using Compression.Testing;

namespace Compression.Quantization.Tests;

/// <summary>
/// The compressed-tensors layout: every supported scheme written and read back gives the same weight bit for bit, and
/// an independent decoder that follows compressed-tensors' own rules (pack_to_int32, zero points packed along the
/// output dimension, low nibble first for FP4, E8M0 exponents, NVFP4 scale / global_scale, g_idx) reads the same
/// weight from the bytes.
/// </summary>
public class CompressedTensorsCodecTests
{
    public static TheoryData<string, RtnOptions> Schemes => new()
    {
        { "int4 g128", RtnOptions.W4Group128 },
        { "int8 channel", RtnOptions.W8PerChannel },
        { "int3 g64 asym", new RtnOptions { Format = NumberFormat.Int3, Granularity = Granularity.PerGroup(64), Symmetric = false } },
        { "int4 tensor asym", new RtnOptions { Format = NumberFormat.Int4, Granularity = Granularity.PerTensor, Symmetric = false } },
        { "int8 channel asym f16", new RtnOptions { Format = NumberFormat.Int8, Granularity = Granularity.PerChannel, Symmetric = false, ScaleStorage = ScaleEncoding.Float16 } },
        { "int5 g32 asym", new RtnOptions { Format = NumberFormat.Int(5), Granularity = Granularity.PerGroup(32), Symmetric = false } },
        { "int6 channel asym", new RtnOptions { Format = NumberFormat.Int(6), Granularity = Granularity.PerChannel, Symmetric = false } },
        { "int7 g128", new RtnOptions { Format = NumberFormat.Int(7), Granularity = Granularity.PerGroup(128) } },
        { "int2 g32 bf16", new RtnOptions { Format = NumberFormat.Int2, Granularity = Granularity.PerGroup(32), ScaleStorage = ScaleEncoding.BFloat16 } },
        { "fp8 channel", RtnOptions.Fp8PerChannel },
        { "fp8 tensor", new RtnOptions { Format = NumberFormat.Fp8E4M3, Granularity = Granularity.PerTensor } },
        { "mxfp4", RtnOptions.Mxfp4 },
        { "nvfp4", RtnOptions.Nvfp4 },
    };

    [Theory]
    [MemberData(nameof(Schemes))]
    public void RoundTrip_IsBitIdentical_AndMatchesTheCompressedTensorsRules(string name, RtnOptions options)
    {
        // 37 rows: zero points packed along the rows leave a partial last word.
        DenseTensor weight = RandomData.GaussianMatrix(37, 256, seed: name.Length, standardDeviation: 0.05f);
        weight.Span[5] = 0.9f;                                       // an outlier
        CompressedTensor quantized = options.CreateCompressor().Quantize(weight);
        (CompressedTensor back, float[] reference, SafetensorsCheckpoint checkpoint, TemporaryDirectory folder) = RoundTrip("model.layers.0.mlp.down_proj", quantized);
        using (folder)
        using (checkpoint)
        {
            float[] expected = quantized.Decompress().Span.ToArray();
            Assert.Equal(expected, back.Decompress().Span.ToArray());
            for (int i = 0; i < expected.Length; i++)
            {
                Assert.True(Math.Abs(expected[i] - reference[i]) <= 1e-6 * Math.Abs(expected[i]) + 1e-12,
                    $"{name}: element {i}: ours {expected[i]}, compressed-tensors rules {reference[i]}");
            }
        }
    }

    [Fact]
    public void GptqActOrder_StoresOriginalColumnOrderWithGroupIndex()
    {
        DenseTensor weight = RandomData.GaussianMatrix(24, 256, seed: 3, standardDeviation: 0.05f);
        DenseTensor x = RandomData.GaussianMatrix(512, 256, seed: 4);
        for (int i = 0; i < x.Length; i += 17)
        {
            x.Span[i] *= 8;                                          // uneven diag(H), so act-order permutes
        }

        var hessian = new HessianAccumulator(256);
        hessian.Add(x);
        GptqTensor gptq = new GptqQuantizer(new GptqOptions { Quantization = RtnOptions.W4Group128 with { Granularity = Granularity.PerGroup(64) }, ActOrder = true })
            .Quantize(weight, CompressionContext.Default with { InputHessian = hessian });
        Assert.False(gptq.IsIdentityOrder);
        (CompressedTensor back, float[] reference, SafetensorsCheckpoint checkpoint, TemporaryDirectory folder) = RoundTrip("blocks.1.fc", gptq);
        using (folder)
        using (checkpoint)
        {
            Assert.True(checkpoint.Contains("blocks.1.fc.weight_g_idx"));
            Assert.IsType<GptqTensor>(back);
            float[] expected = gptq.Decompress().Span.ToArray();
            Assert.Equal(expected, back.Decompress().Span.ToArray());
            Assert.Equal(expected, reference);
        }
    }

    [Fact]
    public void UnsupportedSchemes_AreRefusedByName()
    {
        DenseTensor weight = RandomData.GaussianMatrix(16, 128, seed: 5);
        foreach (RtnOptions options in new[] { RtnOptions.Nf4, RtnOptions.Fp8Block128, new RtnOptions { Format = NumberFormat.Mxfp8E4M3 },
                     new RtnOptions { Format = NumberFormat.Fp8E5M2, Granularity = Granularity.PerChannel } })
        {
            if (options.Format == NumberFormat.Fp8E4M3 && weight.Rows < 128)
            {
                weight = RandomData.GaussianMatrix(128, 128, seed: 6);
            }

            CompressedTensor q = options.CreateCompressor().Quantize(weight);
            var e = Assert.Throws<NotSupportedException>(() => new CompressedCheckpointWriter().AddQuantized("m", q));
            Assert.False(string.IsNullOrWhiteSpace(e.Message));
        }
    }

    [Theory]
    [InlineData(3)]
    [InlineData(5)]
    [InlineData(6)]
    [InlineData(7)]
    public void LegacyPacking_OfOlderWriters_IsStillRead(int bits)
    {
        // compressed-tensors before 0.18 (and this library before it followed 0.18) put ⌊32/b⌋ codes in a word and left
        // the high bits unused; those files have more words per row than the dense layout, which tells them apart.
        using TemporaryDirectory folder = RandomData.CreateTemporaryDirectory();
        QuantizedTensor q = new RtnOptions { Format = NumberFormat.Int(bits), Granularity = Granularity.PerGroup(64), Symmetric = false }
            .CreateCompressor().Quantize(RandomData.GaussianMatrix(37, 256, seed: bits));
        EncodedModule encoded = CompressedTensorsCodec.Encode("m", q);
        int perWord = 32 / bits, offset = 1 << (bits - 1);
        var writer = new SafetensorsWriter();
        foreach (EncodedTensor t in encoded.Tensors)
        {
            if (t.Name is "m.weight_packed" or "m.weight_zero_point")
            {
                bool rowsPacked = t.Name == "m.weight_zero_point";
                int outer = rowsPacked ? 4 : 37, count = rowsPacked ? 37 : 256;        // 4 groups of 64 per row
                int denseWords = (count * bits + 31) / 32, legacyWords = (count + perWord - 1) / perWord;
                int[] dense = MemoryMarshal.Cast<byte, int>(t.Data).ToArray();
                var legacy = new int[outer * legacyWords];
                for (int o = 0; o < outer; o++)
                {
                    for (int i = 0; i < count; i++)
                    {
                        long bit = (long)i * bits;
                        long word = rowsPacked ? (bit / 32) * outer + o : o * denseWords + bit / 32;
                        long next = rowsPacked ? (bit / 32 + 1) * outer + o : word + 1;
                        ulong pair = (uint)dense[word] | (bit % 32 + bits > 32 ? (ulong)(uint)dense[next] << 32 : 0);
                        int code = (int)(pair >> (int)(bit % 32)) & ((1 << bits) - 1);
                        int target = rowsPacked ? (i / perWord) * outer + o : o * legacyWords + i / perWord;
                        legacy[target] |= code << (i % perWord * bits);
                    }
                }

                long[] shape = rowsPacked ? [legacyWords, outer] : [outer, legacyWords];
                writer.Add(t.Name, t.DType, shape, MemoryMarshal.AsBytes(legacy.AsSpan()).ToArray());
            }
            else
            {
                writer.Add(t.Name, t.DType, t.Shape, t.Data);
            }
        }

        Assert.True(offset > 0);
        writer.Save(folder.File("model.safetensors"));
        using SafetensorsCheckpoint checkpoint = SafetensorsCheckpoint.Open(folder.Path);
        CompressedTensor back = CompressedTensorsCodec.Read(checkpoint, "m", CompressedTensorsCodec.PackQuantized, CompressedTensorsCodec.WeightArguments(q));
        Assert.Equal(q.Decompress().Span.ToArray(), back.Decompress().Span.ToArray());
    }

    [Fact]
    public void DamagedTensors_GiveInvalidData()
    {
        using TemporaryDirectory folder = RandomData.CreateTemporaryDirectory();
        QuantizedTensor q = RtnOptions.W4Group128.CreateCompressor().Quantize(RandomData.GaussianMatrix(8, 128, seed: 7));
        EncodedModule encoded = CompressedTensorsCodec.Encode("m", q);
        JsonObject args = CompressedTensorsCodec.WeightArguments(q);
        // A weight_shape that disagrees with weight_packed, and a missing scale.
        foreach (Func<EncodedTensor, EncodedTensor?> damage in new Func<EncodedTensor, EncodedTensor?>[]
                 {
                     t => t.Name == "m.weight_shape" ? t with { Data = BitConverter.GetBytes(8L).Concat(BitConverter.GetBytes(136L)).ToArray() } : t,
                     t => t.Name == "m.weight_scale" ? null : t,
                 })
        {
            var writer = new SafetensorsWriter();
            foreach (EncodedTensor t in encoded.Tensors.Select(damage).OfType<EncodedTensor>())
            {
                writer.Add(t.Name, t.DType, t.Shape, t.Data);
            }

            string path = folder.File("model.safetensors");
            writer.Save(path);
            using SafetensorsCheckpoint checkpoint = SafetensorsCheckpoint.Open(folder.Path);
            Assert.Throws<InvalidDataException>(() => CompressedTensorsCodec.Read(checkpoint, "m", CompressedTensorsCodec.PackQuantized, args));
        }
    }

    private static (CompressedTensor Back, float[] Reference, SafetensorsCheckpoint Checkpoint, TemporaryDirectory Folder) RoundTrip(string module, CompressedTensor tensor)
    {
        TemporaryDirectory folder = RandomData.CreateTemporaryDirectory();
        var writer = new CompressedCheckpointWriter();
        writer.AddQuantized(module, tensor);
        writer.Save(folder.Path, new JsonObject { ["architectures"] = new JsonArray("Test") }, ["lm_head"]);
        var config = (JsonObject)JsonNode.Parse(File.ReadAllText(folder.File("config.json")))!["quantization_config"]!;
        SafetensorsCheckpoint checkpoint = SafetensorsCheckpoint.Open(folder.Path);
        var modules = CompressedTensorsCodec.ModulesOf(config, checkpoint);
        (string format, JsonObject weights) = Assert.Single(modules, m => m.Key == module).Value;
        CompressedTensor back = CompressedTensorsCodec.Read(checkpoint, module, format, weights);
        return (back, ReferenceDecode(checkpoint, module, format, weights, tensor.Rows, tensor.Columns), checkpoint, folder);
    }

    // compressed-tensors' decompression, written from its documented rules, reading only the file.
    private static float[] ReferenceDecode(SafetensorsCheckpoint file, string module, string format, JsonObject args, int rows, int columns)
    {
        string p = module + ".";
        int bits = args["num_bits"]!.GetValue<int>();
        string strategy = args["strategy"]!.GetValue<string>();
        int groupSize = args["group_size"]?.GetValue<int>() ?? columns;
        int[]? gIdx = file.Contains(p + "weight_g_idx") ? Ints(file, p + "weight_g_idx") : null;
        int GroupOf(int c) => gIdx?[c] ?? (strategy is "group" or "tensor_group" ? c / groupSize : 0);
        var result = new float[rows * columns];
        if (format == CompressedTensorsCodec.PackQuantized)
        {
            // compressed-tensors ≥ 0.18 packs densely: a row (or a zero-point column) is a bitstream, value i at bits
            // [i·b, (i + 1)·b), 32 values in exactly b words, a 3/5/6/7-bit value straddling two words where it falls.
            int words = (columns * bits + 31) / 32, zpWordRows = (rows * bits + 31) / 32, offset = 1 << (bits - 1);
            int[] packed = Ints(file, p + "weight_packed");
            Assert.Equal(rows * words, packed.Length);
            static int Bits(Func<int, int> word, int index, int bits)
            {
                int value = 0;
                for (int k = 0; k < bits; k++)
                {
                    int bit = index * bits + k;
                    value |= ((word(bit / 32) >>> (bit % 32)) & 1) << k;
                }

                return value;
            }

            float[] scale = Floats(file, p + "weight_scale");
            int groups = strategy == "tensor" ? 1 : scale.Length / rows;
            int[]? zpWords = file.Contains(p + "weight_zero_point") && strategy != "tensor" ? Ints(file, p + "weight_zero_point") : null;
            Assert.True(zpWords is null || zpWords.Length == zpWordRows * groups);
            int tensorZero = file.Contains(p + "weight_zero_point") && strategy == "tensor" ? (sbyte)file.GetBytes(p + "weight_zero_point")[0] : 0;
            for (int r = 0; r < rows; r++)
            {
                for (int c = 0; c < columns; c++)
                {
                    int q = Bits(w => packed[r * words + w], c, bits) - offset;   // back to signed
                    int g = GroupOf(c);
                    int zp = zpWords is null ? tensorZero : Bits(w => zpWords[w * groups + g], r, bits) - offset;
                    float s = strategy == "tensor" ? scale[0] : scale[r * groups + g];
                    result[r * columns + c] = (q - zp) * s;
                }
            }
        }
        else if (format == CompressedTensorsCodec.FloatQuantized)
        {
            ReadOnlySpan<byte> codes = file.GetBytes(p + "weight");
            float[] scale = Floats(file, p + "weight_scale");
            int groups = strategy == "tensor" ? 1 : scale.Length / rows;
            for (int i = 0; i < result.Length; i++)
            {
                int r = i / columns, c = i % columns;
                result[i] = E4M3(codes[i]) * (strategy == "tensor" ? scale[0] : scale[r * groups + GroupOf(c)]);
            }
        }
        else
        {
            float[] e2m1 = [0f, 0.5f, 1f, 1.5f, 2f, 3f, 4f, 6f];
            ReadOnlySpan<byte> packed = file.GetBytes(p + "weight_packed");
            ReadOnlySpan<byte> scales = file.GetBytes(p + "weight_scale");
            bool nv = format == CompressedTensorsCodec.Nvfp4PackQuantized;
            float global = nv ? BinaryPrimitives.ReadSingleLittleEndian(file.GetBytes(p + "weight_global_scale")) : 1f;
            int groups = columns / groupSize;
            for (int i = 0; i < result.Length; i++)
            {
                int nibble = (packed[i / 2] >> (i % 2 * 4)) & 0xF;
                float value = e2m1[nibble & 7] * ((nibble & 8) != 0 ? -1 : 1);
                int r = i / columns, c = i % columns;
                byte s = scales[r * groups + c / groupSize];
                float scale = nv ? E4M3(s) / global : MathF.Pow(2, s - 127);
                result[i] = value * scale;
            }
        }

        return result;
    }

    // OCP E4M3 from its definition: bias 7, subnormals below exponent field 1 (NaN codes never occur here).
    private static float E4M3(byte b)
    {
        int e = (b >> 3) & 15, m = b & 7;
        double v = e == 0 ? m / 8.0 * Math.Pow(2, -6) : (1 + m / 8.0) * Math.Pow(2, e - 7);
        return (float)((b & 0x80) != 0 ? -v : v);
    }

    private static int[] Ints(SafetensorsCheckpoint file, string name)
    {
        byte[] b = file.GetBytes(name).ToArray();
        return Enumerable.Range(0, b.Length / 4).Select(i => BinaryPrimitives.ReadInt32LittleEndian(b.AsSpan(4 * i))).ToArray();
    }

    private static float[] Floats(SafetensorsCheckpoint file, string name)
    {
        SafetensorsTensorInfo info = file.GetInfo(name);
        byte[] b = file.GetBytes(name).ToArray();
        return info.DType switch
        {
            SafetensorsDType.F32 => Enumerable.Range(0, b.Length / 4).Select(i => BinaryPrimitives.ReadSingleLittleEndian(b.AsSpan(4 * i))).ToArray(),
            SafetensorsDType.F16 => Enumerable.Range(0, b.Length / 2).Select(i => (float)BinaryPrimitives.ReadHalfLittleEndian(b.AsSpan(2 * i))).ToArray(),
            SafetensorsDType.BF16 => Enumerable.Range(0, b.Length / 2).Select(i => BitConverter.UInt32BitsToSingle((uint)BinaryPrimitives.ReadUInt16LittleEndian(b.AsSpan(2 * i)) << 16)).ToArray(),
            _ => throw new InvalidDataException(info.DType.ToString()),
        };
    }
}
