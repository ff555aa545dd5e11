// Licensed under the MIT License. See LICENSE in the repository root.
// Part of the Compression library for .NET.

using System;
using System.Numerics.Tensors;
using Compression.Gpu.Runtime;
using Compression.Quantization.Formats;
using Compression.Tensors;
using ILGPU;
using ILGPU.Runtime;

namespace Compression.Quantization.Gpu;

/// <summary>
/// Round-to-nearest quantization on an accelerator (CUDA, OpenCL, or ILGPU's CPU simulator in tests), producing the
/// same <see cref="QuantizedTensor"/> as <see cref="RoundToNearestQuantizer"/>, bit for bit.
/// </summary>
/// <remarks>
/// <para>Every option of <see cref="RoundToNearestQuantizer"/> runs on the device: integer formats (symmetric,
/// restricted or full range, and asymmetric), FP8/FP6/FP4 (saturating or not), MXFP8/MXFP6/MXFP4/MXINT8, NVFP4, NF4
/// with double quantization, and ternary (BitNet absmean and TWN threshold); per-tensor, per-channel, per-group and
/// per-block granularity; float32, FP16 and BF16 scale storage; the clipping search.</para>
/// <para>Two sets of kernels: the fast ones (<see cref="QuantizeKernels"/>) for row-local groups with float32 scales
/// (INT8 per-channel, INT4 g128, FP8 per-channel, MX, NVFP4, …), and general ones (<see cref="GeneralKernels"/>,
/// <see cref="Nf4Kernels"/>) for the rest: statistics per row segment, then per group (merging the rows of a block),
/// then codes per packed byte. Float sums (ternary Σ|w|, NF4's mean absmax, the clipping error) are float64 in the
/// CPU's order, one thread per group, so they agree exactly. Within the fast set, the bandwidth kernels
/// (<see cref="QuadKernels"/>, <see cref="DequantizeKernels"/>) take the common shapes with 16-byte vector loads and
/// stores; they are generic over the input type (float32 or BF16 bits, <see cref="IWeightLoader"/>), the output type
/// of dequantization (<see cref="IDequantizedStore"/>) and the element coding (<see cref="IElementEncoder"/>,
/// <see cref="IElementDecoder"/>), so each launch runs straight-line code for one format.</para>
/// <para>BF16 weights quantize as their exact float32 widening does; dequantization writes float32 or BF16 (the float32
/// value rounded to nearest, ties to even).</para>
/// <para>On CUDA hardware the clipping search's error uses the device's <see cref="Math.Pow(double, double)"/>, which
/// may differ from the host's in the last bit; a near-tie between two shrink factors could then pick another one. The
/// simulator tests use the host's.</para>
/// </remarks>
public sealed class GpuRoundToNearestQuantizer
{
    /// <summary>Threads per row for row statistics: neighbouring threads read neighbouring floats.</summary>
    private const int Parts = 256;

    private static readonly object s_partialStats = new(), s_reduceMax = new(), s_tensorScale = new(), s_channelScales = new(),
        s_groupScales = new(), s_encodePack = new(), s_fusedGroups = new(), s_warpGroups = new(), s_warpEncode = new(), s_dequantize = new(),
        s_tensorScaleFromBits = new(), s_dequantizeBFloat16 = new(), s_widenBFloat16 = new();

    private static readonly object s_generalStats = new(), s_generalScales = new(), s_generalEncode = new(), s_generalDequantize = new(),
        s_nf4Offset = new(), s_nf4Double = new();
    private readonly GpuContext _gpu;

    /// <summary>Creates a quantizer on <paramref name="gpu"/>.</summary>
    /// <exception cref="NotSupportedException">The format is not one of the library's RTN formats.</exception>
    public GpuRoundToNearestQuantizer(GpuContext gpu, RtnOptions options)
    {
        ArgumentNullException.ThrowIfNull(gpu);
        ArgumentNullException.ThrowIfNull(options);
        _gpu = gpu;
        Options = options;
        CheckSupported(options);
    }

    /// <summary>The options.</summary>
    public RtnOptions Options { get; }

    /// <summary>Quantizes a host matrix: uploads it, runs the kernels, downloads the packed result.</summary>
    /// <exception cref="ArgumentException">The weight is not a finite matrix, or the options do not fit its shape.</exception>
    public QuantizedTensor Quantize(DenseTensor weight)
    {
        ArgumentNullException.ThrowIfNull(weight);
        CompressorArguments.Validate(new RoundToNearestQuantizer(Options), weight, CompressionContext.Default);
        Options.Validate(weight.Rows, weight.Columns);
        int rows = weight.Rows, columns = weight.Columns;
        var format = (GroupedFormat)Options.Format;
        var layout = new ScaleLayout(Options.EffectiveGranularity, rows, columns);
        int stride = format.PackedRowLength(columns);
        Accelerator accelerator = _gpu.Accelerator;
        using MemoryBuffer1D<float, Stride1D.Dense> input = accelerator.Allocate1D<float>(Math.Max(1, weight.Length));
        using MemoryBuffer1D<byte, Stride1D.Dense> packed = accelerator.Allocate1D<byte>(Math.Max(1, rows * stride));
        using MemoryBuffer1D<float, Stride1D.Dense> scales = accelerator.Allocate1D<float>(Math.Max(1, layout.GroupCount));
        using MemoryBuffer1D<byte, Stride1D.Dense> zeros = accelerator.Allocate1D<byte>(Math.Max(1, layout.GroupCount));
        int workspaceLength = WorkspaceLength(rows, columns);
        using MemoryBuffer1D<float, Stride1D.Dense> workspace = accelerator.Allocate1D<float>(workspaceLength);
        input.View.SubView(0, weight.Length).BaseView.CopyFromCPU(weight.Span);
        QuantizeOnDevice(input.View, rows, columns, packed.View, scales.View, zeros.View, workspace.View);

        bool general = !IsFast(Options);
        if (general && weight.Length > 0)
        {
            var overflow = new float[2];
            workspace.View.SubView(GeneralWorkspace.Of(layout).Overflow, 2).BaseView.CopyToCPU(overflow);
            if (overflow[0] != 0)
            {
                throw new ArgumentException($"Scale {overflow[1]} overflows {Options.ScaleStorage} storage; store scales as Float32.", "options");
            }
        }

        var packedHost = new byte[rows * stride];
        var scalesHost = new float[layout.GroupCount];
        packed.View.SubView(0, packedHost.Length).BaseView.CopyToCPU(packedHost);
        scales.View.SubView(0, scalesHost.Length).BaseView.CopyToCPU(scalesHost);
        byte[]? zerosHost = null;
        if (!Options.Symmetric)
        {
            zerosHost = new byte[layout.GroupCount];
            zeros.View.SubView(0, zerosHost.Length).BaseView.CopyToCPU(zerosHost);
        }

        float tensorScale = 1f;
        if (Options.Format is Nvfp4Format)
        {
            var one = new float[1];
            workspace.View.SubView(WorkspaceLength(rows) - 1, 1).BaseView.CopyToCPU(one);
            tensorScale = one[0];
        }

        DoubleQuantization? doubleQuantization = null;
        if (Options.Format is Nf4Format)
        {
            doubleQuantization = DownloadDoubleQuantization(layout, zeros, workspace);
        }

        ScaleEncoding encoding = Options.Format switch
        {
            MicroscalingFormat => ScaleEncoding.E8M0,
            Nvfp4Format => ScaleEncoding.Fp8E4M3,
            Nf4Format => ScaleEncoding.DoubleQuantizedInt8,
            _ => Options.ScaleStorage,
        };
        return new QuantizedTensor(Options.Format, Options.EffectiveGranularity, rows, columns, packedHost, stride, scalesHost, encoding, zerosHost,
            tensorScale, doubleQuantization);
    }

