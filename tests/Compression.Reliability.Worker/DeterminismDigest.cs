// Licensed under the MIT License. See LICENSE in the repository root.
// Part of the Compression library for .NET.

using System.Globalization;
using System.Runtime.InteropServices;
using System.Security.Cryptography;
using Compression.Calibration;
using Compression.Composition;
using Compression.Distillation;
using Compression.LowRank;
using Compression.Numerics;
using Compression.Pruning;
using Compression.Quantization;
using Compression.Quantization.Rotation;
using Compression.Safetensors;
using Compression.Serialization;
using Compression.Tensors;

namespace Compression.Reliability.Worker;

/// <summary>
/// A fixed suite of compressions on seeded inputs, each reduced to the SHA-256 of its result's exact bits (the
/// compressed tensor serialized to safetensors bytes, plus the reconstruction's float bits). Inputs are large enough
/// that every parallel path splits its work: 256×512 weights (GEMM work m·n·k ≥ 2²⁰, RowParallel chunks, Parallel.For
/// over rows) and Hessians from 1024 calibration rows. Run in one process, or by the <c>digest</c> command under
/// <c>DOTNET_PROCESSOR_COUNT</c> = 1, 2, 3, 8, the lines must be identical.
/// </summary>
public static class DeterminismDigest
{
    /// <summary>Rows of the weights.</summary>
    public const int Rows = 256;

    /// <summary>Columns of the weights (the layer's input width).</summary>
    public const int Columns = 512;

    /// <summary>Calibration rows behind every Hessian.</summary>
    public const int CalibrationRows = 1024;

    private static readonly Lazy<Inputs> s_inputs = new(() => new Inputs(seed: 20261202));

    /// <summary>The suite's case names, in output order.</summary>
    public static IReadOnlyList<string> CaseNames => Cases().Select(c => c.Name).ToArray();

    /// <summary>Runs every case (or those whose name starts with <paramref name="prefix"/>) and returns
    /// <c>name sha256</c> lines in a fixed order.</summary>
    public static IReadOnlyList<string> Run(string? prefix = null, TextWriter? timings = null)
    {
        var lines = new List<string>();
        foreach ((string name, Func<byte[]> run) in Cases())
        {
            if (prefix is null || name.StartsWith(prefix, StringComparison.Ordinal))
            {
                long start = System.Diagnostics.Stopwatch.GetTimestamp();
                lines.Add($"{name} {Convert.ToHexString(SHA256.HashData(run()))}");
                timings?.WriteLine(string.Create(CultureInfo.InvariantCulture,
                    $"{name} {System.Diagnostics.Stopwatch.GetElapsedTime(start).TotalMilliseconds:F0} ms"));
            }
        }

        return lines;
    }

    /// <summary>Seeded inputs: a weight with a few outliers, correlated activations, their Hessian.</summary>
    public sealed class Inputs
    {
        /// <summary>Creates the inputs from a seed.</summary>
        public Inputs(int seed)
        {
            var random = new Random(seed);
            Weight = new DenseTensor(Rows, Columns);
            Span<float> w = Weight.Span;
            for (int i = 0; i < w.Length; i++)
            {
                w[i] = (float)(0.05 * Gaussian(random));
            }

            for (int i = 0; i < 64; i++)
            {
                w[random.Next(w.Length)] *= 12f;   // outliers so that clipping, act-order and scales matter
            }

            // Activations: per-column scales spread over two decades plus a shared low-rank component, so the
            // Hessian is far from diagonal and act-order reorders columns.
            Activations = new DenseTensor(CalibrationRows, Columns);
            Span<float> x = Activations.Span;
            double[] scale = new double[Columns];
            double[] direction = new double[Columns];
            for (int j = 0; j < Columns; j++)
            {
                scale[j] = Math.Pow(10, 2 * random.NextDouble() - 1);
                direction[j] = Gaussian(random);
            }

            for (int r = 0; r < CalibrationRows; r++)
            {
                double shared = Gaussian(random);
                for (int j = 0; j < Columns; j++)
                {
                    x[r * Columns + j] = (float)(scale[j] * Gaussian(random) + 0.5 * shared * direction[j]);
                }
            }

            Hessian = new HessianAccumulator(Columns);
            Hessian.Add(Activations);
        }

