using Compression.Quantization.Formats;
using Compression.Tensors;
using Compression.Testing;

namespace Compression.Quantization.Tests;

/// <summary>
/// The fast quantizer (fused single pass for per-channel and per-group, two passes for per-tensor and per-block,
/// SIMD kernels, parallel rows) against a plain scalar implementation written from the format definitions: codes and
/// scales must be identical, bit for bit.
/// </summary>
public class ScalarReferenceTests
{
    public static TheoryData<string, string, bool> Cases()
    {
        var data = new TheoryData<string, string, bool>();
        foreach (string format in new[] { "int8", "int4", "int3", "fp8-e4m3", "fp8-e5m2", "fp6-e2m3", "fp4-e2m1" })
        {
            foreach (string granularity in new[] { "per-tensor", "per-channel", "group-32", "group-13", "block-4x16" })
            {
                data.Add(format, granularity, true);
                if (format.StartsWith("int", StringComparison.Ordinal))
                {
                    data.Add(format, granularity, false);
                }
            }
        }

        foreach (string format in new[] { "mxfp8-e4m3", "mxfp8-e5m2", "mxfp6-e2m3", "mxfp6-e3m2", "mxfp4", "mxint8", "nvfp4" })
        {
            data.Add(format, "default", true);
        }

        return data;
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void FastPath_EqualsScalarReference(string formatName, string granularityName, bool symmetric)
    {
        NumberFormat format = NumberFormat.FromName(formatName);
        Granularity? granularity = granularityName == "default" ? null : GranularityNames.Parse(granularityName);
        var options = new RtnOptions { Format = format, Granularity = granularity, Symmetric = symmetric };
        // Odd sizes so every vector tail and partial group is hit; mixed magnitudes and exact zeros. The wide shape
        // reaches the kernels that take eight blocks at a time (128 or 256 columns) and their tails; its second row
        // has runs of exact zeros and of tiny values (zero and subnormal NVFP4 block scales, the smallest MX scales).
        foreach ((int rows, int columns) in new[] { (19, 203), (5, 611) })
        {
            DenseTensor w = RandomData.GaussianMatrix(rows, columns, seed: formatName.Length * 31 + granularityName.Length + columns);
            for (int i = 0; i < w.Length; i += 17)
            {
                w.Span[i] *= i % 34 == 0 ? 0f : 40f;
            }

            if (rows == 5)
            {
                Span<float> row = w.Row(1);
                row[..64].Clear();
                for (int c = 64; c < 300; c++)
                {
                    row[c] *= c < 200 ? 1e-4f : 1e-30f;
                }
            }

            QuantizedTensor fast = options.CreateCompressor().Quantize(w);
            (byte[] codes, float[] scales) = Reference(w, format, options.EffectiveGranularity, symmetric, out float tensorScale);

            Assert.Equal(scales.Select(BitConverter.SingleToInt32Bits), fast.Scales.ToArray().Select(BitConverter.SingleToInt32Bits));
            Assert.Equal(BitConverter.SingleToInt32Bits(tensorScale), BitConverter.SingleToInt32Bits(fast.GlobalScale));
            Assert.Equal(codes, fast.UnpackCodes());
        }
    }

    private static (byte[] Codes, float[] Scales) Reference(DenseTensor w, NumberFormat format, Granularity granularity, bool symmetric, out float tensorScale)
    {
        int rows = w.Rows, columns = w.Columns;
        (int groupWidth, int groupHeight) = granularity switch
        {
            PerTensorGranularity => (columns, rows),
            PerChannelGranularity => (columns, 1),
            PerGroupGranularity g => (g.Size, 1),
            PerBlockGranularity b => (b.Columns, b.Rows),
            _ => throw new InvalidOperationException(),
        };
        int groupsPerRow = (columns + groupWidth - 1) / groupWidth, groupRows = (rows + groupHeight - 1) / groupHeight;
        var scales = new float[groupsPerRow * groupRows];
        var codes = new byte[rows * columns];
        float tensorAbsMax = 0;
        foreach (float v in w.Span)
        {
            tensorAbsMax = MathF.Max(tensorAbsMax, MathF.Abs(v));
        }

        tensorScale = format.Name == "nvfp4" ? tensorAbsMax / 2688f : 1f;
        for (int gr = 0; gr < groupRows; gr++)
        {
            for (int gc = 0; gc < groupsPerRow; gc++)
            {
                var members = new List<int>();
                for (int r = gr * groupHeight; r < Math.Min(rows, (gr + 1) * groupHeight); r++)
                {
                    for (int c = gc * groupWidth; c < Math.Min(columns, (gc + 1) * groupWidth); c++)
                    {
                        members.Add(r * columns + c);
                    }
                }

                float amax = members.Max(i => MathF.Abs(w.Span[i]));
                float min = members.Min(i => w.Span[i]), max = members.Max(i => w.Span[i]);
                int group = gr * groupsPerRow + gc;
                switch (format.Name)
                {
                    case var n when n.StartsWith("int", StringComparison.Ordinal):
                    {
                        int bits = int.Parse(n[3..], System.Globalization.CultureInfo.InvariantCulture);
                        int half = 1 << (bits - 1), levels = (1 << bits) - 1;
                        if (symmetric)
                        {
                            float scale = amax / (half - 1);
                            scales[group] = scale;
                            foreach (int i in members)
                            {
                                codes[i] = scale == 0 ? (byte)half : (byte)(Math.Clamp(MathF.Round(w.Span[i] / scale, MidpointRounding.ToEven), 1 - half, half - 1) + half);
                            }
                        }
                        else
                        {
                            float lo = MathF.Min(min, 0), hi = MathF.Max(max, 0);
                            float scale = (hi - lo) / levels;
                            float zero = scale == 0 ? 0 : Math.Clamp(MathF.Round(-lo / scale, MidpointRounding.ToEven), 0, levels);
                            scales[group] = scale;
                            foreach (int i in members)
                            {
                                codes[i] = scale == 0 ? (byte)zero : (byte)Math.Clamp(MathF.Round(w.Span[i] / scale, MidpointRounding.ToEven) + zero, 0, levels);
                            }
                        }

                        break;
                    }

                    case "nvfp4":
                    {
                        float blockScale = tensorScale > 0 ? MiniFloatCodec.Fp8E4M3.RoundToGrid(amax / (6f * tensorScale)) : 0;
                        scales[group] = blockScale;
                        float divisor = blockScale * tensorScale;
                        foreach (int i in members)
                        {
                            codes[i] = divisor == 0 ? (byte)0 : MiniFloatCodec.Fp4E2M1.Encode(w.Span[i] / divisor);
                        }

                        break;
                    }

                    case var n when n.StartsWith("mx", StringComparison.Ordinal):
                    {
                        MiniFloatCodec? element = n switch
                        {
                            "mxfp8-e4m3" => MiniFloatCodec.Fp8E4M3, "mxfp8-e5m2" => MiniFloatCodec.Fp8E5M2,
                            "mxfp6-e2m3" => MiniFloatCodec.Fp6E2M3, "mxfp6-e3m2" => MiniFloatCodec.Fp6E3M2,
                            "mxfp4" => MiniFloatCodec.Fp4E2M1, _ => null,
                        };
                        int emax = element?.MaxExponent ?? 0;
                        int shared = amax == 0 ? -127 : Math.Clamp((int)Math.Floor(Math.Log2(amax)) - emax, -127, 127);
                        float scale = (float)Math.Pow(2, shared);
                        scales[group] = scale;
                        foreach (int i in members)
                        {
                            codes[i] = element is MiniFloatCodec e
                                ? e.Encode(w.Span[i] / scale)
                                : (byte)(sbyte)Math.Clamp(Math.Round((double)w.Span[i] / scale * 64, MidpointRounding.ToEven), -127, 127);
                        }

                        break;
                    }

                    default:
                    {
                        MiniFloatCodec codec = MiniFloatCodecTests.Codec(format.Name);
                        float scale = amax / codec.MaxNormal;
                        scales[group] = scale;
                        foreach (int i in members)
                        {
                            codes[i] = scale == 0 ? (byte)0 : codec.Encode(w.Span[i] / scale);
                        }

                        break;
                    }
                }
            }
        }

        return (codes, scales);
    }
}