    private static DoubleQuantization DownloadDoubleQuantization(ScaleLayout layout, MemoryBuffer1D<byte, Stride1D.Dense> zeros,
        MemoryBuffer1D<float, Stride1D.Dense> workspace)
    {
        GeneralWorkspace parts = GeneralWorkspace.Of(layout);
        var codes = new sbyte[layout.GroupCount];
        var secondScales = new float[parts.SecondScaleCount];
        var offset = new float[1];
        if (codes.Length > 0)
        {
            zeros.View.SubView(0, codes.Length).BaseView.CopyToCPU(System.Runtime.InteropServices.MemoryMarshal.AsBytes(codes.AsSpan()));
            workspace.View.SubView(parts.SecondScales, secondScales.Length).BaseView.CopyToCPU(secondScales);
            workspace.View.SubView(parts.Offset, 1).BaseView.CopyToCPU(offset);
        }

        return new DoubleQuantization(codes, secondScales, offset[0]);
    }

    /// <summary>Floats of workspace <see cref="QuantizeOnDevice(ArrayView{float}, int, int, ArrayView{byte}, ArrayView{float}, ArrayView{byte}, ArrayView{float})"/> needs for <paramref name="rows"/> rows with the fast
    /// kernels (row-local groups, float32 scales, saturating FP, no clipping; MX and NVFP4 always). Other options need
    /// <see cref="WorkspaceLength(int, int)"/>.</summary>
    public static int WorkspaceLength(int rows) => 3 * rows * Parts + rows + 129;

    /// <summary>Floats of workspace <see cref="QuantizeOnDevice(ArrayView{float}, int, int, ArrayView{byte}, ArrayView{float}, ArrayView{byte}, ArrayView{float})"/> needs for a <paramref name="rows"/> × <paramref name="columns"/>
    /// matrix with these options (at least <see cref="WorkspaceLength(int)"/> for the fast kernels).</summary>
    public int WorkspaceLength(int rows, int columns) => IsFast(Options)
        ? WorkspaceLength(rows)
        : GeneralWorkspace.Of(new ScaleLayout(Options.EffectiveGranularity, rows, columns)).Length;

