// Licensed under the MIT License. See LICENSE in the repository root.
// Part of the Compression library for .NET.

using System;
using Compression.Gpu.Runtime;
using Compression.Quantization.Formats;
using Compression.Tensors;
using ILGPU;
using ILGPU.Runtime;

namespace Compression.Quantization.Gpu;

/// <summary>
/// A quantized weight Ŵ [rows, columns] resident on an accelerator, multiplying activations without ever expanding it:
/// <c>Y[b, o] = Σ_i X[b, i]·Ŵ[o, i]</c> for 1 to <see cref="MaxBatch"/> rows of X (decode-time linear layers). Ŵ is
/// exactly <see cref="CompressedTensor.Decompress()"/> of the tensor it was uploaded from; sums are float32.
/// </summary>
/// <remarks>
/// <para>Formats: INT4 and INT8, symmetric or with zero points (per-channel, per-tensor, or groups of a power of two ≥ 4 columns, e.g.
/// <see cref="RtnOptions.W4Group128"/>, <see cref="RtnOptions.W8PerChannel"/>), FP8 E4M3 with per-channel or per-group
/// scales (<see cref="RtnOptions.Fp8PerChannel"/>), MXFP4 (<see cref="RtnOptions.Mxfp4"/>) and NVFP4
/// (<see cref="RtnOptions.Nvfp4"/>); columns a multiple of 4. Anything else throws <see cref="NotSupportedException"/>.</para>
/// <para>The upload rearranges the codes (same bytes, another order: each lane of a warp reads 16 bytes that pair with
/// one contiguous 16-byte read of X per quad of columns) and the scales into the order the lanes use them, stored
/// compactly where that is exact: float32 for integer and FP8 groups, the E8M0 byte for MX, the E4M3 byte for NVFP4
/// (their scales are exactly representable; the upload checks it). <see cref="BytesRead"/> counts what a product reads.</para>
/// <para>Results differ from a float64 product of X and Ŵ by float32 rounding only (the scale multiplies each quad's or
/// row's partial sum instead of each weight); each call is deterministic.</para>
/// </remarks>
/// <example>
/// <code>
/// QuantizedTensor w4 = RtnOptions.W4Group128.CreateCompressor().Quantize(weight);
/// using var layer = new GpuQuantizedMatrixMultiply(gpu, w4);
/// layer.Multiply(x, batch: 1, y);                    // host spans, or device views for a pipeline
/// </code>
/// </example>
public sealed class GpuQuantizedMatrixMultiply : IDisposable
{
    /// <summary>The largest batch (rows of X) one call takes.</summary>
    public const int MaxBatch = 16;

    private const int Lanes = 32;
    private const int GroupThreads = QuantizedGemvKernels.WarpsPerGroup * Lanes;
    private const int RowsPerGroup = QuantizedGemvKernels.RowsPerWarp;

    private readonly GpuContext _gpu;
    private readonly MemoryBuffer1D<CodeChunk, Stride1D.Dense> _codes;
    private readonly MemoryBuffer1D<Float4, Stride1D.Dense> _floatScales;
    private readonly MemoryBuffer1D<ulong, Stride1D.Dense> _byteScales;
    private readonly MemoryBuffer1D<float, Stride1D.Dense> _rowScales;
    private readonly GemvSpec _spec;
    private readonly Launch[] _launches;
    private readonly long _scaleBytes;
    private bool _disposed;

    private delegate void Launch(KernelConfig config, ArrayView<CodeChunk> codes, ArrayView<Float4> floatScales, ArrayView<ulong> byteScales,
        ArrayView<float> rowScales, ArrayView<Float4> x, ArrayView<float> y, GemvSpec spec);

