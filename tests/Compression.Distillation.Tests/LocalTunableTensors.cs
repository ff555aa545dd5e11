using Compression.Serialization;
using Compression.Tensors;

namespace Compression.Distillation.Tests;

/// <summary>
/// Small test-local <see cref="ITunableTensor"/> implementations with a known reconstruction, so the fit is tested on
/// its own maths independently of the families' representations. Nothing here is rounded to storage.
/// </summary>
internal static class LocalTunableTensors
{
    /// <summary>Symmetric round-to-nearest with one float32 scale per group of <paramref name="groupSize"/> columns.</summary>
    public static ScaledCodesTensor RoundToNearest(DenseTensor weight, int bits, int groupSize)
    {
        int rows = weight.Rows, columns = weight.Columns, groups = (columns + groupSize - 1) / groupSize;
        int max = (1 << (bits - 1)) - 1;
        var codes = new float[rows * columns];
        var scales = new float[rows * groups];
        for (int r = 0; r < rows; r++)
        {
            for (int g = 0; g < groups; g++)
            {
                int start = g * groupSize, end = Math.Min(columns, start + groupSize);
                float absMax = 0;
                for (int j = start; j < end; j++)
                {
                    absMax = Math.Max(absMax, Math.Abs(weight[r, j]));
                }

                float scale = absMax / max;
                scales[r * groups + g] = scale;
                for (int j = start; j < end; j++)
                {
                    codes[r * columns + j] = scale == 0 ? 0 : Math.Clamp(MathF.Round(weight[r, j] / scale), -max, max);
                }
            }
        }

        return new ScaledCodesTensor(rows, columns, groupSize, codes, scales);
    }
}

/// <summary>Ŵ[r, j] = s[r, j / groupSize]·c[r, j] with fixed codes c; θ = the scales, row-major by group. With
/// <paramref name="refuse"/> it refuses every new θ, as a representation does for a value it cannot store.</summary>
internal sealed class ScaledCodesTensor(int rows, int columns, int groupSize, float[] codes, float[] scales, bool refuse = false)
    : CompressedTensor(rows, columns), ITunableTensor
{
    private int Groups => (Columns + groupSize - 1) / groupSize;

    public float[] Codes => codes;

    public float[] Scales => scales;

    public override string Kind => "test-scaled-codes";

    public override long StorageBits => 4L * codes.Length + 32L * scales.Length;

    public int TunableParameterCount => scales.Length;

    public void GetTunableParameters(Span<float> parameters) => scales.CopyTo(parameters);

    public void Reconstruct(ReadOnlySpan<float> parameters, Span<float> weight)
    {
        for (int i = 0; i < codes.Length; i++)
        {
            weight[i] = parameters[(i / Columns) * Groups + (i % Columns) / groupSize] * codes[i];
        }
    }

    public void BackpropagateReconstruction(ReadOnlySpan<float> parameters, ReadOnlySpan<float> weightGradient, Span<float> parameterGradient)
    {
        for (int i = 0; i < codes.Length; i++)
        {
            parameterGradient[(i / Columns) * Groups + (i % Columns) / groupSize] += weightGradient[i] * codes[i];
        }
    }

    public ScaledCodesTensor Refusing() => new(Rows, Columns, groupSize, codes, scales, refuse: true);

    public CompressedTensor WithTunableParameters(ReadOnlySpan<float> parameters) => refuse
        ? throw new ArgumentException("This test tensor refuses new parameters.", nameof(parameters))
        : new ScaledCodesTensor(Rows, Columns, groupSize, codes, parameters.ToArray());

    protected override void DecompressCore(Span<float> destination) => Reconstruct(scales, destination);

    protected override void WriteTo(CompressedTensorWriter writer) => throw new NotSupportedException("Test-only representation.");
}

/// <summary>Ŵ keeps the masked positions' values and zeros elsewhere; θ = the kept values in row-major order.</summary>
internal sealed class MaskedValuesTensor : CompressedTensor, ITunableTensor
{
    private readonly int[] _positions;
    private readonly float[] _values;

    public MaskedValuesTensor(int rows, int columns, int[] positions, float[] values)
        : base(rows, columns)
    {
        _positions = positions;
        _values = values;
    }

    /// <summary>Keeps the largest-magnitude half of every row (ties to the lower column).</summary>
    public static MaskedValuesTensor PruneHalfPerRow(DenseTensor weight)
    {
        var positions = new List<int>();
        for (int r = 0; r < weight.Rows; r++)
        {
            int[] order = Enumerable.Range(0, weight.Columns).OrderByDescending(j => Math.Abs(weight[r, j])).ThenBy(j => j).ToArray();
            positions.AddRange(order.Take(weight.Columns / 2).Order().Select(j => r * weight.Columns + j));
        }

        int[] kept = [.. positions];
        return new MaskedValuesTensor(weight.Rows, weight.Columns, kept, kept.Select(p => weight.Span[p]).ToArray());
    }

    public int[] Positions => _positions;

    public override string Kind => "test-masked";

    public override long StorageBits => ElementCount + 32L * _values.Length;