    /// <summary>
    /// Quantizes a matrix already on the device into device buffers (no transfers, no synchronisation: for pipelines
    /// and benchmarks). <paramref name="packed"/> holds rows × packed row length bytes, <paramref name="scales"/> and
    /// <paramref name="zeroPoints"/> one entry per group, <paramref name="workspace"/> <see cref="WorkspaceLength(int, int)"/>
    /// floats, 8-byte aligned (for NVFP4 its last element receives the tensor scale). The weight must be finite.
    /// </summary>
    /// <remarks>
    /// Options outside the fast kernels write more results: NF4 leaves its decoded block constants in
    /// <paramref name="scales"/>, their int8 codes in <paramref name="zeroPoints"/>, and the second-level scales and the
    /// offset in the workspace; FP16/BF16 storage flags a scale that overflows in the workspace instead of throwing
    /// (no synchronisation here). <see cref="Quantize"/> reads all of them back.
    /// </remarks>
    public void QuantizeOnDevice(ArrayView<float> weight, int rows, int columns, ArrayView<byte> packed, ArrayView<float> scales,
        ArrayView<byte> zeroPoints, ArrayView<float> workspace)
    {
        var layout = new ScaleLayout(Options.EffectiveGranularity, rows, columns);
        GpuFormatSpec spec = Spec(Options, layout);
        CheckQuantizeBuffers(weight.Length, rows, columns, layout, spec, packed, scales, zeroPoints, workspace);
        if (rows == 0 || columns == 0)
        {
            return;
        }

        if (!IsFast(Options))
        {
            QuantizeGeneral(weight, layout, packed, scales, zeroPoints, workspace);
            return;
        }

        if (TryOctetKernels<Float32Loader>(weight.SubView(0, (long)rows * columns).Cast<Float4>(), IsAligned(weight), rows, columns, packed, scales,
                zeroPoints, workspace, layout, spec))
        {
            return;
        }

        // Workspace: partial max |w|, min and max (rows × Parts each), row maxima, 128 second-level maxima, tensor scale.
        int partials = rows * Parts;
        ArrayView<float> partialAbs = workspace.SubView(0, partials);
        ArrayView<float> partialMin = workspace.SubView(partials, partials);
        ArrayView<float> partialMax = workspace.SubView(2L * partials, partials);
        ArrayView<float> rowMax = workspace.SubView(3L * partials, rows);
        ArrayView<float> secondLevel = workspace.SubView(3L * partials + rows, 128);
        ArrayView<float> tensorScale = workspace.SubView(WorkspaceLength(rows) - 1, 1);
        bool perChannel = layout.SegmentsPerRow == 1 && layout.SegmentWidth >= columns;
        if (Options.Format is Nvfp4Format || perChannel)
        {
            var partialStats = _gpu.GetOrLoadKernel(s_partialStats, a =>
                a.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, int, int>(QuantizeKernels.PartialStats));
            partialStats(partials, weight, partialAbs, partialMin, partialMax, columns, Parts);
        }

        if (Options.Format is Nvfp4Format)
        {
            var reduce = _gpu.GetOrLoadKernel(s_reduceMax, a => a.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<float>, int, int>(QuantizeKernels.ReduceMax));
            var final = _gpu.GetOrLoadKernel(s_tensorScale, a => a.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<float>, int>(QuantizeKernels.TensorScale));
            int chunk = (rows + 127) / 128;
            reduce(rows, partialAbs, rowMax, partials, Parts);
            reduce(128, rowMax, secondLevel, rows, chunk);
            final(1, secondLevel, tensorScale, 128);
        }

        // Warp kernels: one thread per weight, coalesced; they need byte- or nibble-wide codes, whole groups per row
        // and (for in-warp groups) a warp at least as wide as a group. Otherwise the per-group/per-byte kernels.
        int total = rows * columns;
        int extent = (total + 31) / 32 * 32;
        bool packable = (spec.CodeBits == 8 || (spec.CodeBits == 4 && columns % 2 == 0)) && spec.Stride * 8 == columns * spec.CodeBits;
        bool groupsInWarp = packable && layout.SegmentWidth is 16 or 32 && layout.SegmentWidth <= _gpu.Accelerator.WarpSize &&
                            columns % layout.SegmentWidth == 0 && spec.Element != GpuElementKind.IntegerAsymmetric && !perChannel &&
                            // NVFP4's scale (an E4M3 rounding) costs more than its 16 encodes: once per group, not per lane.
                            spec.ScaleKind != GpuScaleKind.Nvfp4;
        if (groupsInWarp)
        {
            var warpGroups = _gpu.GetOrLoadKernel(s_warpGroups, a =>
                a.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<byte>, GpuFormatSpec, int>(QuantizeKernels.WarpGroups));
            warpGroups(extent, weight, scales, tensorScale, packed, spec, total);
            return;
        }

        if (perChannel && packable && _gpu.Accelerator.WarpSize >= 2)
        {
            var channelScales = _gpu.GetOrLoadKernel(s_channelScales, a =>
                a.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, int, ArrayView<float>, ArrayView<byte>, ArrayView<float>, GpuFormatSpec>(QuantizeKernels.ChannelScales));
            var warpEncode = _gpu.GetOrLoadKernel(s_warpEncode, a =>
                a.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<byte>, ArrayView<float>, ArrayView<byte>, GpuFormatSpec, int>(QuantizeKernels.WarpEncode));
            channelScales(rows, partialAbs, partialMin, partialMax, Parts, scales, zeroPoints, tensorScale, spec);
            warpEncode(extent, weight, scales, zeroPoints, tensorScale, packed, spec, total);
            return;
        }

        if (perChannel)
        {
            var channelScales = _gpu.GetOrLoadKernel(s_channelScales, a =>
                a.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, int, ArrayView<float>, ArrayView<byte>, ArrayView<float>, GpuFormatSpec>(QuantizeKernels.ChannelScales));
            channelScales(rows, partialAbs, partialMin, partialMax, Parts, scales, zeroPoints, tensorScale, spec);
        }
        else if (layout.SegmentWidth <= 128 && layout.SegmentWidth * spec.CodeBits % 8 == 0)
        {
            var fused = _gpu.GetOrLoadKernel(s_fusedGroups, a =>
                a.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<byte>, ArrayView<float>, ArrayView<byte>, GpuFormatSpec>(QuantizeKernels.FusedGroups));
            fused(layout.GroupCount, weight, scales, zeroPoints, tensorScale, packed, spec);
            return;
        }
        else
        {
            var groupScales = _gpu.GetOrLoadKernel(s_groupScales, a =>
                a.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<byte>, ArrayView<float>, GpuFormatSpec>(QuantizeKernels.GroupScales));
            groupScales(layout.GroupCount, weight, scales, zeroPoints, tensorScale, spec);
        }

        var encodePack = _gpu.GetOrLoadKernel(s_encodePack, a =>
            a.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<byte>, ArrayView<float>, ArrayView<byte>, GpuFormatSpec>(QuantizeKernels.EncodePack));
        encodePack(rows * spec.Stride, weight, scales, zeroPoints, tensorScale, packed, spec);
    }

    /// <summary>
    /// Quantizes a BF16 matrix already on the device (raw BF16 bits, row-major) into device buffers: the codes and
    /// scales of the float32 widening of its values (exact), as <see cref="QuantizeOnDevice(ArrayView{float}, int, int, ArrayView{byte},
    /// ArrayView{float}, ArrayView{byte}, ArrayView{float})"/> would give for them, bit for bit; the buffers are the same.
    /// </summary>
    /// <remarks>
    /// The fast kernels (INT8/FP8 per-channel, row-local groups of 16 to 128: INT4 g128, MX, NVFP4; columns a multiple
    /// of 8, a 16-byte aligned view) read the BF16 values directly, with no transfers and no synchronisation. Other
    /// options and shapes widen the matrix into a temporary float32 buffer first, then synchronise before freeing it.
    /// </remarks>
    /// <exception cref="ArgumentException">A buffer is smaller than the shape requires.</exception>
    public void QuantizeOnDevice(ArrayView<ushort> weight, int rows, int columns, ArrayView<byte> packed, ArrayView<float> scales,
        ArrayView<byte> zeroPoints, ArrayView<float> workspace)
    {
        var layout = new ScaleLayout(Options.EffectiveGranularity, rows, columns);
        GpuFormatSpec spec = Spec(Options, layout);
        CheckQuantizeBuffers(weight.Length, rows, columns, layout, spec, packed, scales, zeroPoints, workspace);
        long total = (long)rows * columns;
        if (total == 0)
        {
            return;
        }

        if (IsFast(Options) && total % 8 == 0 &&
            TryOctetKernels<BFloat16Loader>(weight.SubView(0, total).Cast<Float4>(), IsAligned(weight), rows, columns, packed, scales, zeroPoints,
                workspace, layout, spec))
        {
            return;
        }

        Accelerator accelerator = _gpu.Accelerator;
        using MemoryBuffer1D<float, Stride1D.Dense> widened = accelerator.Allocate1D<float>(total);
        var widen = _gpu.GetOrLoadKernel(s_widenBFloat16, a =>
            a.LoadAutoGroupedStreamKernel<Index1D, ArrayView<ushort>, ArrayView<float>>(QuantizeKernels.WidenBFloat16));
        widen((int)total, weight.SubView(0, total), widened.View);
        QuantizeOnDevice(widened.View, rows, columns, packed, scales, zeroPoints, workspace);
        accelerator.Synchronize();
    }