        /// <summary>The weight [256, 512].</summary>
        public DenseTensor Weight { get; }

        /// <summary>Calibration activations [1024, 512].</summary>
        public DenseTensor Activations { get; }

        /// <summary>The Hessian of <see cref="Activations"/> (float64 accumulation, one batch).</summary>
        public HessianAccumulator Hessian { get; }

        private static double Gaussian(Random random)
        {
            double u1 = 1.0 - random.NextDouble(), u2 = random.NextDouble();
            return Math.Sqrt(-2 * Math.Log(u1)) * Math.Cos(2 * Math.PI * u2);
        }
    }

    /// <summary>The shared inputs (built once per process).</summary>
    public static Inputs Data => s_inputs.Value;

    /// <summary>A compressor with the context it needs, for the concurrency tests: every ICompressor case of the
    /// suite.</summary>
    public static IReadOnlyList<(string Name, ICompressor Compressor, bool NeedsHessian)> Compressors()
    {
        var list = new List<(string, ICompressor, bool)>();
        foreach ((string name, RtnOptions options) in RtnCases())
        {
            list.Add(($"rtn/{name}", new RoundToNearestQuantizer(options), false));
        }

        list.Add(("tritplane", new TritPlaneQuantizer(TritPlaneOptions.Default), false));
        foreach ((string name, GptqOptions options) in GptqCases())
        {
            list.Add(($"gptq/{name}", new GptqQuantizer(options), true));
        }

        list.Add(("prune/magnitude-layer", new MagnitudePruner(new MagnitudePruningOptions { Sparsity = 0.5 }), false));
        list.Add(("prune/magnitude-row-l2", new MagnitudePruner(new MagnitudePruningOptions { Sparsity = 0.6, Scope = PruningScope.PerRow, Norm = PruningNorm.L2 }), false));
        list.Add(("prune/nm-2:4", new NofMPruner(NofMOptions.TwoOfFour), false));
        list.Add(("prune/structured-out-l2", new StructuredPruner(new StructuredPruningOptions { Dimension = ChannelDimension.OutputChannels, Sparsity = 0.25, Score = ChannelScore.L2 }), false));
        list.Add(("prune/structured-in-l1", new StructuredPruner(new StructuredPruningOptions { Dimension = ChannelDimension.InputChannels, Sparsity = 0.25, Score = ChannelScore.L1 }), false));
        list.Add(("prune/block-4x8", new BlockSparsePruner(new BlockSparsityOptions { BlockRows = 4, BlockColumns = 8, Sparsity = 0.5 }), false));
        list.Add(("prune/sparsegpt-50", new SparseGptPruner(SparseGptOptions.Unstructured50), true));
        list.Add(("prune/sparsegpt-2:4", new SparseGptPruner(SparseGptOptions.TwoFour), true));
        list.Add(("prune/wanda-50", new WandaPruner(new WandaOptions { Sparsity = 0.5 }), true));
        list.Add(("prune/wanda-4:8", new WandaPruner(new WandaOptions { NofM = NofMOptions.FourOfEight }), true));
        list.Add(("lowrank/exact-r32", new LowRankCompressor(new LowRankOptions { Rank = RankRule.Fixed(32), Solver = SvdSolver.Exact }), false));
        list.Add(("lowrank/randomized-r32", new LowRankCompressor(new LowRankOptions { Rank = RankRule.Fixed(32), Solver = SvdSolver.Randomized, Randomized = new RandomizedSvdOptions { Seed = 7 } }), false));
        list.Add(("lowrank/energy-0.5-bf16", new LowRankCompressor(new LowRankOptions { Rank = RankRule.Energy(0.5), Precision = FactorPrecision.BFloat16 }), false));
        list.Add(("lowrank/whiten-cholesky-r32", new LowRankCompressor(new LowRankOptions { Rank = RankRule.Fixed(32), Whitening = ActivationWhitening.Cholesky }), true));
        list.Add(("lowrank/whiten-eigen-r32", new LowRankCompressor(new LowRankOptions { Rank = RankRule.Fixed(32), Whitening = ActivationWhitening.Eigen }), true));
        list.Add(("lowrank/eora-int3-r16", Eora.Compensate(new RoundToNearestQuantizer(RtnOptions.W4Group128 with { Format = NumberFormat.Int3 }), 16), true));
        list.Add(("core/chained-magnitude-int8", new ChainedCompressor(new MagnitudePruner(new MagnitudePruningOptions { Sparsity = 0.5 }), new RoundToNearestQuantizer(RtnOptions.W8PerChannel)), false));
        list.Add(("core/residual-int4-lowrank", new ResidualCompressor(new RoundToNearestQuantizer(RtnOptions.W4Group128), new LowRankCompressor(new LowRankOptions { Rank = RankRule.Fixed(8) })), false));
        list.Add(("distill/reconstruct-int3-g128", new ReconstructingCompressor(new RoundToNearestQuantizer(RtnOptions.W4Group128 with { Format = NumberFormat.Int3 }), new LayerReconstructionOptions { MaxIterations = 8 }), true));
        list.Add(("distill/reconstruct-wanda", new ReconstructingCompressor(new WandaPruner(new WandaOptions { Sparsity = 0.5 }), new LayerReconstructionOptions { MaxIterations = 8 }), true));
        return list;
    }

