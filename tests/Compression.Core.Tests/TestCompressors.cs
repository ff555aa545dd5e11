using Compression.Safetensors;
using Compression.Serialization;
using Compression.Tensors;

namespace Compression.Core.Tests;

// Small, honest compressors of each family's shape, used only to prove that the ICompressor seam, composition and
// serialization fit quantizers, pruners and factorizers without casts. The real algorithms live in the families.

/// <summary>Keeps the largest-magnitude fraction of each matrix (a pruner).</summary>
internal sealed class KeepLargestPruner(double keep) : ICompressor
{
    public string Name => "test-keep-largest";
    public CalibrationRequirements Requirements => CalibrationRequirements.None;

    public CompressedTensor Compress(DenseTensor weight, CompressionContext context)
    {
        CompressorArguments.Validate(this, weight, context);
        float[] magnitudes = weight.Span.ToArray().Select(MathF.Abs).Order().ToArray();
        int pruned = (int)Math.Round(magnitudes.Length * (1 - keep));
        float threshold = pruned == 0 ? -1 : magnitudes[pruned - 1];
        var values = weight.Memory;
        SparsityMask mask = SparsityMask.FromPredicate(weight.Rows, weight.Columns, values, (v, i) => MathF.Abs(v.Span[(int)i]) > threshold);
        return new MaskedTensor(weight.Span.ToArray(), mask);
    }
}

internal sealed class MaskedTensor : CompressedTensor
{
    private readonly float[] _values;

    public MaskedTensor(float[] values, SparsityMask mask)
        : base(mask.Rows, mask.Columns)
    {
        _values = values;
        Mask = mask;
        Mask.Apply(_values);
    }

    public SparsityMask Mask { get; }
    public override string Kind => "test-masked";
    public override SparsityMask? SparsityMask => Mask;
    public override long StorageBits => Mask.StorageBits + 32 * Mask.KeptCount;

    protected override void DecompressCore(Span<float> destination) => _values.CopyTo(destination);

    protected override void WriteTo(CompressedTensorWriter writer)
    {
        writer.WriteTensor<float>("values", SafetensorsDType.F32, [Rows, Columns], _values);
        writer.WriteTensor<byte>("mask", SafetensorsDType.U8, [(ElementCount + 7) / 8], Mask.ToBytes());
    }

    public static MaskedTensor Read(CompressedTensorReader reader) => new(
        reader.ReadTensor<float>("values", SafetensorsDType.F32, reader.Rows, reader.Columns),
        SparsityMask.FromBytes(reader.Rows, reader.Columns, reader.ReadTensor<byte>("mask", SafetensorsDType.U8)));
}

/// <summary>Rounds to multiples of a step, keeping a prior stage's mask (a quantizer).</summary>
internal sealed class GridQuantizer(float step) : ICompressor
{
    public string Name => "test-grid";
    public CalibrationRequirements Requirements => CalibrationRequirements.None;

    public CompressedTensor Compress(DenseTensor weight, CompressionContext context)
    {
        CompressorArguments.Validate(this, weight, context);
        int[] codes = weight.Span.ToArray().Select(v => (int)MathF.Round(v / step, MidpointRounding.ToEven)).ToArray();
        SparsityMask? mask = context.Prior?.SparsityMask;
        if (mask is not null)
        {
            for (int i = 0; i < codes.Length; i++)
            {
                if (!mask.IsKept(i / weight.Columns, i % weight.Columns))
                {
                    codes[i] = 0;
                }
            }
        }

        return new GridTensor(weight.Rows, weight.Columns, step, codes, mask);
    }
}

internal sealed class GridTensor(int rows, int columns, float step, int[] codes, SparsityMask? mask) : CompressedTensor(rows, columns)
{
    public override string Kind => "test-grid";
    public override SparsityMask? SparsityMask => mask;
    public override long StorageBits => 8L * codes.Length + 32 + (mask?.StorageBits ?? 0);