    private void CheckQuantizeBuffers(long weightLength, int rows, int columns, ScaleLayout layout, GpuFormatSpec spec, ArrayView<byte> packed,
        ArrayView<float> scales, ArrayView<byte> zeroPoints, ArrayView<float> workspace)
    {
        long total = (long)rows * columns;
        if (total > int.MaxValue)
        {
            throw new ArgumentException($"A {rows} × {columns} matrix has more than {int.MaxValue} elements, the most the kernels index.", nameof(rows));
        }

        CheckLength(weightLength, total, "weight");
        CheckLength(packed.Length, (long)rows * spec.Stride, nameof(packed));
        CheckLength(scales.Length, layout.GroupCount, nameof(scales));
        CheckLength(zeroPoints.Length, layout.GroupCount, nameof(zeroPoints));
        CheckLength(workspace.Length, WorkspaceLength(rows, columns), nameof(workspace));
    }

    private static void CheckLength(long actual, long needed, string name)
    {
        if (actual < needed)
        {
            throw new ArgumentException($"The device buffer holds {actual} elements; the shape needs {needed}.", name);
        }
    }

    /// <summary>Whether a view starts on a 16-byte boundary (buffers do; a sub-view may not), as the vector loads need.</summary>
    private static bool IsAligned<T>(ArrayView<T> view)
        where T : unmanaged => ((IContiguousArrayView)view).IndexInBytes % 16 == 0;

    /// <summary>
    /// The bandwidth path (<see cref="QuadKernels"/>): eight weights per load step, one store of eight codes. Taken for
    /// byte and nibble codes when rows split into whole octets (and whole groups): per-channel scales, and symmetric
    /// row-local groups of 16 to 128 (MX, NVFP4, per-group integer and FP). Returns false to leave other shapes to
    /// the general kernels.
    /// </summary>
    private bool TryOctetKernels<TLoader>(ArrayView<Float4> words, bool aligned, int rows, int columns, ArrayView<byte> packed, ArrayView<float> scales,
        ArrayView<byte> zeroPoints, ArrayView<float> workspace, ScaleLayout layout, GpuFormatSpec spec)
        where TLoader : struct, IWeightLoader
    {
        Accelerator accelerator = _gpu.Accelerator;
        bool perChannel = layout.SegmentsPerRow == 1 && layout.SegmentWidth >= columns && layout.GroupRows == rows;
        bool groups = !perChannel && layout.GroupRows == rows && layout.SegmentWidth is 16 or 32 or 64 or 128 && columns % layout.SegmentWidth == 0 &&
                      spec.Element != GpuElementKind.IntegerAsymmetric && layout.SegmentWidth / 16 <= accelerator.WarpSize;
        // The codes go out as 8-byte (4-byte) words, so the packed view must be aligned too.
        if (!aligned || !IsAligned(packed) || columns % 8 != 0 || spec.CodeBits is not (8 or 4) || !(perChannel || groups) ||
            (perChannel && spec.ScaleKind is not (GpuScaleKind.Integer or GpuScaleKind.FloatMax)) || accelerator.WarpSize < 32)
        {
            return false;
        }

        // The element coding is a type parameter of the kernels (IElementEncoder): one compiled kernel per kind.
        return spec.Element switch
        {
            GpuElementKind.IntegerSymmetric => RunOctets<TLoader, IntegerSymmetricEncoder>(words, rows, columns, packed, scales, zeroPoints, workspace, spec, perChannel),
            GpuElementKind.IntegerAsymmetric => RunOctets<TLoader, IntegerAsymmetricEncoder>(words, rows, columns, packed, scales, zeroPoints, workspace, spec, perChannel),
            GpuElementKind.MxInt8 => RunOctets<TLoader, MxInt8Encoder>(words, rows, columns, packed, scales, zeroPoints, workspace, spec, perChannel),
            _ when spec.ScaleKind == GpuScaleKind.SharedExponent =>
                RunOctets<TLoader, SharedExponentEncoder>(words, rows, columns, packed, scales, zeroPoints, workspace, spec, perChannel),
            _ => RunOctets<TLoader, MiniFloatEncoder>(words, rows, columns, packed, scales, zeroPoints, workspace, spec, perChannel),
        };
    }