    /// <summary>Uploads <paramref name="weight"/> to the accelerator of <paramref name="gpu"/>.</summary>
    /// <exception cref="NotSupportedException">The format, granularity or shape is not one this kernel takes; the message
    /// names it.</exception>
    public GpuQuantizedMatrixMultiply(GpuContext gpu, QuantizedTensor weight)
    {
        ArgumentNullException.ThrowIfNull(gpu);
        ArgumentNullException.ThrowIfNull(weight);
        Plan plan = PlanFor(weight);
        _gpu = gpu;
        Rows = weight.Rows;
        Columns = weight.Columns;
        Format = weight.Format;
        int quads = plan.CodeBits == 4 ? 8 : 4;
        int tileColumns = Lanes * quads * 4;
        int tiles = Math.Max(1, (Columns + tileColumns - 1) / tileColumns);
        int groupWidth = plan.GroupWidth;
        int lanesPerClass = groupWidth == 0 ? Lanes : Math.Min(Lanes, groupWidth / 4);
        int classes = Lanes / lanesPerClass;
        _spec = new GemvSpec
        {
            Rows = Rows,
            QuadsPerXRow = Columns / 4,
            Tiles = tiles,
            Classes = classes,
            ClassShift = System.Numerics.BitOperations.Log2((uint)lanesPerClass),
            OutputScale = weight.Format is Nvfp4Format ? weight.GlobalScale : 1f,
        };

        Accelerator accelerator = gpu.Accelerator;
        CodeChunk[] chunks = ArrangeCodes(weight, plan.CodeBits, plan.Codes is CodeKind.Int4 or CodeKind.Int8, quads, tiles, lanesPerClass);
        _codes = accelerator.Allocate1D(chunks);
        float[] rowScales = [1f];
        Float4[] floatScales = [default];
        ulong[] byteScales = [0];
        switch (plan.Scales)
        {
            case ScaleKind.Row:
                rowScales = RowScales(weight);
                _scaleBytes = 4L * rowScales.Length;
                break;
            case ScaleKind.Float:
                floatScales = FloatScales(weight, quads, tiles, classes, lanesPerClass);
                _scaleBytes = 16L * floatScales.Length;
                break;
            case ScaleKind.FloatWithZeros:
                floatScales = FloatScales(weight, quads, tiles, classes, lanesPerClass);
                byteScales = ZeroPoints(weight, quads, tiles, classes, lanesPerClass);
                _scaleBytes = 16L * floatScales.Length + (long)quads * byteScales.Length;
                break;
            default:
                byteScales = ByteScales(weight, plan.Scales, tiles, classes, lanesPerClass);
                _scaleBytes = 8L * byteScales.Length;
                break;
        }

        _rowScales = accelerator.Allocate1D(rowScales);
        _floatScales = accelerator.Allocate1D(floatScales);
        _byteScales = accelerator.Allocate1D(byteScales);
        _launches = Kernels(gpu, plan);
    }

    /// <summary>Output features (rows of Ŵ, columns of Y).</summary>
    public int Rows { get; }

    /// <summary>Input features (columns of Ŵ and X).</summary>
    public int Columns { get; }

    /// <summary>The element format of the uploaded weight.</summary>
    public NumberFormat Format { get; }

    /// <summary>Bytes of the device-resident weight: codes (rows padded to whole tiles) and scales.</summary>
    public long DeviceBytes => _codes.LengthInBytes + _scaleBytes;

    /// <summary>Bytes one product of <paramref name="batch"/> rows moves at least: the weight once (the groups of
    /// a batch share it through L2), X read and Y written.</summary>
    public long BytesRead(int batch) => DeviceBytes + 4L * batch * Columns;

    /// <summary>Bytes one product of <paramref name="batch"/> rows writes (Y).</summary>
    public long BytesWritten(int batch) => 4L * batch * Rows;

    /// <summary>Y = X·Ŵᵀ on device views: <paramref name="x"/> [batch, columns] and <paramref name="y"/> [batch, rows],
    /// row-major. Launches and returns (no synchronisation).</summary>
    /// <param name="x">X; its first element 16-byte aligned (an offset into a buffer a multiple of 4 floats).</param>
    /// <param name="batch">Rows of X and Y, 1 to <see cref="MaxBatch"/>.</param>
    /// <param name="y">Y, overwritten.</param>
    /// <exception cref="ArgumentException">A view is too short or misaligned, or the batch is out of range.</exception>
    /// <exception cref="ObjectDisposedException">The weight was disposed.</exception>
    public void Multiply(ArrayView<float> x, int batch, ArrayView<float> y)
    {
        CheckCall(x.Length, batch, y.Length);
        long offset = ((IContiguousArrayView)x).Index;
        if (offset % 4 != 0)
        {
            throw new ArgumentException($"X starts at element {offset} of its buffer; the kernel reads 16-byte quads, so it must start at a multiple of 4.", nameof(x));
        }

        int width = batch >= QuantizedGemvKernels.BatchTile ? QuantizedGemvKernels.BatchTile : batch == 3 ? 4 : batch;
        int batchTiles = (batch + width - 1) / width;
        int rowBlocks = (Rows + RowsPerGroup - 1) / RowsPerGroup;
        GemvSpec spec = _spec;
        spec.Batch = batch;
        spec.BatchTiles = batchTiles;
        Launch launch = _launches[width == 1 ? 0 : width == 2 ? 1 : 2];
        launch(new KernelConfig(rowBlocks * batchTiles, GroupThreads), _codes.View, _floatScales.View, _byteScales.View, _rowScales.View,
            x.SubView(0, (long)batch * Columns).Cast<Float4>(), y, spec);
    }