    /// <summary>The RTN options the suite covers: every integer width sym/asym at three granularities and every
    /// other format at its natural granularity, plus a clipping search.</summary>
    public static IEnumerable<(string Name, RtnOptions Options)> RtnCases()
    {
        foreach (int bits in new[] { 2, 3, 4, 5, 6, 7, 8 })
        {
            foreach (bool symmetric in new[] { true, false })
            {
                foreach ((string g, Granularity granularity) in new[] { ("tensor", Granularity.PerTensor), ("channel", Granularity.PerChannel), ("g128", Granularity.PerGroup(128)) })
                {
                    yield return ($"int{bits}-{(symmetric ? "sym" : "asym")}-{g}", new RtnOptions { Format = NumberFormat.Int(bits), Symmetric = symmetric, Granularity = granularity });
                }
            }
        }

        yield return ("fp8e4m3-channel", RtnOptions.Fp8PerChannel);
        yield return ("fp8e4m3-block128", RtnOptions.Fp8Block128);
        yield return ("fp8e5m2-channel", RtnOptions.Fp8PerChannel with { Format = NumberFormat.Fp8E5M2 });
        foreach ((string name, NumberFormat format) in new[]
                 {
                     ("mxfp8e4m3", NumberFormat.Mxfp8E4M3), ("mxfp8e5m2", NumberFormat.Mxfp8E5M2), ("mxfp6e2m3", NumberFormat.Mxfp6E2M3),
                     ("mxfp6e3m2", NumberFormat.Mxfp6E3M2), ("mxfp4", NumberFormat.Mxfp4), ("mxint8", NumberFormat.Mxint8),
                     ("nvfp4", NumberFormat.Nvfp4), ("nf4", NumberFormat.Nf4), ("ternary-absmean", NumberFormat.TernaryAbsMean),
                     ("ternary-threshold", NumberFormat.TernaryThreshold),
                 })
        {
            yield return (name, new RtnOptions { Format = format });
        }

        yield return ("int4-g128-clip", RtnOptions.W4Group128 with { Clipping = ClippingSearch.Default });
    }

    /// <summary>The GPTQ options the suite covers.</summary>
    public static IEnumerable<(string Name, GptqOptions Options)> GptqCases()
    {
        yield return ("int4-g128", GptqOptions.W4Group128);
        yield return ("int4-g128-actorder", GptqOptions.W4Group128 with { ActOrder = true });
        yield return ("int4-g128-actorder-static", GptqOptions.W4Group128 with { ActOrder = true, StaticGroups = true });
        yield return ("int8-channel", GptqOptions.W8PerChannel);
        yield return ("int3-asym-g64", GptqOptions.W4Group128 with { Quantization = new RtnOptions { Format = NumberFormat.Int3, Symmetric = false, Granularity = Granularity.PerGroup(64) } });
        yield return ("mxfp4-hadamard", new GptqOptions { Quantization = RtnOptions.Mxfp4, Rotation = new HadamardRotationParameters(32, SignSeed: 11) });
        yield return ("nvfp4-hadamard128", new GptqOptions { Quantization = RtnOptions.Nvfp4, Rotation = new HadamardRotationParameters(128, SignSeed: 5) });
    }