    private bool RunOctets<TLoader, TEncoder>(ArrayView<Float4> words, int rows, int columns, ArrayView<byte> packed, ArrayView<float> scales,
        ArrayView<byte> zeroPoints, ArrayView<float> workspace, GpuFormatSpec spec, bool perChannel)
        where TLoader : struct, IWeightLoader
        where TEncoder : struct, IElementEncoder
    {
        Accelerator accelerator = _gpu.Accelerator;
        long total = (long)rows * columns;
        int octets = (int)(total / 8);
        int maxThreads = Math.Min(1024, accelerator.MaxNumThreadsPerGroup) / accelerator.WarpSize * accelerator.WarpSize;
        if (perChannel)
        {
            var rowOctets = _gpu.GetOrLoadKernel(KernelKeys<TLoader, TEncoder>.RowOctets, a =>
                a.LoadStreamKernel<ArrayView<Float4>, ArrayView<float>, ArrayView<byte>, ArrayView<ulong>, ArrayView<uint>, GpuFormatSpec, int>(
                    QuadKernels.RowOctets<TLoader, TEncoder>));
            // Enough threads that each holds at most OctetsInRegisters octets of its row (a whole warp at least).
            int octetsPerRow = columns / 8;
            int wanted = (octetsPerRow + QuadKernels.OctetsInRegisters - 1) / QuadKernels.OctetsInRegisters;
            int threads = Math.Min(maxThreads, Math.Max(accelerator.WarpSize, (wanted + accelerator.WarpSize - 1) / accelerator.WarpSize * accelerator.WarpSize));
            ArrayView<ulong> packed8 = spec.CodeBits == 8 ? packed.SubView(0, total).Cast<ulong>() : default;
            ArrayView<uint> packed4 = spec.CodeBits == 4 ? packed.SubView(0, total / 2).Cast<uint>() : default;
            rowOctets(new KernelConfig(rows, threads), words, scales, zeroPoints, packed8, packed4, spec, octetsPerRow);
            return true;
        }

        ArrayView<float> tensorScale = workspace.SubView(WorkspaceLength(rows) - 1, 1);
        if (spec.ScaleKind == GpuScaleKind.Nvfp4)
        {
            ArrayView<int> absMaxBits = workspace.SubView(0, 1).Cast<int>();
            var tensorAbsMax = _gpu.GetOrLoadKernel(KernelKeys<TLoader, TEncoder>.TensorAbsMax, a =>
                a.LoadStreamKernel<ArrayView<Float4>, ArrayView<int>, int>(QuadKernels.TensorAbsMax<TLoader>));
            var fromBits = _gpu.GetOrLoadKernel(s_tensorScaleFromBits, a =>
                a.LoadAutoGroupedStreamKernel<Index1D, ArrayView<int>, ArrayView<float>>(QuadKernels.TensorScaleFromBits));
            absMaxBits.MemSetToZero();
            int groupSize = Math.Min(256, maxThreads);
            // One resident wave (every SM full): each thread then loops over its share, two octets per step.
            int gridSize = Math.Max(1, Math.Min((octets / 2 + groupSize - 1) / groupSize, accelerator.MaxNumThreads / groupSize));
            tensorAbsMax(new KernelConfig(gridSize, groupSize), words, absMaxBits, octets);
            fromBits(1, absMaxBits, tensorScale);
        }

        var groupSixteens = _gpu.GetOrLoadKernel(KernelKeys<TLoader, TEncoder>.GroupSixteens, a =>
            a.LoadAutoGroupedStreamKernel<Index1D, ArrayView<Float4>, ArrayView<float>, ArrayView<float>, ArrayView<ulong>, GpuFormatSpec, int>(
                QuadKernels.GroupSixteens<TLoader, TEncoder>));
        int sixteens = octets / 2;
        groupSixteens((sixteens + 31) / 32 * 32, words, scales, tensorScale, packed.SubView(0, total * spec.CodeBits / 8).Cast<ulong>(), spec, sixteens);
        return true;
    }

    /// <summary>Kernel cache keys per weight loader and element coding (each instantiation is its own kernel).</summary>
    private static class KernelKeys<TLoader, TEncoder>
        where TLoader : struct, IWeightLoader
        where TEncoder : struct, IElementEncoder
    {
        public static readonly object RowOctets = new(), GroupSixteens = new(), TensorAbsMax = new();
    }

    /// <summary>Kernel cache keys per output type and element decoding of <see cref="DequantizeKernels.Chunks"/>.</summary>
    private static class DequantizeKeys<TStore, TDecoder>
        where TStore : struct, IDequantizedStore
        where TDecoder : struct, IElementDecoder
    {
        public static readonly object Chunks = new();
    }

    /// <summary>Decodes a quantized tensor on the device; equals <see cref="CompressedTensor.Decompress"/> bit for bit.</summary>
    public DenseTensor Dequantize(QuantizedTensor tensor)
    {
        ArgumentNullException.ThrowIfNull(tensor);
        if (tensor.Format != Options.Format || tensor.Granularity != Options.EffectiveGranularity)
        {
            throw new ArgumentException($"The tensor is {tensor.Format} {tensor.Granularity}; this quantizer handles {Options.Format} {Options.EffectiveGranularity}.", nameof(tensor));
        }

        var result = new DenseTensor(tensor.Rows, tensor.Columns);
        if (result.Length == 0)
        {
            return result;
        }

        Accelerator accelerator = _gpu.Accelerator;
        using MemoryBuffer1D<byte, Stride1D.Dense> packed = accelerator.Allocate1D(tensor.PackedCodesArray);
        using MemoryBuffer1D<float, Stride1D.Dense> scales = accelerator.Allocate1D(tensor.ScalesArray);
        using MemoryBuffer1D<byte, Stride1D.Dense> zeros = accelerator.Allocate1D(tensor.ZeroPointsArray ?? new byte[1]);
        using MemoryBuffer1D<float, Stride1D.Dense> global = accelerator.Allocate1D(new[] { tensor.GlobalScale });
        using MemoryBuffer1D<float, Stride1D.Dense> output = accelerator.Allocate1D<float>(result.Length);
        DequantizeOnDevice(packed.View, scales.View, zeros.View, global.View, tensor.Rows, tensor.Columns, output.View);
        output.View.BaseView.CopyToCPU(result.Span);
        return result;
    }

    /// <summary>Whether the GPU kernels cover <paramref name="options"/> (what the constructor accepts).</summary>
    public static bool Supports(RtnOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        return options.Format is IntegerFormat or FloatFormat or MicroscalingFormat or Nvfp4Format or Nf4Format or TernaryFormat &&
               !(options.Clipping is not null && options.Format is FloatFormat or MicroscalingFormat or Nvfp4Format);
    }

