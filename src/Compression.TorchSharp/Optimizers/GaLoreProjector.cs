// Licensed under the MIT License. See LICENSE in the repository root.
// Part of the Compression library for .NET.

using System;
using System.IO;
using TorchSharp;
using static TorchSharp.torch;

namespace Compression.TorchSharp.Optimizers;

/// <summary>
/// One parameter's projection: a d×r basis B with orthonormal columns (d = m on the left, n on the right), refreshed
/// from the gradient's SVD on schedule, held in full precision or as INT4 (Q-GaLore). Left: R = Bᵀ·G and G̃ = B·N;
/// right: R = G·B and G̃ = N·Bᵀ.
/// </summary>
internal sealed class GaLoreProjector : IDisposable
{
    private readonly GaLoreSvdMethod _method;
    private readonly long _seed;
    private readonly QGaLoreOptions? _quantization;
    private Tensor? _basis;
    private Int4ColumnMatrix? _quantized;

    public GaLoreProjector(bool left, int rank, long gap, GaLoreSvdMethod method, long seed, QGaLoreOptions? quantization)
    {
        (IsLeft, Rank, Gap, _method, _seed, _quantization) = (left, rank, gap, method, seed, quantization);
        NextRefresh = 1;
    }

    /// <summary>Whether the left side (m) is projected.</summary>
    public bool IsLeft { get; }

    /// <summary>r.</summary>
    public int Rank { get; }

    /// <summary>Steps between refreshes now (grows under Q-GaLore's lazy rule).</summary>
    public long Gap { get; private set; }

    /// <summary>The 1-based step of the next refresh.</summary>
    public long NextRefresh { get; private set; }

    /// <summary>Refreshes so far.</summary>
    public int Refreshes { get; private set; }

    /// <summary>Refreshes in a row whose similarity reached the threshold (Q-GaLore).</summary>
    public int Streak { get; private set; }

    /// <summary>Mean |cos| between the columns of the last two bases; NaN before the second refresh.</summary>
    public double LastSimilarity { get; private set; } = double.NaN;

    /// <summary>Bytes held by the basis (codes and scales when quantized); 0 before the first refresh.</summary>
    public long Bytes => _quantized?.Bytes ?? (_basis is null ? 0 : _basis.NumberOfElements * _basis.ElementSize);

    /// <summary>The INT4 storage, when quantized and refreshed.</summary>
    internal Int4ColumnMatrix? Quantized => _quantized;

    /// <summary>Refreshes the basis from <paramref name="gradient"/> when <paramref name="step"/> is due; returns
    /// whether it did.</summary>
    public bool Update(Tensor gradient, long step)
    {
        if (step < NextRefresh)
        {
            return false;
        }

        using var scope = NewDisposeScope();
        // Each refresh draws its own stream from the seed, the refresh count and nothing else, so a resumed run draws
        // what the uninterrupted one would have.
        long stream = unchecked(_seed * 6364136223846793005L + Refreshes * 1442695040888963407L);
        Tensor fresh = SingularVectors.TopLeft(IsLeft ? gradient : gradient.t(), Rank, _method, stream).to(gradient.dtype);
        if (_quantization is { } q)
        {
            if (_quantized is not null)
            {
                Track(_quantized.Dequantize(fresh.dtype), fresh, q);
                _quantized.Dispose();
            }

            _quantized = Int4ColumnMatrix.Quantize(fresh, q.GroupSize);
        }
        else
        {
            _basis?.Dispose();
            // Long-lived state: out of every dispose scope (the step runs inside one).
            _basis = fresh.detach().DetachFromDisposeScope();
        }

        Refreshes++;
        NextRefresh = step + Gap;
        return true;
    }

    /// <summary>The basis to compute with (dequantized when stored as INT4), owned by the current dispose scope.</summary>
    public Tensor Basis(ScalarType dtype) =>
        _quantized?.Dequantize(dtype) ?? (_basis ?? throw new InvalidOperationException("The projection has not been computed yet.")).to(dtype).alias();

    /// <summary>R: r×n on the left (Bᵀ·G), m×r on the right (G·B).</summary>
    public Tensor Project(Tensor gradient, Tensor basis) => IsLeft ? basis.t().matmul(gradient) : gradient.matmul(basis);

    /// <summary>The full-size update: B·N on the left, N·Bᵀ on the right.</summary>
    public Tensor ProjectBack(Tensor low, Tensor basis) => IsLeft ? basis.matmul(low) : low.matmul(basis.t());

    // Q-GaLore's lazy rule. |cos| per column, because SVD may flip a singular vector's sign between refreshes
    // without the subspace moving at all.
    private void Track(Tensor previous, Tensor fresh, QGaLoreOptions q)
    {
        // sum over dimension 0 spelled as an array: a bare literal 0 would bind to the dtype overload (0 converts to
        // any enum) and sum everything as bytes.
        Tensor dot = (previous * fresh).sum([0L]).abs();
        Tensor norms = previous.norm(0, keepdim: false) * fresh.norm(0, keepdim: false);
        LastSimilarity = (dot / norms.clamp_min(1e-30)).mean().to(ScalarType.Float64).item<double>();
        Streak = LastSimilarity >= q.CosineThreshold ? Streak + 1 : 0;
        if (Streak >= q.Patience)
        {
            Gap *= q.GapGrowth;
            Streak = 0;
        }
    }

    public void Save(BinaryWriter writer)
    {
        writer.Write(Gap);
        writer.Write(NextRefresh);
        writer.Write(Refreshes);
        writer.Write(Streak);
        writer.Write(LastSimilarity);
        writer.Write(_basis is not null);
        _basis?.Save(writer);
        writer.Write(_quantized is not null);
        _quantized?.Save(writer);
    }

    public void Load(BinaryReader reader, long rows, ScalarType dtype, Device device)
    {
        Gap = reader.ReadInt64();
        NextRefresh = reader.ReadInt64();
        Refreshes = reader.ReadInt32();
        Streak = reader.ReadInt32();
        LastSimilarity = reader.ReadDouble();
        _basis?.Dispose();
        _basis = null;
        if (reader.ReadBoolean())
        {
            _basis = torch.zeros([rows, Rank], dtype, device).DetachFromDisposeScope();
            _basis.Load(reader);
        }

        _quantized?.Dispose();
        _quantized = null;
        if (reader.ReadBoolean())
        {
            _quantized = Int4ColumnMatrix.Load(reader);
            _quantized.To(device);
        }
    }

    public void CopyFrom(GaLoreProjector source, Device device)
    {
        (Gap, NextRefresh, Refreshes, Streak, LastSimilarity) = (source.Gap, source.NextRefresh, source.Refreshes, source.Streak, source.LastSimilarity);
        _basis?.Dispose();
        _basis = source._basis?.to(device, copy: true).DetachFromDisposeScope();
        _quantized?.Dispose();
        _quantized = null;
        if (source._quantized is { } sq)
        {
            using var stream = new MemoryStream();
            using (var writer = new BinaryWriter(stream, System.Text.Encoding.UTF8, leaveOpen: true))
            {
                sq.Save(writer);
            }

            stream.Position = 0;
            using var reader = new BinaryReader(stream);
            _quantized = Int4ColumnMatrix.Load(reader);
            _quantized.To(device);
        }
    }

    public void To(Device device)
    {
        if (_basis is not null)
        {
            _basis = _basis.to(device, disposeAfter: true).DetachFromDisposeScope();
        }

        _quantized?.To(device);
    }

    public void Dispose()
    {
        _basis?.Dispose();
        _quantized?.Dispose();
    }
}
