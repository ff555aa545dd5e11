// Licensed under the MIT License. See LICENSE in the repository root.
// Part of the Compression library for .NET.

using System;
using System.IO;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Compression.TorchSharp.Optimizers;

/// <summary>
/// One parameter's state in <see cref="GaLoreAdamW"/>: the step count, Adam's moments (r-dimensional when projected)
/// and the projector.
/// </summary>
internal sealed class GaLoreState : OptimizerState, IDisposable
{
    public GaLoreState(Parameter parameter, string name, GaLoreProjector? projector)
        : base(parameter)
    {
        Name = name;
        Projector = projector;
        ExpAvg = ExpAvgSq = null!;
    }

    public string Name { get; }

    public GaLoreProjector? Projector { get; }

    public long StepCount { get; private set; }

    /// <summary>M: the parameter's shape, or the projected one (r×n on the left, m×r on the right).</summary>
    public Tensor ExpAvg { get; private set; }

    /// <summary>V, shaped as <see cref="ExpAvg"/>.</summary>
    public Tensor ExpAvgSq { get; private set; }

    private long[] MomentShape => Projector is null
        ? _parameter.shape
        : Projector.IsLeft ? [Projector.Rank, _parameter.shape[1]] : [_parameter.shape[0], Projector.Rank];

    public void Step(Tensor gradient, double lr, GaLoreOptions options)
    {
        StepCount++;
        double beta1 = options.Beta1, beta2 = options.Beta2;
        double correction1 = 1 - Math.Pow(beta1, StepCount);
        double correction2 = 1 - Math.Pow(beta2, StepCount);

        Tensor? basis = null;
        Tensor g = gradient;
        if (Projector is not null)
        {
            Projector.Update(gradient, StepCount);
            basis = Projector.Basis(gradient.dtype);
            g = Projector.Project(gradient, basis);
        }

        ExpAvg.mul_(beta1).add_(g, alpha: 1 - beta1);
        ExpAvgSq.mul_(beta2).addcmul_(g, g, value: 1 - beta2);
        Tensor denominator = ExpAvgSq.sqrt().div_(Math.Sqrt(correction2)).add_(options.Epsilon);

        _parameter.mul_(1 - lr * options.WeightDecay);
        if (Projector is null)
        {
            // The same operations in the same order as torch.optim.AdamW, so unprojected parameters match it exactly.
            _parameter.addcdiv_(ExpAvg, denominator, value: -lr / correction1);
        }
        else
        {
            Tensor update = Projector.ProjectBack(ExpAvg / denominator, basis!);
            _parameter.add_(update, alpha: -lr * options.Scale / correction1);
        }
    }

    public GaLoreMemoryRow MemoryRow(GaLoreOptions options)
    {
        long element = _parameter.ElementSize;
        long adamW = 2 * _parameter.NumberOfElements * element;
        long held = ExpAvg.NumberOfElements * ExpAvg.ElementSize + ExpAvgSq.NumberOfElements * ExpAvgSq.ElementSize + (Projector?.Bytes ?? 0);
        if (Projector is null)
        {
            return new GaLoreMemoryRow(Name, _parameter.shape, null, null, held, adamW, adamW);
        }

        long r = Projector.Rank;
        long projected = Projector.IsLeft ? _parameter.shape[0] : _parameter.shape[1];
        long other = Projector.IsLeft ? _parameter.shape[1] : _parameter.shape[0];
        long basis = options.Quantization is { } q
            ? Int4ColumnMatrix.StorageBytes(projected, r, q.GroupSize)
            : projected * r * element;
        return new GaLoreMemoryRow(Name, _parameter.shape, Projector.Rank, Projector.IsLeft, held, adamW, basis + 2 * other * r * element);
    }

    public override void Initialize(OptimizerOptions options)
    {
        ExpAvg?.Dispose();
        ExpAvgSq?.Dispose();
        StepCount = 0;
        ExpAvg = torch.zeros(MomentShape, _parameter.dtype, _parameter.device).DetachFromDisposeScope();
        ExpAvgSq = torch.zeros(MomentShape, _parameter.dtype, _parameter.device).DetachFromDisposeScope();
    }

    public override void SaveStateDict(BinaryWriter writer)
    {
        writer.Write(StepCount);
        ExpAvg.Save(writer);
        ExpAvgSq.Save(writer);
        writer.Write(Projector is not null);
        Projector?.Save(writer);
    }

    public override void LoadStateDict(BinaryReader reader)
    {
        StepCount = reader.ReadInt64();
        ExpAvg.Load(reader);
        ExpAvgSq.Load(reader);
        if (reader.ReadBoolean() != Projector is not null)
        {
            throw new InvalidDataException($"The saved state of '{Name}' disagrees with this optimizer on whether the parameter is projected.");
        }

        Projector?.Load(reader, Projector.IsLeft ? _parameter.shape[0] : _parameter.shape[1], _parameter.dtype, _parameter.device);
    }

    public override void LoadStateDict(OptimizerState source)
    {
        var other = (GaLoreState)source;
        if (other.Projector is null != Projector is null)
        {
            throw new ArgumentException($"The state of '{other.Name}' disagrees with this optimizer on whether '{Name}' is projected.", nameof(source));
        }

        StepCount = other.StepCount;
        ExpAvg.Dispose();
        ExpAvgSq.Dispose();
        ExpAvg = other.ExpAvg.to(_parameter.device, copy: true).DetachFromDisposeScope();
        ExpAvgSq = other.ExpAvgSq.to(_parameter.device, copy: true).DetachFromDisposeScope();
        Projector?.CopyFrom(other.Projector!, _parameter.device);
    }

    public override bool ApproximatelyEquals(OptimizerState other) =>
        other is GaLoreState rhs && StepCount == rhs.StepCount && ExpAvg.allclose(rhs.ExpAvg) && ExpAvgSq.allclose(rhs.ExpAvgSq);

    public override void to(Device device)
    {
        ExpAvg = ExpAvg.to(device, disposeAfter: true).DetachFromDisposeScope();
        ExpAvgSq = ExpAvgSq.to(device, disposeAfter: true).DetachFromDisposeScope();
        Projector?.To(device);
    }

    public void Dispose()
    {
        ExpAvg.Dispose();
        ExpAvgSq.Dispose();
        Projector?.Dispose();
    }
}
