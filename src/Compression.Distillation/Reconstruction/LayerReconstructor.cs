// Licensed under the MIT License. See LICENSE in the repository root.
// Part of the Compression library for .NET.

using System;
using System.Diagnostics;
using System.Numerics.Tensors;
using System.Threading;
using Compression.Tensors;
using Microsoft.Extensions.Logging;

namespace Compression.Distillation;

/// <summary>
/// Layer-wise reconstruction: fits the continuous parameters θ of one compressed layer (scales, low-rank factors, the
/// kept values of a pruned matrix; see <see cref="ITunableTensor"/>) so that the layer's outputs on calibration inputs
/// match the original's, keeping codes and masks as they are. A cheap post-training step after any compressor.
/// </summary>
/// <remarks>
/// <para>The objective is the relative output error
/// <c>E(θ) = tr((W − Ŵ(θ))·H·(W − Ŵ(θ))ᵀ) / tr(W·H·Wᵀ)</c> with the input Hessian <c>H = 2·XᵀX/n</c> (plus
/// λ·mean(diag H)·I, <see cref="LayerReconstructionOptions.Dampening"/>). For <c>H ∝ XᵀX</c> it equals
/// <c>‖X·Wᵀ − X·Ŵᵀ‖²_F / ‖X·Wᵀ‖²_F</c>, so only the Hessian GPTQ already collects is needed, never the activations.
/// Its gradient is <c>∂E/∂Ŵ = −2·(W − Ŵ)·H / tr(W·H·Wᵀ)</c>, pulled back to θ by
/// <see cref="ITunableTensor.BackpropagateReconstruction"/>. For scales and kept values Ŵ is linear in θ and E a convex
/// quadratic; for low-rank factors it is bilinear and the fit finds a local minimum no worse than the start.</para>
/// <para>The optimiser is L-BFGS (Liu and Nocedal, "On the limited memory BFGS method for large scale optimization",
/// 1989) with a backtracking Armijo line search (safeguarded quadratic interpolation). It is deterministic and monotone:
/// a step is accepted only if it lowers the float64 objective evaluated at the float32 parameters actually tried, so E
/// never rises. The first step of a run, which has no curvature model yet, is expanded while it keeps improving, so the
/// parameters' scale need not be known.</para>
/// <para>After the fit θ is rounded to storage by <see cref="ITunableTensor.WithTunableParameters"/> and E is measured
/// again on the stored tensor; with <see cref="LayerReconstructionOptions.KeepInnerUnlessImproved"/> the starting
/// tensor is returned when the stored fit is not strictly better. Integer zero points are codes of the discrete
/// structure and are not fitted.</para>
/// </remarks>
/// <example>
/// <code>
/// var context = CompressionContext.Default with { InputHessian = hessian };
/// CompressedTensor q = new RoundToNearestQuantizer(RtnOptions.W4Group128).Compress(weight, context);
/// LayerReconstructionResult fit = LayerReconstructor.Fit(weight, q, context);
/// Console.WriteLine($"output error {fit.InitialError:P2} → {fit.FinalError:P2} in {fit.Iterations} iterations");
/// </code>
/// </example>
public static class LayerReconstructor
{
    private const string Stage = "reconstruct";

    // Armijo's sufficient-decrease constant (Nocedal and Wright, "Numerical Optimization", §3.1, suggest 1e-4).
    private const double SufficientDecrease = 1e-4;

    private const int MaxBacktracks = 60;
    private const int MaxExpansions = 60;