    /// <summary>
    /// Decodes codes already on the device into float32 (no transfers, no synchronisation): the values
    /// <see cref="CompressedTensor.Decompress"/> gives for a <see cref="QuantizedTensor"/> of these options with these
    /// codes and scales, bit for bit. <paramref name="packed"/> holds rows × packed row length bytes,
    /// <paramref name="scales"/> one float32 per group (for NF4, the decoded block constants), <paramref name="zeroPoints"/>
    /// one byte per group (read only by asymmetric integer formats), <paramref name="tensorScale"/> NVFP4's tensor scale
    /// (one float; read by NVFP4 only, may be empty otherwise), as <see cref="QuantizeOnDevice(ArrayView{float}, int, int,
    /// ArrayView{byte}, ArrayView{float}, ArrayView{byte}, ArrayView{float})"/> leaves them (its tensor scale is the
    /// workspace's last element).
    /// </summary>
    /// <remarks>The formats of the fast quantize kernels run a bandwidth kernel (32 codes per thread, 16-byte loads and
    /// stores) when columns are a multiple of 32 and views 16-byte aligned; other shapes one thread per element.</remarks>
    /// <exception cref="ArgumentException">A buffer is smaller than the shape requires.</exception>
    public void DequantizeOnDevice(ArrayView<byte> packed, ArrayView<float> scales, ArrayView<byte> zeroPoints, ArrayView<float> tensorScale, int rows,
        int columns, ArrayView<float> destination)
    {
        var layout = new ScaleLayout(Options.EffectiveGranularity, rows, columns);
        CheckDequantizeBuffers(packed, scales, zeroPoints, tensorScale, layout, destination.Length);
        if ((long)rows * columns == 0)
        {
            return;
        }

        if (!IsFast(Options))
        {
            var general = _gpu.GetOrLoadKernel(s_generalDequantize, a =>
                a.LoadAutoGroupedStreamKernel<Index1D, ArrayView<byte>, ArrayView<float>, ArrayView<byte>, ArrayView<float>, GeneralSpec>(GeneralKernels.Dequantize));
            general(rows * columns, packed, scales, zeroPoints, destination, GeneralSpecOf(Options, layout));
            return;
        }

        GpuFormatSpec spec = Spec(Options, layout);
        if (TryDequantizeChunks<Float32Store>(packed, scales, zeroPoints, tensorScale, layout, spec, destination.Cast<byte>(), IsAligned(destination)))
        {
            return;
        }

        var kernel = _gpu.GetOrLoadKernel(s_dequantize, a =>
            a.LoadAutoGroupedStreamKernel<Index1D, ArrayView<byte>, ArrayView<float>, ArrayView<byte>, ArrayView<float>, ArrayView<float>, GpuFormatSpec>(QuantizeKernels.Dequantize));
        kernel(rows * columns, packed, scales, zeroPoints, tensorScale, destination, spec);
    }

    /// <summary>
    /// Decodes codes already on the device into BF16 (raw bits; no transfers, no synchronisation): the float32 values of
    /// <see cref="DequantizeOnDevice(ArrayView{byte}, ArrayView{float}, ArrayView{byte}, ArrayView{float}, int, int, ArrayView{float})"/>,
    /// each rounded to the nearest BF16, ties to even (<see cref="NumericConversions.SingleToBFloat16Bits"/>), bit for bit.
    /// </summary>
    /// <exception cref="ArgumentException">A buffer is smaller than the shape requires.</exception>
    /// <exception cref="NotSupportedException">The options are outside the fast kernels (NF4, ternary, per-tensor or
    /// per-block scales, FP16/BF16 scale storage, clipping): decode to float32 instead.</exception>
    public void DequantizeOnDevice(ArrayView<byte> packed, ArrayView<float> scales, ArrayView<byte> zeroPoints, ArrayView<float> tensorScale, int rows,
        int columns, ArrayView<ushort> destination)
    {
        if (!IsFast(Options))
        {
            throw new NotSupportedException($"GPU dequantization to BF16 covers the fast formats; {Options.Format} {Options.EffectiveGranularity} decodes to float32 only.");
        }

        var layout = new ScaleLayout(Options.EffectiveGranularity, rows, columns);
        CheckDequantizeBuffers(packed, scales, zeroPoints, tensorScale, layout, destination.Length);
        if ((long)rows * columns == 0)
        {
            return;
        }

        GpuFormatSpec spec = Spec(Options, layout);
        if (TryDequantizeChunks<BFloat16Store>(packed, scales, zeroPoints, tensorScale, layout, spec, destination.Cast<byte>(), IsAligned(destination)))
        {
            return;
        }

        var kernel = _gpu.GetOrLoadKernel(s_dequantizeBFloat16, a =>
            a.LoadAutoGroupedStreamKernel<Index1D, ArrayView<byte>, ArrayView<float>, ArrayView<byte>, ArrayView<float>, ArrayView<ushort>, GpuFormatSpec>(
                QuantizeKernels.DequantizeBFloat16));
        kernel(rows * columns, packed, scales, zeroPoints, tensorScale, destination, spec);
    }

    private void CheckDequantizeBuffers(ArrayView<byte> packed, ArrayView<float> scales, ArrayView<byte> zeroPoints, ArrayView<float> tensorScale,
        ScaleLayout layout, long destinationLength)
    {
        long total = (long)layout.Rows * layout.Columns;
        if (total > int.MaxValue)
        {
            throw new ArgumentException($"A {layout.Rows} × {layout.Columns} matrix has more than {int.MaxValue} elements, the most the kernels index.", "rows");
        }

        var format = (GroupedFormat)Options.Format;
        CheckLength(packed.Length, (long)layout.Rows * format.PackedRowLength(layout.Columns), nameof(packed));
        CheckLength(scales.Length, layout.GroupCount, nameof(scales));
        if (!Options.Symmetric && Options.Format is IntegerFormat)
        {
            CheckLength(zeroPoints.Length, layout.GroupCount, nameof(zeroPoints));
        }

        if (Options.Format is Nvfp4Format)
        {
            CheckLength(tensorScale.Length, 1, nameof(tensorScale));
        }

        CheckLength(destinationLength, total, "destination");
    }

