// Licensed under the MIT License. See LICENSE in the repository root.
// Part of the Compression library for .NET.

using System;
using System.Diagnostics;
using System.Numerics.Tensors;
using System.Threading;
using Compression.Numerics;
using Compression.Tensors;
using MathNet.Numerics.LinearAlgebra;

namespace Compression.LowRank;

/// <summary>
/// Factorises a weight into two low-rank factors by truncated SVD (<see cref="LowRankTensor"/>), optionally
/// activation-aware: with <see cref="ActivationWhitening"/> it truncates W·S, where S·Sᵀ = H is the input Hessian, so
/// that the kept rank minimises the layer-output error ‖(W − A·B)·Xᵀ‖_F rather than ‖W − A·B‖_F (SVD-LLM).
/// </summary>
/// <remarks>
/// <para>As the correction of a <see cref="Composition.ResidualCompressor"/> with eigen whitening it is EoRA: a
/// rank-r compensation, in the activations' eigenspace, of the error a quantizer or pruner left (see <see cref="Eora"/>).</para>
/// <para>All arithmetic is float64; only the stored factors are rounded to <see cref="LowRankOptions.Precision"/>.</para>
/// </remarks>
public sealed class LowRankCompressor : ICompressor
{
    // Below this order the exact SVD is cheap enough that sketching is not worth its approximation.
    private const int RandomizedMinimumOrder = 512;

    // First sketch of an energy rule on the randomized route; doubled until the energy is reached.
    private const int FirstEnergySketch = 64;

    /// <summary>Creates the compressor; see <see cref="LowRankOptions.CreateCompressor"/>.</summary>
    /// <exception cref="ArgumentNullException"><paramref name="options"/> is null.</exception>
    public LowRankCompressor(LowRankOptions options) => Options = options ?? throw new ArgumentNullException(nameof(options));

    /// <summary>The options.</summary>
    public LowRankOptions Options { get; }

    /// <summary>"svd", "svd-llm" (Cholesky whitening) or "eora" (eigenspace whitening).</summary>
    public string Name => Options.Whitening switch
    {
        ActivationWhitening.Cholesky => "svd-llm",
        ActivationWhitening.Eigen => "eora",
        _ => "svd",
    };

    /// <inheritdoc/>
    public CalibrationRequirements Requirements =>
        Options.Whitening == ActivationWhitening.None ? CalibrationRequirements.None : CalibrationRequirements.InputHessian;

    /// <inheritdoc/>
    /// <exception cref="ArgumentException">Also: a fixed rank exceeds min(rows, columns); the input Hessian is not
    /// finite, or not positive definite with <see cref="LowRankOptions.Dampening"/> 0.</exception>
    public CompressedTensor Compress(DenseTensor weight, CompressionContext context) => Factorize(weight, context);

    /// <summary>Factorises <paramref name="weight"/>; <see cref="Compress"/> with the concrete result type.</summary>
    /// <inheritdoc cref="Compress"/>
    public LowRankTensor Factorize(DenseTensor weight, CompressionContext? context = null)
    {
        context ??= CompressionContext.Default;
        CompressorArguments.Validate(this, weight, context);
        int m = weight.Rows, n = weight.Columns;
        if (m == 0 || n == 0)
        {
            throw new ArgumentException($"{Name}: the weight is {m}×{n}; a factorisation needs at least one row and one column.", nameof(weight));
        }

        int? knownRank = Options.Rank.RankFor(m, n);
        CancellationToken token = context.CancellationToken;
        var clock = Stopwatch.StartNew();
        double[] w = new double[(long)m * n];
        ReadOnlySpan<float> source = weight.Span;
        for (int i = 0; i < w.Length; i++)
        {
            w[i] = source[i];
        }

        Whitener? whitener = Options.Whitening == ActivationWhitening.None ? null : Whitener.Create(Options, context.InputHessian!, Name);
        double[] target = whitener is null ? w : whitener.Whiten(w, m);
        double totalEnergy = SquaredNorm(target);
        Report(context, 1);

        SingularValueDecomposition svd;
        int rank;
        if (totalEnergy == 0)
        {
            // A zero matrix: any rank-1 pair of zeros is exact, and the SVD of zeros is pointless work.
            return Finish(new DenseTensor(m, 1), new DenseTensor(1, n), [], 1, 1, weight, context, clock);
        }

        (svd, rank) = Decompose(target, m, n, knownRank, totalEnergy, token);
        Report(context, 2);
        double[] values = svd.SingularValues;
        double retained = 0;
        for (int i = 0; i < rank; i++)
        {
            retained += values[i] * values[i];
        }

        (DenseTensor left, double[] right) = Factors(svd, rank);
        if (whitener is not null)
        {
            right = whitener.Unwhiten(right, rank);
        }

        var rightTensor = new DenseTensor(ToSingle(right), rank, n);
        return Finish(left, rightTensor, values, rank, Math.Min(1, retained / totalEnergy), weight, context, clock);
    }