    /// <summary>Every case: a name and a function producing the bytes to hash.</summary>
    public static IEnumerable<(string Name, Func<byte[]> Run)> Cases()
    {
        yield return ("core/hessian-f64", () => HessianBytes(AccumulationPrecision.Double));
        yield return ("core/hessian-f32", () => HessianBytes(AccumulationPrecision.Single));
        yield return ("core/hessian-merge", () =>
        {
            var a = new HessianAccumulator(Columns);
            var b = new HessianAccumulator(Columns);
            a.Add(Data.Activations.SliceRows(0, 384));
            b.Add(Data.Activations.SliceRows(384, CalibrationRows - 384));
            a.Merge(b);
            return Bytes(a.GetHessian());
        });
        yield return ("core/gemm-f32", () =>
        {
            float[] c = new float[Rows * CalibrationRows];
            Gemm.Multiply(MatrixTranspose.None, MatrixTranspose.Transpose, Rows, CalibrationRows, Columns, 1f,
                Data.Weight.Span, Columns, Data.Activations.Span, Columns, 0f, c, CalibrationRows);
            return Bytes(c);
        });
        yield return ("core/gemm-f64", () =>
        {
            double[] h = Data.Hessian.GetHessian();
            double[] c = new double[Columns * Columns];
            Gemm.Multiply(h, h, c, Columns, Columns, Columns);
            return Bytes(c);
        });
        yield return ("core/syrk-f64", () =>
        {
            double[] x = ToDouble(Data.Activations.Span);
            double[] c = new double[Columns * Columns];
            Gemm.SymmetricRankKUpdate(MatrixTranspose.Transpose, Columns, CalibrationRows, 1.0, x, Columns, 0.0, c, Columns);
            return Bytes(c);
        });
        yield return ("core/cholesky", () =>
        {
            double[] h = DampedHessian();
            if (!Cholesky.TryFactor(h, Columns))
            {
                throw new InvalidOperationException("The damped Hessian is not positive definite.");
            }

            double[] inverse = new double[Columns * Columns];
            Cholesky.Invert(h, Columns, inverse);
            double[] upper = new double[Columns * Columns];
            if (!Cholesky.TryUpperFactorOfInverse(DampedHessian(), Columns, upper))
            {
                throw new InvalidOperationException("The damped Hessian is not positive definite.");
            }

            return [.. Bytes(h), .. Bytes(inverse), .. Bytes(upper)];
        });
        yield return ("quant/hadamard-rotate-weight", () => Bytes(new HadamardRotation(128, signSeed: 3).RotateWeight(Data.Weight).Span));
        yield return ("quant/hadamard-rotate-hessian", () => Bytes(new HadamardRotation(64, signSeed: 3).RotateHessian(Data.Hessian.GetHessian(), Columns)));
        yield return ("lowrank/svd-exact", () => SvdBytes(SingularValueDecomposition.Exact(Data.Weight.SliceRows(0, 128))));
        yield return ("lowrank/svd-randomized", () => SvdBytes(SingularValueDecomposition.Randomized(Data.Weight, 48, new RandomizedSvdOptions { Seed = 42 })));
        yield return ("lowrank/welore-allocation", () =>
        {
            SingularValueDecomposition svd = SingularValueDecomposition.Exact(Data.Weight.SliceRows(0, 128));
            SingularValueDecomposition svdT = SingularValueDecomposition.Exact(Data.Weight.SliceRows(128, 96));
            IReadOnlyList<LayerRankAllocation> allocation = WeLoreRankAllocator.Allocate(
            [
                new LayerSpectrum("a", 128, Columns, svd.SingularValues),
                new LayerSpectrum("b", 96, Columns, svdT.SingularValues),
            ], 0.5);
            string text = string.Join(';', allocation.Select(a => string.Create(CultureInfo.InvariantCulture, $"{a.Name}:{a.Rank}:{a.Parameters}:{BitConverter.DoubleToInt64Bits(a.RetainedEnergy)}")));
            return System.Text.Encoding.UTF8.GetBytes(text);
        });
        yield return ("distill/layer-reconstructor-fit", () =>
        {
            CompressedTensor rtn = new RoundToNearestQuantizer(RtnOptions.W4Group128 with { Format = NumberFormat.Int2 }).Compress(Data.Weight, CompressionContext.Default);
            LayerReconstructionResult fit = LayerReconstructor.Fit(Data.Weight, rtn, Context(true), new LayerReconstructionOptions { MaxIterations = 6 });
            return [.. Serialize(fit.Tensor), .. BitConverter.GetBytes(fit.FinalError)];
        });

        foreach ((string name, ICompressor compressor, bool needsHessian) in Compressors())
        {
            yield return (name, () => Serialize(compressor.Compress(WeightFor(name), Context(needsHessian))));
        }
    }