    /// <summary>
    /// Fits the continuous parameters of <paramref name="compressed"/> (a compression of <paramref name="weight"/>) to
    /// minimise the relative output error under <see cref="CompressionContext.InputHessian"/>.
    /// </summary>
    /// <param name="weight">The original weight W [out, in]; not modified.</param>
    /// <param name="compressed">A compression of W that implements <see cref="ITunableTensor"/> with at least one
    /// parameter; not modified.</param>
    /// <param name="context">Carries the input Hessian (required), logging, progress (one report per iteration, stage
    /// "reconstruct") and cancellation (checked between iterations and before each objective evaluation).</param>
    /// <param name="options">Null for <see cref="LayerReconstructionOptions.Default"/>.</param>
    /// <returns>The tensor to use and the errors before and after the fit.</returns>
    /// <exception cref="ArgumentException">The weight is not a finite matrix of the compressed tensor's shape; the
    /// Hessian is missing, empty or of another width; the compressed tensor has no continuous parameters.</exception>
    /// <exception cref="OperationCanceledException">The context's token was cancelled.</exception>
    public static LayerReconstructionResult Fit(
        DenseTensor weight, CompressedTensor compressed, CompressionContext context, LayerReconstructionOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(weight);
        ArgumentNullException.ThrowIfNull(compressed);
        ArgumentNullException.ThrowIfNull(context);
        options ??= LayerReconstructionOptions.Default;
        CancellationToken token = context.CancellationToken;
        token.ThrowIfCancellationRequested();
        ITunableTensor tunable = ValidateArguments(weight, compressed, context);

        long start = Stopwatch.GetTimestamp();
        var objective = new ReconstructionObjective(weight, context.InputHessian!, options.Dampening, tunable);
        double initialError = objective.Error(compressed.Decompress().Span);

        float[] parameters = new float[tunable.TunableParameterCount];
        tunable.GetTunableParameters(parameters);
        float[] initial = (float[])parameters.Clone();
        var search = new Lbfgs(objective, parameters, options, context);
        search.Run(token);

        (CompressedTensor? candidate, double storedError) = Store(tunable, compressed.Kind, initial, search.Parameters, objective, context);

        bool keepInner = candidate is null || (options.KeepInnerUnlessImproved && !(storedError < initialError));
        CompressedTensor result = keepInner ? compressed : candidate!;
        double finalError = keepInner ? initialError : storedError;
        TimeSpan elapsed = Stopwatch.GetElapsedTime(start);
        context.Progress?.Report(new CompressionProgress(Stage, context.LayerName, options.MaxIterations, options.MaxIterations));
        context.Logger.LogInformation(
            "reconstruct {Layer}: {Kind}, {Count} parameters, relative output error {Initial:G4} → {Fitted:G4} (fitted) → {Stored:G4} (stored){Kept} after {Iterations} iterations ({Stop}, {Elapsed:F2} s).",
            context.LayerName, compressed.Kind, parameters.Length, initialError, search.Error, storedError,
            keepInner ? ", inner result kept" : "", search.Iterations, search.Stop, elapsed.TotalSeconds);

        return new LayerReconstructionResult(
            result, initialError, search.Error, storedError, finalError, keepInner, parameters.Length,
            search.Iterations, search.Evaluations, search.Stop, elapsed);
    }

    /// <summary>
    /// Stores the fitted θ; when the representation refuses it (a scale driven to zero or below, which the fit's joint
    /// optimum across groups can ask for), stores the furthest point θ₀ + t·(θ* − θ₀), t = ½, ¼, … (at most 30 halvings)
    /// that it accepts. The start θ₀ is stored as is, so such a t exists for constraints like positivity; and since the
    /// objective is convex in scales and kept values, E(θ₀ + t·(θ* − θ₀)) ≤ (1 − t)·E(θ₀) + t·E(θ*) still improves on
    /// the start. Returns null when nothing was accepted.
    /// </summary>
    private static (CompressedTensor? Tensor, double Error) Store(ITunableTensor tunable, string kind, float[] start, float[] fitted,
        ReconstructionObjective objective, CompressionContext context)
    {
        float[] trial = (float[])fitted.Clone();
        string? refusal = null;
        double t = 1;
        for (int attempt = 0; attempt <= 30; attempt++)
        {
            try
            {
                CompressedTensor candidate = tunable.WithTunableParameters(trial);
                if (refusal is not null)
                {
                    context.Logger.LogWarning(
                        "reconstruct {Layer}: the {Kind} tensor refused the fitted parameters ({Message}); stored {Fraction:G3} of the step from the start instead.",
                        context.LayerName, kind, refusal, t);
                }

                return (candidate, objective.Error(candidate.Decompress().Span));
            }
            catch (ArgumentException exception)
            {
                refusal ??= exception.Message;
                t /= 2;
                for (int i = 0; i < trial.Length; i++)
                {
                    trial[i] = (float)(start[i] + t * ((double)fitted[i] - start[i]));
                }
            }
        }

        context.Logger.LogWarning("reconstruct {Layer}: the {Kind} tensor refused the fitted parameters ({Message}); keeping the inner result.",
            context.LayerName, kind, refusal);
        return (null, double.NaN);
    }