    private (SingularValueDecomposition Svd, int Rank) Decompose(double[] a, int m, int n, int? knownRank, double totalEnergy, CancellationToken token)
    {
        int order = Math.Min(m, n);
        bool large = order >= RandomizedMinimumOrder;
        bool randomized = Options.Solver == SvdSolver.Randomized
            || (Options.Solver == SvdSolver.Auto && large && (knownRank is null || knownRank.Value + Options.Randomized.Oversampling <= order / 2));
        if (!randomized)
        {
            var exact = SingularValueDecomposition.Exact(a, m, n, token);
            int r = knownRank ?? Options.Rank.RankFor(exact.SingularValues, SquaredNorm(exact.SingularValues), m, n)!.Value;
            return (exact, r);
        }

        if (knownRank is int fixedRank)
        {
            return (SingularValueDecomposition.Randomized(a, m, n, fixedRank, Options.Randomized, token), fixedRank);
        }

        // An energy rule: sketch, and widen the sketch until the leading values reach the energy asked for.
        for (int sketch = Math.Min(FirstEnergySketch, order); ; sketch = Math.Min(2 * sketch, order))
        {
            var svd = SingularValueDecomposition.Randomized(a, m, n, sketch, Options.Randomized, token);
            if (Options.Rank.RankFor(svd.SingularValues, totalEnergy, m, n) is int r)
            {
                return (svd, r);
            }

            if (sketch == order)
            {
                return (svd, order);
            }
        }
    }

    private (DenseTensor Left, double[] Right) Factors(SingularValueDecomposition svd, int rank)
    {
        int m = svd.Rows, n = svd.Columns, k = svd.Rank;
        var left = new DenseTensor(m, rank);
        Span<float> a = left.Span;
        double[] right = new double[rank * n];
        for (int j = 0; j < rank; j++)
        {
            double sigma = svd.SingularValues[j];
            (double leftScale, double rightScale) = Options.Split == FactorSplit.Balanced ? (Math.Sqrt(sigma), Math.Sqrt(sigma)) : (sigma, 1.0);
            for (int i = 0; i < m; i++)
            {
                a[i * rank + j] = (float)(svd.U[i * k + j] * leftScale);
            }

            for (int c = 0; c < n; c++)
            {
                right[j * n + c] = svd.VT[j * n + c] * rightScale;
            }
        }

        return (left, right);
    }

    private LowRankTensor Finish(DenseTensor left, DenseTensor right, double[] singularValues, int rank, double retained,
        DenseTensor weight, CompressionContext context, Stopwatch clock)
    {
        var probe = new LowRankTensor(left, right, Options.Precision);
        DenseTensor reconstruction = probe.Decompress();
        double norm = TensorPrimitives.Norm<float>(weight.Span);
        TensorPrimitives.Subtract(weight.Span, reconstruction.Span, reconstruction.Span);
        double error = norm == 0 ? 0 : TensorPrimitives.Norm<float>(reconstruction.Span) / norm;
        var report = new LowRankReport(Name, rank, singularValues, retained, error, clock.Elapsed);
        Report(context, 3);
        return new LowRankTensor(probe.Left, probe.Right, Options.Precision, report);
    }

    private void Report(CompressionContext context, int step) =>
        context.Progress?.Report(new CompressionProgress(Name, context.LayerName, step, 3));

    private static float[] ToSingle(double[] values)
    {
        float[] result = new float[values.Length];
        for (int i = 0; i < values.Length; i++)
        {
            result[i] = (float)values[i];
        }

        return result;
    }

    private static double SquaredNorm(double[] values) => TensorPrimitives.Dot<double>(values, values);

    /// <summary>S with S·Sᵀ = H + λ·I, applied on the right (W·S) before the SVD and undone (·S⁻¹) on B after it.</summary>
    private abstract class Whitener
    {
        protected Whitener(int n) => N = n;

        protected int N { get; }