    /// <summary>The weight a compressor case runs on: the low-rank family takes the first 128 rows (its exact SVD is
    /// MathNet's serial one, the costliest step of the suite; the 128×512 GEMMs around it still split).</summary>
    public static DenseTensor WeightFor(string name) =>
        name.StartsWith("lowrank/", StringComparison.Ordinal) ? Data.Weight.SliceRows(0, 128) : Data.Weight;

    /// <summary>The context a case runs under: the shared Hessian when the compressor needs one.</summary>
    public static CompressionContext Context(bool withHessian) =>
        withHessian ? CompressionContext.Default with { InputHessian = Data.Hessian } : CompressionContext.Default;

    /// <summary>The safetensors bytes of <paramref name="tensor"/> followed by its reconstruction's float bits.</summary>
    public static byte[] Serialize(CompressedTensor tensor)
    {
        var writer = new SafetensorsWriter();
        CompressedTensorSerializer.Default.Write(writer, "t", tensor);
        using var stream = new MemoryStream();
        writer.WriteTo(stream);
        stream.Write(Bytes(tensor.Decompress().Span));
        return stream.ToArray();
    }

    private static byte[] HessianBytes(AccumulationPrecision precision)
    {
        var accumulator = new HessianAccumulator(Columns, new HessianAccumulatorOptions { Precision = precision });
        // Three uneven batches: the running-mean update order is part of what must be reproducible.
        accumulator.Add(Data.Activations.SliceRows(0, 100));
        accumulator.Add(Data.Activations.SliceRows(100, 700));
        accumulator.Add(Data.Activations.SliceRows(800, CalibrationRows - 800));
        return Bytes(accumulator.GetHessian());
    }

    private static double[] DampedHessian()
    {
        double[] h = Data.Hessian.GetHessian();
        double mean = 0;
        for (int i = 0; i < Columns; i++)
        {
            mean += h[i * Columns + i];
        }

        for (int i = 0; i < Columns; i++)
        {
            h[i * Columns + i] += 0.01 * mean / Columns;
        }

        return h;
    }

    private static byte[] SvdBytes(SingularValueDecomposition svd) => [.. Bytes(svd.U), .. Bytes(svd.SingularValues), .. Bytes(svd.VT)];

    private static double[] ToDouble(ReadOnlySpan<float> values)
    {
        double[] result = new double[values.Length];
        for (int i = 0; i < values.Length; i++)
        {
            result[i] = values[i];
        }

        return result;
    }

    private static byte[] Bytes<T>(ReadOnlySpan<T> values)
        where T : unmanaged => MemoryMarshal.AsBytes(values).ToArray();

    private static byte[] Bytes<T>(T[] values)
        where T : unmanaged => MemoryMarshal.AsBytes(values.AsSpan()).ToArray();

    private static byte[] Bytes(Span<float> values) => MemoryMarshal.AsBytes(values).ToArray();
}