    private static ITunableTensor ValidateArguments(DenseTensor weight, CompressedTensor compressed, CompressionContext context)
    {
        if (weight.Rank != 2)
        {
            throw new ArgumentException($"reconstruct: the weight must be a matrix [out, in]; got shape [{string.Join(", ", weight.Shape.ToArray())}].", nameof(weight));
        }

        if (weight.Rows != compressed.Rows || weight.Columns != compressed.Columns)
        {
            throw new ArgumentException(
                $"reconstruct: the weight is {weight.Rows}×{weight.Columns} but the compressed tensor is {compressed.Rows}×{compressed.Columns}.",
                nameof(compressed));
        }

        ReadOnlySpan<float> values = weight.Span;
        if (values.Length > 0 && !float.IsFinite(TensorPrimitives.MaxMagnitude(values)))
        {
            int index = 0;
            while (float.IsFinite(values[index]))
            {
                index++;
            }

            throw new ArgumentException(
                $"reconstruct: the weight holds {values[index]} at ({index / weight.Columns}, {index % weight.Columns}); weights must be finite.",
                nameof(weight));
        }

        if (context.InputHessian is not { } hessian)
        {
            throw new ArgumentException("reconstruct needs the layer's input Hessian: set CompressionContext.InputHessian.", nameof(context));
        }

        if (hessian.Columns != weight.Columns)
        {
            throw new ArgumentException(
                $"reconstruct: the input Hessian is {hessian.Columns}×{hessian.Columns} but the weight has {weight.Columns} columns.", nameof(context));
        }

        if (hessian.SampleCount == 0)
        {
            throw new ArgumentException("reconstruct: the input Hessian has seen no samples.", nameof(context));
        }

        if (compressed is not ITunableTensor tunable || tunable.TunableParameterCount == 0)
        {
            throw new ArgumentException(
                $"reconstruct: a '{compressed.Kind}' tensor has no continuous parameters to fit (it does not implement ITunableTensor, or " +
                "its parameter count is 0, as for power-of-two scales); wrap a compressor whose result has scales, factors or kept values.",
                nameof(compressed));
        }

        return tunable;
    }

    /// <summary>The L-BFGS iteration with its Armijo line search, over float32 parameters and float64 vectors.</summary>
    private sealed class Lbfgs
    {
        private readonly ReconstructionObjective _objective;
        private readonly LayerReconstructionOptions _options;
        private readonly CompressionContext _context;
        private readonly int _count;
        private readonly double[][] _s;
        private readonly double[][] _y;
        private readonly double[] _rho;
        private readonly double[] _alpha;
        private readonly double[] _direction;
        private float[] _x;
        private double[] _gradient;
        private float[] _trialX;
        private double[] _trialGradient;
        private float[] _spareX;
        private double[] _spareGradient;
        private int _stored;
        private int _newest = -1;

        public Lbfgs(ReconstructionObjective objective, float[] start, LayerReconstructionOptions options, CompressionContext context)
        {
            _objective = objective;
            _options = options;
            _context = context;
            _count = start.Length;
            int history = options.History;
            _s = new double[history][];
            _y = new double[history][];
            for (int i = 0; i < history; i++)
            {
                _s[i] = new double[_count];
                _y[i] = new double[_count];
            }

            _rho = new double[history];
            _alpha = new double[history];
            _direction = new double[_count];
            _x = start;
            _gradient = new double[_count];
            _trialX = new float[_count];
            _trialGradient = new double[_count];
            _spareX = new float[_count];
            _spareGradient = new double[_count];
            Error = Evaluate(_x, _gradient);
        }

        public float[] Parameters => _x;

        public double Error { get; private set; }

        public int Iterations { get; private set; }

        public int Evaluations { get; private set; }

        public LayerReconstructionStop Stop { get; private set; } = LayerReconstructionStop.MaxIterations;

        public void Run(CancellationToken token)
        {
            while (Iterations < _options.MaxIterations)
            {
                token.ThrowIfCancellationRequested();
                if (TensorPrimitives.MaxMagnitude<double>(_gradient) == 0)
                {
                    Stop = LayerReconstructionStop.Converged;
                    return;
                }

                double previous = Error;
                if (!TryStep() && (_stored == 0 || !ResetAndTryStep()))
                {
                    Stop = LayerReconstructionStop.NoDescent;
                    return;
                }

                Iterations++;
                _context.Progress?.Report(new CompressionProgress(Stage, _context.LayerName, Iterations, _options.MaxIterations));
                if (previous - Error <= _options.RelativeTolerance * previous)
                {
                    Stop = LayerReconstructionStop.Converged;
                    return;
                }
            }
        }

        private bool ResetAndTryStep()
        {
            // Stale curvature pairs gave no usable direction: fall back to steepest descent once.
            _stored = 0;
            _newest = -1;
            return TryStep();
        }