        public static Whitener Create(LowRankOptions options, Calibration.HessianAccumulator accumulator, string name)
        {
            int n = accumulator.Columns;
            double[] h = accumulator.GetHessian();
            double trace = 0;
            for (int i = 0; i < n; i++)
            {
                trace += h[i * n + i];
            }

            if (!double.IsFinite(trace) || !double.IsFinite(TensorPrimitives.Sum<double>(h)))
            {
                throw new ArgumentException($"{name}: the input Hessian holds values that are not finite.", "context");
            }

            // Mean diagonal 0 (inputs all zero) makes any whitening degenerate: the identity is as good as any.
            double lambda = options.Dampening * (trace > 0 ? trace / n : 1);
            for (int i = 0; i < n; i++)
            {
                h[i * n + i] += lambda;
            }

            return options.Whitening == ActivationWhitening.Cholesky ? new CholeskyWhitener(h, n, name) : new EigenWhitener(h, n, lambda);
        }

        /// <summary>W·S for the m×n W.</summary>
        public abstract double[] Whiten(double[] w, int m);

        /// <summary>B·S⁻¹ for the r×n B.</summary>
        public abstract double[] Unwhiten(double[] b, int r);
    }

    private sealed class CholeskyWhitener : Whitener
    {
        private readonly double[] _lower;

        public CholeskyWhitener(double[] h, int n, string name)
            : base(n)
        {
            if (!Cholesky.TryFactor(h, n))
            {
                throw new ArgumentException(
                    $"{name}: the input Hessian is not positive definite (some inputs never vary); set Dampening above 0 or use Eigen whitening.", "context");
            }

            // TryFactor leaves H's strict upper triangle in place; the products below need L alone.
            for (int i = 0; i < n; i++)
            {
                Array.Clear(h, i * n + i + 1, n - i - 1);
            }

            _lower = h;
        }

        public override double[] Whiten(double[] w, int m)
        {
            double[] result = new double[(long)m * N];
            Gemm.Multiply(w, _lower, result, m, N, N);
            return result;
        }

        public override double[] Unwhiten(double[] b, int r)
        {
            // B·L⁻¹ = (L⁻ᵀ·Bᵀ)ᵀ: solve Lᵀ·X = Bᵀ for the n×r X.
            double[] upper = new double[N * N];
            for (int i = 0; i < N; i++)
            {
                for (int j = 0; j <= i; j++)
                {
                    upper[j * N + i] = _lower[i * N + j];
                }
            }

            double[] x = SingularValueDecomposition.Transpose(b, r, N);
            Cholesky.SolveUpper(upper, N, x, r);
            return SingularValueDecomposition.Transpose(x, N, r);
        }
    }

    private sealed class EigenWhitener : Whitener
    {
        private readonly double[] _vectors;     // Q, n×n row-major: columns are eigenvectors
        private readonly double[] _rootValues;  // Λ^½

        public EigenWhitener(double[] h, int n, double floor)
            : base(n)
        {
            Matrix<double> matrix = Matrix<double>.Build.DenseOfColumnMajor(n, n, h);
            var evd = matrix.Evd(MathNet.Numerics.LinearAlgebra.Symmetricity.Symmetric);
            _vectors = new double[n * n];
            _rootValues = new double[n];
            // Eigenvalues below the dampening floor, or below the rounding noise of the largest one (n·ε·λ_max), belong
            // to directions the inputs never take: clamping them keeps S⁻¹ finite, and W's components there are then
            // weighted as little as the noise allows.
            double largest = 0;
            for (int j = 0; j < n; j++)
            {
                largest = Math.Max(largest, evd.EigenValues[j].Real);
            }

            double clamp = Math.Max(Math.Max(floor, n * 1e-16 * largest), double.Epsilon);
            for (int j = 0; j < n; j++)
            {
                _rootValues[j] = Math.Sqrt(Math.Max(evd.EigenValues[j].Real, clamp));
                for (int i = 0; i < n; i++)
                {
                    _vectors[i * n + j] = evd.EigenVectors[i, j];
                }
            }
        }

        public override double[] Whiten(double[] w, int m)
        {
            double[] result = new double[(long)m * N];
            Gemm.Multiply(w, _vectors, result, m, N, N);
            for (int i = 0; i < m; i++)
            {
                TensorPrimitives.Multiply<double>(result.AsSpan(i * N, N), _rootValues, result.AsSpan(i * N, N));
            }

            return result;
        }

        public override double[] Unwhiten(double[] b, int r)
        {
            // B·Λ^-½·Qᵀ.
            double[] scaled = (double[])b.Clone();
            for (int i = 0; i < r; i++)
            {
                TensorPrimitives.Divide<double>(scaled.AsSpan(i * N, N), _rootValues, scaled.AsSpan(i * N, N));
            }

            double[] result = new double[r * N];
            Gemm.Multiply(MatrixTranspose.None, MatrixTranspose.Transpose, r, N, N, 1.0, scaled, N, _vectors, N, 0.0, result, N);
            return result;
        }
    }
}