    /// <summary>Y = X·Ŵᵀ for host arrays: uploads X, runs, downloads Y (synchronous).</summary>
    /// <param name="x">X [batch, columns], row-major.</param>
    /// <param name="batch">Rows of X and Y, 1 to <see cref="MaxBatch"/>.</param>
    /// <param name="y">Y [batch, rows], overwritten.</param>
    /// <exception cref="ArgumentException">A span is too short, or the batch is out of range.</exception>
    /// <exception cref="ObjectDisposedException">The weight was disposed.</exception>
    public void Multiply(ReadOnlySpan<float> x, int batch, Span<float> y)
    {
        CheckCall(x.Length, batch, y.Length);
        Accelerator accelerator = _gpu.Accelerator;
        using MemoryBuffer1D<float, Stride1D.Dense> input = accelerator.Allocate1D<float>((long)batch * Columns);
        using MemoryBuffer1D<float, Stride1D.Dense> output = accelerator.Allocate1D<float>((long)batch * Rows);
        input.View.BaseView.CopyFromCPU(x[..(batch * Columns)]);
        Multiply(input.View, batch, output.View);
        output.View.BaseView.CopyToCPU(y[..(batch * Rows)]);
    }

    /// <summary>Releases the device buffers.</summary>
    public void Dispose()
    {
        if (_disposed)
        {
            return;
        }

        _disposed = true;
        _codes.Dispose();
        _floatScales.Dispose();
        _byteScales.Dispose();
        _rowScales.Dispose();
    }

    /// <summary>Whether <paramref name="weight"/> can be uploaded, and if not why.</summary>
    public static bool IsSupported(QuantizedTensor weight, out string reason)
    {
        ArgumentNullException.ThrowIfNull(weight);
        try
        {
            PlanFor(weight);
            reason = "";
            return true;
        }
        catch (NotSupportedException e)
        {
            reason = e.Message;
            return false;
        }
    }

    private void CheckCall(long xLength, int batch, long yLength)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        if (batch < 1 || batch > MaxBatch)
        {
            throw new ArgumentException($"Batch {batch} is outside 1..{MaxBatch}; split larger batches.", nameof(batch));
        }

        if (xLength < (long)batch * Columns)
        {
            throw new ArgumentException($"X holds {xLength} values; batch {batch} × {Columns} columns = {(long)batch * Columns} needed.", "x");
        }