    protected override void DecompressCore(Span<float> destination)
    {
        for (int i = 0; i < codes.Length; i++)
        {
            destination[i] = codes[i] * step;
        }
    }

    protected override void WriteTo(CompressedTensorWriter writer)
    {
        writer.WriteTensor<int>("codes", SafetensorsDType.I32, [Rows, Columns], codes);
        writer.WriteAttribute("step", BitConverter.SingleToInt32Bits(step));
        if (mask is not null)
        {
            writer.WriteTensor<byte>("mask", SafetensorsDType.U8, [(ElementCount + 7) / 8], mask.ToBytes());
        }
    }

    public static GridTensor Read(CompressedTensorReader reader) => new(reader.Rows, reader.Columns,
        BitConverter.Int32BitsToSingle((int)reader.ReadInt64Attribute("step")),
        reader.ReadTensor<int>("codes", SafetensorsDType.I32, reader.Rows, reader.Columns),
        reader.Contains("mask") ? SparsityMask.FromBytes(reader.Rows, reader.Columns, reader.ReadTensor<byte>("mask", SafetensorsDType.U8)) : null);
}

/// <summary>Best rank-1 approximation by power iteration (a factorizer).</summary>
internal sealed class RankOneFactorizer : ICompressor
{
    public string Name => "test-rank1";
    public CalibrationRequirements Requirements => CalibrationRequirements.None;

    public CompressedTensor Compress(DenseTensor weight, CompressionContext context)
    {
        CompressorArguments.Validate(this, weight, context);
        int m = weight.Rows, n = weight.Columns;
        var v = Enumerable.Repeat(1.0 / Math.Sqrt(n), n).ToArray();
        var u = new double[m];
        for (int iteration = 0; iteration < 200; iteration++)
        {
            for (int i = 0; i < m; i++)
            {
                u[i] = Enumerable.Range(0, n).Sum(j => weight[i, j] * v[j]);
            }

            for (int j = 0; j < n; j++)
            {
                v[j] = Enumerable.Range(0, m).Sum(i => weight[i, j] * u[i]);
            }

            double norm = Math.Sqrt(v.Sum(x => x * x));
            if (norm == 0)
            {
                break;
            }

            for (int j = 0; j < n; j++)
            {
                v[j] /= norm;
            }
        }

        for (int i = 0; i < m; i++)
        {
            u[i] = Enumerable.Range(0, n).Sum(j => weight[i, j] * v[j]);
        }

        return new RankOneTensor(u.Select(x => (float)x).ToArray(), v.Select(x => (float)x).ToArray());
    }
}

internal sealed class RankOneTensor(float[] u, float[] v) : CompressedTensor(u.Length, v.Length)
{
    public override string Kind => "test-rank1";
    public override long StorageBits => 32L * (u.Length + v.Length);

    protected override void DecompressCore(Span<float> destination)
    {
        for (int i = 0; i < u.Length; i++)
        {
            for (int j = 0; j < v.Length; j++)
            {
                destination[i * v.Length + j] = u[i] * v[j];
            }
        }
    }

    protected override void WriteTo(CompressedTensorWriter writer)
    {
        writer.WriteTensor<float>("u", SafetensorsDType.F32, [u.Length], u);
        writer.WriteTensor<float>("v", SafetensorsDType.F32, [v.Length], v);
    }

    public static RankOneTensor Read(CompressedTensorReader reader) =>
        new(reader.ReadTensor<float>("u", SafetensorsDType.F32, reader.Rows), reader.ReadTensor<float>("v", SafetensorsDType.F32, reader.Columns));
}

/// <summary>Declares it needs the input Hessian; reports how many samples it saw (a GPTQ-shaped compressor).</summary>
internal sealed class NeedsHessian : ICompressor
{
    public string Name => "test-needs-hessian";
    public CalibrationRequirements Requirements => CalibrationRequirements.InputHessian;

    public CompressedTensor Compress(DenseTensor weight, CompressionContext context)
    {
        CompressorArguments.Validate(this, weight, context);
        return new Composition.UncompressedTensor(weight);
    }
}