    /// <summary>The bandwidth kernel of dequantization (<see cref="DequantizeKernels.Chunks"/>), when the shape allows it.</summary>
    private bool TryDequantizeChunks<TStore>(ArrayView<byte> packed, ArrayView<float> scales, ArrayView<byte> zeroPoints, ArrayView<float> tensorScale,
        ScaleLayout layout, GpuFormatSpec spec, ArrayView<byte> destinationBytes, bool destinationAligned)
        where TStore : struct, IDequantizedStore
    {
        int rows = layout.Rows, columns = layout.Columns;
        bool perChannel = layout.SegmentsPerRow == 1 && layout.SegmentWidth >= columns && layout.GroupRows == rows;
        bool groups = !perChannel && layout.GroupRows == rows && layout.SegmentWidth is 16 or 32 or 64 or 128;
        long total = (long)rows * columns;
        if (!(perChannel || groups) || columns % DequantizeKernels.ChunkWidth != 0 || spec.CodeBits is not (8 or 4) || rows > 65535 ||
            !destinationAligned || !IsAligned(packed))
        {
            return false;
        }

        int groupShift = perChannel ? 30 : System.Numerics.BitOperations.Log2((uint)layout.SegmentWidth);
        ArrayView<uint> codes = packed.SubView(0, total * spec.CodeBits / 8).Cast<uint>();
        ArrayView<Float4> output = destinationBytes.SubView(0, total * (typeof(TStore) == typeof(Float32Store) ? sizeof(float) : sizeof(ushort))).Cast<Float4>();
        switch (spec.Element)
        {
            case GpuElementKind.IntegerSymmetric:
                RunChunks<TStore, IntegerSymmetricDecoder>(codes, scales, zeroPoints, tensorScale, output, spec, rows, columns, groupShift);
                break;
            case GpuElementKind.IntegerAsymmetric:
                RunChunks<TStore, IntegerAsymmetricDecoder>(codes, scales, zeroPoints, tensorScale, output, spec, rows, columns, groupShift);
                break;
            case GpuElementKind.MxInt8:
                RunChunks<TStore, MxInt8Decoder>(codes, scales, zeroPoints, tensorScale, output, spec, rows, columns, groupShift);
                break;
            default:
                RunChunks<TStore, MiniFloatDecoder>(codes, scales, zeroPoints, tensorScale, output, spec, rows, columns, groupShift);
                break;
        }

        return true;
    }

    private void RunChunks<TStore, TDecoder>(ArrayView<uint> codes, ArrayView<float> scales, ArrayView<byte> zeroPoints, ArrayView<float> tensorScale,
        ArrayView<Float4> output, GpuFormatSpec spec, int rows, int columns, int groupShift)
        where TStore : struct, IDequantizedStore
        where TDecoder : struct, IElementDecoder
    {
        Accelerator accelerator = _gpu.Accelerator;
        var kernel = _gpu.GetOrLoadKernel(DequantizeKeys<TStore, TDecoder>.Chunks, a =>
            a.LoadStreamKernel<ArrayView<uint>, ArrayView<float>, ArrayView<byte>, ArrayView<float>, ArrayView<Float4>, GpuFormatSpec, int, int>(
                DequantizeKernels.Chunks<TStore, TDecoder>));
        int chunksPerRow = columns / DequantizeKernels.ChunkWidth;
        int maxThreads = Math.Min(256, accelerator.MaxNumThreadsPerGroup) / accelerator.WarpSize * accelerator.WarpSize;
        int threads = Math.Min(maxThreads, (chunksPerRow + accelerator.WarpSize - 1) / accelerator.WarpSize * accelerator.WarpSize);
        int blocksPerRow = (chunksPerRow + threads - 1) / threads;
        kernel(new KernelConfig(new Index2D(blocksPerRow, rows), new Index2D(threads, 1)), codes, scales, zeroPoints, tensorScale, output, spec, chunksPerRow,
            groupShift);
    }

    private static void CheckSupported(RtnOptions options)
    {
        if (options.Format is not (IntegerFormat or FloatFormat or MicroscalingFormat or Nvfp4Format or Nf4Format or TernaryFormat))
        {
            throw new NotSupportedException($"GPU quantization: {options.Format} is not a round-to-nearest format of this library. Use RoundToNearestQuantizer.");
        }

        if (options.Clipping is not null && options.Format is FloatFormat or MicroscalingFormat or Nvfp4Format)
        {
            throw new NotSupportedException(
                $"GPU quantization: the scale search of {options.Format} runs on the CPU only (RoundToNearestQuantizer); the GPU runs the integer range search.");
        }
    }

    /// <summary>Whether the fast kernels apply: row-local groups whose scale follows from their absmax or range alone,
    /// stored as float32, with saturating FP. MX and NVFP4 fix their own scale type and always saturate.</summary>
    internal static bool IsFast(RtnOptions options) => options.Format switch
    {
        MicroscalingFormat or Nvfp4Format => options.Clipping is null,
        IntegerFormat or FloatFormat => options.EffectiveGranularity is PerChannelGranularity or PerGroupGranularity &&
                                        options.ScaleStorage == ScaleEncoding.Float32 && options.Clipping is null &&
                                        (options.Saturate || options.Format is IntegerFormat),
        _ => false,
    };

    /// <summary>The general kernels: segment statistics, group scales (NF4: double quantization), codes per packed byte.</summary>
    private void QuantizeGeneral(ArrayView<float> weight, ScaleLayout layout, ArrayView<byte> packed, ArrayView<float> scales,
        ArrayView<byte> zeroPoints, ArrayView<float> workspace)
    {
        GeneralSpec spec = GeneralSpecOf(Options, layout);
        GeneralWorkspace parts = GeneralWorkspace.Of(layout);
        int segments = parts.Segments;
        ArrayView<double> sums = workspace.SubView(0, 2L * segments).Cast<double>();
        ArrayView<float> absMax = workspace.SubView(parts.AbsMax, segments);
        ArrayView<float> min = workspace.SubView(parts.AbsMax + segments, segments);
        ArrayView<float> max = workspace.SubView(parts.AbsMax + 2L * segments, segments);
        ArrayView<float> thresholds = workspace.SubView(parts.Thresholds, layout.GroupCount);
        ArrayView<float> overflow = workspace.SubView(parts.Overflow, 2);
        overflow.MemSetToZero();

        var stats = _gpu.GetOrLoadKernel(s_generalStats, a =>
            a.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<double>, GeneralSpec>(
                GeneralKernels.SegmentStats));
        var groupScales = _gpu.GetOrLoadKernel(s_generalScales, a =>
            a.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<double>, ArrayView<float>,
                ArrayView<byte>, ArrayView<float>, ArrayView<float>, GeneralSpec>(GeneralKernels.GroupScales));
        var encode = _gpu.GetOrLoadKernel(s_generalEncode, a =>
            a.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<byte>, ArrayView<float>, ArrayView<byte>, GeneralSpec>(
                GeneralKernels.EncodePack));
        stats(segments, weight, absMax, min, max, sums, spec);
        groupScales(layout.GroupCount, weight, absMax, min, max, sums, scales, zeroPoints, thresholds, overflow, spec);
        if (Options.Format is Nf4Format)
        {
            var offset = _gpu.GetOrLoadKernel(s_nf4Offset, a =>
                a.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<float>, int>(Nf4Kernels.Offset));
            var doubleQuantize = _gpu.GetOrLoadKernel(s_nf4Double, a =>
                a.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<byte>, ArrayView<float>, ArrayView<float>, int>(Nf4Kernels.DoubleQuantize));
            ArrayView<float> offsetView = workspace.SubView(parts.Offset, 1);
            offset(1, scales, offsetView, layout.GroupCount);
            doubleQuantize(parts.SecondScaleCount, scales, zeroPoints, workspace.SubView(parts.SecondScales, parts.SecondScaleCount), offsetView,
                layout.GroupCount);
        }

        encode(layout.Rows * spec.Stride, weight, scales, zeroPoints, thresholds, packed, spec);
    }