        if (yLength < (long)batch * Rows)
        {
            throw new ArgumentException($"Y holds {yLength} values; batch {batch} × {Rows} rows = {(long)batch * Rows} needed.", "y");
        }
    }

    private enum CodeKind
    {
        Int4,
        Int8,
        Fp4,
        Fp8,
    }

    private enum ScaleKind
    {
        Row,
        Float,
        FloatWithZeros,
        E8M0,
        E4M3,
    }

    /// <summary>How a tensor maps onto the kernels: code decoding, scale placement, group width (0: one scale per row).</summary>
    private readonly record struct Plan(CodeKind Codes, ScaleKind Scales, int CodeBits, int GroupWidth);

    private static Plan PlanFor(QuantizedTensor weight)
    {
        string name = $"{weight.Format.Name} ({weight.Granularity})";
        if (weight.Columns % 4 != 0)
        {
            throw new NotSupportedException($"Quantized GEMV of {name} needs a multiple of 4 columns; the weight has {weight.Columns}.");
        }

        if (weight.Rows == 0 || weight.Columns == 0)
        {
            throw new NotSupportedException($"Quantized GEMV of {name} needs a non-empty weight; it is {weight.Rows}×{weight.Columns}.");
        }

        int groupWidth = weight.Granularity switch
        {
            PerChannelGranularity or PerTensorGranularity => 0,
            PerGroupGranularity g when g.Size >= weight.Columns => 0,
            PerGroupGranularity g when g.Size >= 4 && (g.Size & (g.Size - 1)) == 0 => g.Size,
            _ => throw new NotSupportedException($"Quantized GEMV of {name}: scales per channel, per tensor or per group of a power of two ≥ 4 columns only."),
        };
        ScaleKind floats = groupWidth == 0 ? ScaleKind.Row : ScaleKind.Float;
        switch (weight.Format)
        {
            case IntegerFormat { Bits: 4 or 8 } integer when weight.ZeroPoints.IsEmpty:
                return new Plan(integer.Bits == 4 ? CodeKind.Int4 : CodeKind.Int8, floats, integer.Bits, groupWidth);
            case IntegerFormat { Bits: 4 or 8 } integer:
                // Zero points vary per group: per-quad scales and zeros, a row's scale being one group as wide as any row.
                return new Plan(integer.Bits == 4 ? CodeKind.Int4 : CodeKind.Int8, ScaleKind.FloatWithZeros, integer.Bits,
                    groupWidth == 0 ? 1 << 30 : groupWidth);
            case FloatFormat fp when fp.Codec.Name == MiniFloatCodec.Fp8E4M3.Name:
                CheckFiniteFp8(weight, name);
                return new Plan(CodeKind.Fp8, floats, 8, groupWidth);
            case MicroscalingFormat { Element: MiniFloatCodec element } when element.Name == MiniFloatCodec.Fp4E2M1.Name && groupWidth > 0:
                return new Plan(CodeKind.Fp4, ScaleKind.E8M0, 4, groupWidth);
            case Nvfp4Format when groupWidth > 0:
                return new Plan(CodeKind.Fp4, ScaleKind.E4M3, 4, groupWidth);
            default:
                throw new NotSupportedException($"Quantized GEMV does not support {name}: INT4/INT8, FP8 E4M3, MXFP4 and NVFP4 only.");
        }
    }

    /// <summary>The kernel decodes finite E4M3 codes only; NaN codes (0x7F, 0xFF) appear only from non-saturating overflow.</summary>
    private static void CheckFiniteFp8(QuantizedTensor weight, string name)
    {
        foreach (byte code in weight.PackedCodesArray)
        {
            if ((code & 0x7F) == 0x7F)
            {
                throw new NotSupportedException($"Quantized GEMV of {name}: the weight holds NaN codes.");
            }
        }
    }

    /// <summary>
    /// Codes in the kernel's order: row r, tile t, lane l hold quads q = 32·i + l (i = 0 … quads − 1) of the tile, i.e.
    /// columns t·(128·quads) + 128·i + 4·l + j; 4-bit codes as nibble 4·i + j of the chunk, 8-bit codes as byte 4·i + j.
    /// </summary>
    private static CodeChunk[] ArrangeCodes(QuantizedTensor weight, int bits, bool integer, int quads, int tiles, int lanesPerClass)
    {
        int rows = weight.Rows, columns = weight.Columns;
        int tileColumns = 128 * quads;
        var chunks = new CodeChunk[(long)rows * tiles * Lanes];
        // Padding holds a code of value 0, since the kernel multiplies it: 0 for FP codes, the offset of symmetric
        // integer codes, and the zero point of the lane's group for asymmetric ones (set in the loop below).
        byte padding = !integer ? (byte)0 : bits == 8 ? (byte)0x80 : (byte)0x88;
        var grouped = (GroupedFormat)weight.Format;
        System.Threading.Tasks.Parallel.For(0, rows, () => new byte[columns], (r, _, codes) =>
        {
            Span<byte> bytes = System.Runtime.InteropServices.MemoryMarshal.AsBytes(chunks.AsSpan(r * tiles * Lanes, tiles * Lanes));
            bytes.Fill(padding);
            grouped.UnpackRow(weight.PackedCodesArray.AsSpan(r * weight.RowStride, weight.RowStride), codes);
            int end = weight.ZeroPointsArray is null ? columns : tiles * tileColumns;
            for (int c = 0; c < end; c++)
            {
                int t = c / tileColumns, within = c % tileColumns;
                int i = within / 128, lane = within % 128 / 4, j = c % 4;
                int chunk = (t * Lanes + lane) * QuantizedGemvKernels.ChunkBytes;
                int slot = 4 * i + j;
                byte code = c < columns ? codes[c] : PaddingZero(weight, r, t, i, lane / lanesPerClass, lanesPerClass, quads);
                if (bits == 8)
                {
                    bytes[chunk + slot] = code;
                }
                else
                {
                    int shift = 4 * (slot & 1);
                    ref byte target = ref bytes[chunk + slot / 2];
                    target = (byte)((target & ~(0xF << shift)) | ((code & 0xF) << shift));
                }
            }

            return codes;
        }, _ => { });
        return chunks;
    }

    /// <summary>The zero point a padding column's lane uses (its class's group), so the padding decodes to 0.</summary>
    private static byte PaddingZero(QuantizedTensor weight, int row, int tile, int quad, int scaleClass, int lanesPerClass, int quads)
    {
        int group = GroupOf(weight, row, tile, scaleClass, lanesPerClass, quads, quad, out bool inside);
        return inside ? weight.ZeroPointsArray![group] : (byte)0;
    }

    private static float[] RowScales(QuantizedTensor weight)
    {
        var scales = new float[weight.Rows];
        ReadOnlySpan<float> stored = weight.ScalesArray;
        for (int r = 0; r < scales.Length; r++)
        {
            scales[r] = stored.Length == 1 ? stored[0] : stored[r];
        }

        return scales;
    }

    /// <summary>The group of the quad at (row, tile, class, i): that of its first column (every column of a quad shares it).</summary>
    private static int GroupOf(QuantizedTensor weight, int row, int tile, int scaleClass, int lanesPerClass, int quads, int i, out bool inside)
    {
        int column = tile * 128 * quads + 128 * i + 4 * scaleClass * lanesPerClass;
        inside = column < weight.Columns;
        ScaleLayout layout = weight.Layout;
        return inside ? layout.GroupOf(row, column / layout.SegmentWidth) : 0;
    }

    private static Float4[] FloatScales(QuantizedTensor weight, int quads, int tiles, int classes, int lanesPerClass)
    {
        int perRow = tiles * classes * quads;
        var scales = new float[(long)weight.Rows * perRow];
        System.Threading.Tasks.Parallel.For(0, weight.Rows, r =>
        {
            int at = r * perRow;
            for (int t = 0; t < tiles; t++)
            for (int c = 0; c < classes; c++)
            for (int i = 0; i < quads; i++, at++)
            {
                int group = GroupOf(weight, r, t, c, lanesPerClass, quads, i, out bool inside);
                scales[at] = inside ? weight.ScalesArray[group] : 0f;
            }
        });

        var result = new Float4[scales.Length / 4];
        System.Runtime.InteropServices.MemoryMarshal.Cast<float, Float4>(scales).CopyTo(result);
        return result;
    }

    /// <summary>Zero points of asymmetric integer formats, one byte per quad (as the float scales), eight quads per word.</summary>
    private static ulong[] ZeroPoints(QuantizedTensor weight, int quads, int tiles, int classes, int lanesPerClass)
    {
        int perRow = tiles * classes;
        var words = new ulong[(long)weight.Rows * perRow];
        System.Threading.Tasks.Parallel.For(0, weight.Rows, r =>
        {
            int at = r * perRow;
            for (int t = 0; t < tiles; t++)
            for (int c = 0; c < classes; c++, at++)
            {
                ulong word = 0;
                for (int i = 0; i < quads; i++)
                {
                    int group = GroupOf(weight, r, t, c, lanesPerClass, quads, i, out bool inside);
                    word |= (ulong)(inside ? weight.ZeroPointsArray![group] : 0) << (8 * i);
                }

                words[at] = word;
            }
        });
        return words;
    }

    /// <summary>MX and NVFP4 scales as their storage bytes (E8M0 exponent, E4M3 code), eight quads per word; every
    /// scale is checked to decode back to itself.</summary>
    private static ulong[] ByteScales(QuantizedTensor weight, ScaleKind kind, int tiles, int classes, int lanesPerClass)
    {
        const int Quads = 8;
        int perRow = tiles * classes;
        var words = new ulong[(long)weight.Rows * perRow];
        System.Threading.Tasks.Parallel.For(0, weight.Rows, r =>
        {
            int at = r * perRow;
            for (int t = 0; t < tiles; t++)
            for (int c = 0; c < classes; c++, at++)
            {
                ulong word = 0;
                for (int i = 0; i < Quads; i++)
                {
                    int group = GroupOf(weight, r, t, c, lanesPerClass, Quads, i, out bool inside);
                    if (inside)
                    {
                        word |= (ulong)ScaleByte(weight, kind, group) << (8 * i);
                    }
                }

                words[at] = word;
            }
        });
        return words;
    }

    /// <summary>The device byte of a scale: the E4M3 code (NVFP4), or the E8M0 code + 1 (MX; the kernel reads it as 2^(code + 1 − 127),
    /// twice the scale, always a normal float; the quantizer's codes stay below 253, see <see cref="E8M0.SharedExponent"/>).</summary>
    private static byte ScaleByte(QuantizedTensor weight, ScaleKind kind, int group)
    {
        float scale = weight.ScalesArray[group];
        byte code = kind == ScaleKind.E8M0 ? E8M0.Encode(scale) : MiniFloatCodec.Fp8E4M3.EncodeGridValue(scale);
        float back = kind == ScaleKind.E8M0 ? E8M0.Decode(code) : NumericConversions.DecodeFloat8E4M3(code);
        bool exact = BitConverter.SingleToInt32Bits(back) == BitConverter.SingleToInt32Bits(scale) && float.IsFinite(back);
        if (!exact || (kind == ScaleKind.E8M0 && code >= 253))
        {
            throw new NotSupportedException($"Quantized GEMV of {weight.Format.Name}: scale {scale:R} of group {group} is not a {kind} value the kernel takes.");
        }

        return kind == ScaleKind.E8M0 ? (byte)(code + 1) : code;
    }

    private static Launch[] Kernels(GpuContext gpu, Plan plan) => (plan.Codes, plan.Scales) switch
    {
        (CodeKind.Int4, ScaleKind.Row) => KernelSet<QuantizedGemvKernels.Int4Codes, QuantizedGemvKernels.RowScale>(gpu),
        (CodeKind.Int4, ScaleKind.FloatWithZeros) => KernelSet<QuantizedGemvKernels.Int4Codes, QuantizedGemvKernels.FloatQuadScalesWithZeros>(gpu),
        (CodeKind.Int8, ScaleKind.FloatWithZeros) => KernelSet<QuantizedGemvKernels.Int8Codes, QuantizedGemvKernels.FloatQuadScalesWithZeros>(gpu),
        (CodeKind.Int4, _) => KernelSet<QuantizedGemvKernels.Int4Codes, QuantizedGemvKernels.FloatQuadScales>(gpu),
        (CodeKind.Int8, ScaleKind.Row) => KernelSet<QuantizedGemvKernels.Int8Codes, QuantizedGemvKernels.RowScale>(gpu),
        (CodeKind.Int8, _) => KernelSet<QuantizedGemvKernels.Int8Codes, QuantizedGemvKernels.FloatQuadScales>(gpu),
        (CodeKind.Fp8, ScaleKind.Row) => KernelSet<QuantizedGemvKernels.Fp8Codes, QuantizedGemvKernels.RowScale>(gpu),
        (CodeKind.Fp8, _) => KernelSet<QuantizedGemvKernels.Fp8Codes, QuantizedGemvKernels.FloatQuadScales>(gpu),
        (CodeKind.Fp4, ScaleKind.E8M0) => KernelSet<QuantizedGemvKernels.Fp4Codes, QuantizedGemvKernels.E8M0QuadScales>(gpu),
        _ => KernelSet<QuantizedGemvKernels.Fp4Codes, QuantizedGemvKernels.E4M3QuadScales>(gpu),
    };

    private static Launch[] KernelSet<TCodes, TScales>(GpuContext gpu)
        where TCodes : struct, ICodeDecoder
        where TScales : struct, IQuadScales =>
    [
        Kernel<TCodes, TScales, QuantizedGemvKernels.Width1>(gpu),
        Kernel<TCodes, TScales, QuantizedGemvKernels.Width2>(gpu),
        Kernel<TCodes, TScales, QuantizedGemvKernels.Width4>(gpu),
    ];

    private static Launch Kernel<TCodes, TScales, TBatch>(GpuContext gpu)
        where TCodes : struct, ICodeDecoder
        where TScales : struct, IQuadScales
        where TBatch : struct, IBatchWidth
    {
        var kernel = gpu.GetOrLoadKernel(KernelKey<TCodes, TScales, TBatch>.Key, a =>
            a.LoadStreamKernel<ArrayView<CodeChunk>, ArrayView<Float4>, ArrayView<ulong>, ArrayView<float>, ArrayView<Float4>, ArrayView<float>, GemvSpec>(
                QuantizedGemvKernels.Multiply<TCodes, TScales, TBatch>));
        return new Launch(kernel);
    }

    /// <summary>One cache key per compiled combination.</summary>
    private static class KernelKey<TCodes, TScales, TBatch>
    {
        public static readonly object Key = new();
    }
}