        /// <summary>One line search along the L-BFGS direction; on success moves to the new point and stores the pair.</summary>
        private bool TryStep()
        {
            double slope = ComputeDirection();
            if (!(slope < 0))
            {
                _stored = 0;
                _newest = -1;
                slope = ComputeDirection();
                if (!(slope < 0))
                {
                    return false;
                }
            }

            // With a curvature model the unit step is the natural trial; without one, a step of unit length, expanded below.
            double step = _stored > 0 ? 1 : 1 / Math.Sqrt(TensorPrimitives.SumOfSquares<double>(_direction));
            double f0 = Error;
            double trialError = double.NaN;
            bool accepted = false;
            for (int attempt = 0; attempt < MaxBacktracks; attempt++)
            {
                if (!Move(step, _trialX))
                {
                    return false;
                }

                trialError = Evaluate(_trialX, _trialGradient);
                if (double.IsFinite(trialError) && trialError <= f0 + SufficientDecrease * step * slope && trialError < f0)
                {
                    accepted = true;
                    break;
                }

                // Safeguarded minimiser of the quadratic through f(0), f'(0) and f(step).
                double next = double.IsFinite(trialError)
                    ? -slope * step * step / (2 * (trialError - f0 - slope * step))
                    : 0.1 * step;
                step = Math.Clamp(double.IsFinite(next) ? next : 0.1 * step, 0.1 * step, 0.5 * step);
            }

            if (!accepted)
            {
                return false;
            }

            if (_stored == 0)
            {
                // No curvature model yet: double the step while the objective keeps falling.
                for (int attempt = 0; attempt < MaxExpansions; attempt++)
                {
                    step *= 2;
                    if (!Move(step, _spareX))
                    {
                        break;
                    }

                    double spareError = Evaluate(_spareX, _spareGradient);
                    if (!(spareError < trialError))
                    {
                        break;
                    }

                    trialError = spareError;
                    (_trialX, _spareX) = (_spareX, _trialX);
                    (_trialGradient, _spareGradient) = (_spareGradient, _trialGradient);
                }
            }

            StorePair();
            (_x, _trialX) = (_trialX, _x);
            (_gradient, _trialGradient) = (_trialGradient, _gradient);
            Error = trialError;
            return true;
        }

        /// <summary>Writes x + step·d rounded to float32; false when that equals x (the step is below float resolution).</summary>
        private bool Move(double step, float[] destination)
        {
            bool moved = false;
            for (int i = 0; i < _count; i++)
            {
                float value = (float)(_x[i] + step * _direction[i]);
                destination[i] = value;
                moved |= value != _x[i];
            }

            return moved;
        }

        /// <summary>The two-loop recursion: d = −H̃·g; returns gᵀd.</summary>
        private double ComputeDirection()
        {
            Span<double> q = _direction;
            _gradient.CopyTo(q);
            int history = _s.Length;
            for (int k = 0; k < _stored; k++)
            {
                int i = ((_newest - k) % history + history) % history;
                _alpha[i] = _rho[i] * TensorPrimitives.Dot<double>(_s[i], q);
                TensorPrimitives.MultiplyAdd<double>(_y[i], -_alpha[i], q, q);
            }

            if (_stored > 0)
            {
                // Initial inverse Hessian γ·I with γ = sᵀy / yᵀy of the newest pair (Nocedal and Wright, eq. 7.20).
                double[] s = _s[_newest], y = _y[_newest];
                TensorPrimitives.Multiply<double>(q, TensorPrimitives.Dot<double>(s, y) / TensorPrimitives.SumOfSquares<double>(y), q);
            }

            for (int k = _stored - 1; k >= 0; k--)
            {
                int i = ((_newest - k) % history + history) % history;
                double beta = _rho[i] * TensorPrimitives.Dot<double>(_y[i], q);
                TensorPrimitives.MultiplyAdd<double>(_s[i], _alpha[i] - beta, q, q);
            }

            TensorPrimitives.Negate<double>(q, q);
            return TensorPrimitives.Dot<double>(_gradient, q);
        }

        private void StorePair()
        {
            int history = _s.Length;
            int slot = (_newest + 1) % history;
            double[] s = _s[slot], y = _y[slot];
            for (int i = 0; i < _count; i++)
            {
                s[i] = (double)_trialX[i] - _x[i];
                y[i] = _trialGradient[i] - _gradient[i];
            }

            double sy = TensorPrimitives.Dot<double>(s, y);
            double ss = TensorPrimitives.SumOfSquares<double>(s), yy = TensorPrimitives.SumOfSquares<double>(y);
            // Keep only pairs with clearly positive curvature, so the model stays positive definite (a bilinear
            // low-rank objective can have negative curvature along a step).
            if (sy > 1e-10 * Math.Sqrt(ss * yy))
            {
                _rho[slot] = 1 / sy;
                _newest = slot;
                _stored = Math.Min(_stored + 1, history);
            }
        }

        private double Evaluate(float[] parameters, double[] gradient)
        {
            // Once per evaluation as well as per iteration: a line search may evaluate dozens of times, each a pass of
            // products with the Hessian (seconds together for a large layer).
            _context.CancellationToken.ThrowIfCancellationRequested();
            Evaluations++;
            return _objective.Evaluate(parameters, gradient);
        }
    }
}