    private static GeneralSpec GeneralSpecOf(RtnOptions options, ScaleLayout layout)
    {
        var format = (GroupedFormat)options.Format;
        var spec = new GeneralSpec
        {
            CodeBits = format.CodeBits,
            Rows = layout.Rows,
            Columns = layout.Columns,
            Stride = format.PackedRowLength(layout.Columns),
            SegmentWidth = layout.SegmentWidth,
            SegmentsPerRow = Math.Max(1, layout.SegmentsPerRow),
            BlockRows = options.EffectiveGranularity switch
            {
                PerTensorGranularity => Math.Max(1, layout.Rows),
                PerBlockGranularity b => b.Rows,
                _ => 1,
            },
            GroupCount = layout.GroupCount,
            ScaleStorage = options.ScaleStorage switch { ScaleEncoding.Float16 => 1, ScaleEncoding.BFloat16 => 2, _ => 0 },
            Saturate = options.Saturate,
            ClipSteps = -1,
        };
        switch (options.Format)
        {
            case IntegerFormat integer:
            {
                int offset = 1 << (integer.Bits - 1), levels = (1 << integer.Bits) - 1;
                bool restricted = options.SymmetricRange == SymmetricRange.Restricted;
                spec = options.Symmetric
                    ? spec with
                    {
                        Element = GeneralElement.IntegerSymmetric, Offset = offset, Low = restricted ? 1 : 0, High = levels,
                        SymmetricMax = restricted ? offset - 1 : levels / 2f,
                    }
                    : spec with { Element = GeneralElement.IntegerAsymmetric, Low = 0, High = levels };
                return options.Clipping is ClippingSearch search
                    ? spec with { ClipSteps = (int)(search.MaxShrink * search.Grid), ClipGrid = search.Grid, ClipNorm = search.Norm }
                    : spec;
            }

            case FloatFormat fp:
            {
                MiniFloatCodec codec = fp.Codec;
                int signBit = 1 << (codec.ExponentBits + codec.MantissaBits);
                return spec with
                {
                    Element = GeneralElement.MiniFloat, MantissaBits = codec.MantissaBits, ExponentBits = codec.ExponentBits, Bias = codec.Bias,
                    MinNormalExponent = codec.MinNormalExponent, MaxCode = codec.MaxCode, SignBit = signBit, MaxNormal = codec.MaxNormal,
                    Specials = (int)codec.Specials,
                    OverflowCode = codec.Specials switch
                    {
                        SpecialValues.NaNOnly => signBit - 1,
                        SpecialValues.Ieee => ((1 << codec.ExponentBits) - 1) << codec.MantissaBits,
                        _ => codec.MaxCode,
                    },
                };
            }

            case Nf4Format:
                return spec with { Element = GeneralElement.Nf4 };
            case TernaryFormat ternary:
                return spec with
                {
                    Element = ternary.Method == TernaryMethod.AbsMean ? GeneralElement.TernaryAbsMean : GeneralElement.TernaryThreshold, Trits = true,
                };
            default:
                throw new NotSupportedException($"{options.Format} has no general GPU kernel.");
        }
    }

    internal static GpuFormatSpec Spec(RtnOptions options, ScaleLayout layout)
    {
        var format = (GroupedFormat)options.Format;
        var spec = new GpuFormatSpec
        {
            CodeBits = format.CodeBits,
            Columns = layout.Columns,
            Stride = format.PackedRowLength(layout.Columns),
            SegmentWidth = layout.SegmentWidth,
            SegmentsPerRow = Math.Max(1, layout.SegmentsPerRow),
        };
        switch (options.Format)
        {
            case IntegerFormat integer:
            {
                int offset = 1 << (integer.Bits - 1), levels = (1 << integer.Bits) - 1;
                bool restricted = options.SymmetricRange == SymmetricRange.Restricted;
                return options.Symmetric
                    ? spec with
                    {
                        Element = GpuElementKind.IntegerSymmetric, ScaleKind = GpuScaleKind.Integer, Offset = offset,
                        Low = restricted ? 1 : 0, High = 2 * offset - 1, SymmetricMax = restricted ? offset - 1 : levels / 2f,
                    }
                    : spec with { Element = GpuElementKind.IntegerAsymmetric, ScaleKind = GpuScaleKind.Integer, Low = 0, High = levels };
            }

            case FloatFormat fp:
                return WithCodec(spec, fp.Codec) with { ScaleKind = GpuScaleKind.FloatMax, MaxNormal = fp.Codec.MaxNormal };
            case MicroscalingFormat { Element: MiniFloatCodec element }:
                return WithCodec(spec, element) with { ScaleKind = GpuScaleKind.SharedExponent, MaxExponent = element.MaxExponent };
            case MicroscalingFormat:
                return spec with { Element = GpuElementKind.MxInt8, ScaleKind = GpuScaleKind.SharedExponent, MaxExponent = 0 };
            default:
                return WithCodec(spec, MiniFloatCodec.Fp4E2M1) with { ScaleKind = GpuScaleKind.Nvfp4 };
        }
    }

    private static GpuFormatSpec WithCodec(GpuFormatSpec spec, MiniFloatCodec codec) => spec with
    {
        Element = GpuElementKind.MiniFloat,
        MantissaBits = codec.MantissaBits,
        Bias = codec.Bias,
        MinNormalExponent = codec.MinNormalExponent,
        MaxCode = codec.MaxCode,
        SignBit = 1 << (codec.ExponentBits + codec.MantissaBits),
    };
}