    public int TunableParameterCount => _values.Length;

    public void GetTunableParameters(Span<float> parameters) => _values.CopyTo(parameters);

    public void Reconstruct(ReadOnlySpan<float> parameters, Span<float> weight)
    {
        weight.Clear();
        for (int k = 0; k < _positions.Length; k++)
        {
            weight[_positions[k]] = parameters[k];
        }
    }

    public void BackpropagateReconstruction(ReadOnlySpan<float> parameters, ReadOnlySpan<float> weightGradient, Span<float> parameterGradient)
    {
        for (int k = 0; k < _positions.Length; k++)
        {
            parameterGradient[k] += weightGradient[_positions[k]];
        }
    }

    public CompressedTensor WithTunableParameters(ReadOnlySpan<float> parameters) =>
        new MaskedValuesTensor(Rows, Columns, _positions, parameters.ToArray());

    protected override void DecompressCore(Span<float> destination) => Reconstruct(_values, destination);

    protected override void WriteTo(CompressedTensorWriter writer) => throw new NotSupportedException("Test-only representation.");
}

/// <summary>Ŵ = A·B with A [rows, rank] and B [rank, columns]; θ = A then B, row-major.</summary>
internal sealed class FactorTensor(int rows, int columns, int rank, float[] factors) : CompressedTensor(rows, columns), ITunableTensor
{
    public override string Kind => "test-factors";

    public override long StorageBits => 32L * factors.Length;

    public int TunableParameterCount => factors.Length;

    public void GetTunableParameters(Span<float> parameters) => factors.CopyTo(parameters);

    public void Reconstruct(ReadOnlySpan<float> parameters, Span<float> weight)
    {
        ReadOnlySpan<float> a = parameters[..(Rows * rank)], b = parameters[(Rows * rank)..];
        for (int r = 0; r < Rows; r++)
        {
            for (int j = 0; j < Columns; j++)
            {
                float sum = 0;
                for (int k = 0; k < rank; k++)
                {
                    sum += a[r * rank + k] * b[k * Columns + j];
                }

                weight[r * Columns + j] = sum;
            }
        }
    }

    public void BackpropagateReconstruction(ReadOnlySpan<float> parameters, ReadOnlySpan<float> weightGradient, Span<float> parameterGradient)
    {
        ReadOnlySpan<float> a = parameters[..(Rows * rank)], b = parameters[(Rows * rank)..];
        Span<float> ga = parameterGradient[..(Rows * rank)], gb = parameterGradient[(Rows * rank)..];
        for (int r = 0; r < Rows; r++)
        {
            for (int j = 0; j < Columns; j++)
            {
                float g = weightGradient[r * Columns + j];
                for (int k = 0; k < rank; k++)
                {
                    ga[r * rank + k] += g * b[k * Columns + j];
                    gb[k * Columns + j] += g * a[r * rank + k];
                }
            }
        }
    }

    public CompressedTensor WithTunableParameters(ReadOnlySpan<float> parameters) => new FactorTensor(Rows, Columns, rank, parameters.ToArray());

    protected override void DecompressCore(Span<float> destination) => Reconstruct(factors, destination);

    protected override void WriteTo(CompressedTensorWriter writer) => throw new NotSupportedException("Test-only representation.");
}

/// <summary>A representation that is not tunable at all.</summary>
internal sealed class OpaqueTensor(DenseTensor weight) : CompressedTensor(weight.Rows, weight.Columns)
{
    public override string Kind => "test-opaque";

    public override long StorageBits => 32L * weight.Length;

    protected override void DecompressCore(Span<float> destination) => weight.Span.CopyTo(destination);

    protected override void WriteTo(CompressedTensorWriter writer) => throw new NotSupportedException("Test-only representation.");
}

/// <summary>A tunable representation with nothing to tune (as power-of-two scales).</summary>
internal sealed class EmptyTunableTensor(DenseTensor weight) : CompressedTensor(weight.Rows, weight.Columns), ITunableTensor
{
    public override string Kind => "test-empty";

    public override long StorageBits => 32L * weight.Length;

    public int TunableParameterCount => 0;

    public void GetTunableParameters(Span<float> parameters)
    {
    }

    public void Reconstruct(ReadOnlySpan<float> parameters, Span<float> weight1) => weight.Span.CopyTo(weight1);

    public void BackpropagateReconstruction(ReadOnlySpan<float> parameters, ReadOnlySpan<float> weightGradient, Span<float> parameterGradient)
    {
    }

    public CompressedTensor WithTunableParameters(ReadOnlySpan<float> parameters) => this;

    protected override void DecompressCore(Span<float> destination) => weight.Span.CopyTo(destination);

    protected override void WriteTo(CompressedTensorWriter writer) => throw new NotSupportedException("Test-only representation.");
}

/// <summary>An <see cref="IProgress{T}"/> that runs its callback synchronously on the reporting thread
/// (<see cref="Progress{T}"/> would post it to the thread pool).</summary>
internal sealed class SynchronousProgress<T>(Action<T> callback) : IProgress<T>
{
    public void Report(T value) => callback(value);
}
