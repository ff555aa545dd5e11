// Licensed under the MIT License. See LICENSE in the repository root.
// Part of the Compression library for .NET.

using System;
using System.Numerics.Tensors;
using Compression.Serialization;

namespace Compression.Composition;

/// <summary>
/// A main representation plus a correction of what it missed, reconstructed as their sum: for example a quantized
/// weight plus a low-rank correction of its quantization error (LoRC, EoRA), or a sparse weight plus a low-rank part.
/// </summary>
public sealed partial class ResidualTensor : CompressedTensor, ITunableTensor
{
    internal const string KindName = "residual";

    /// <summary>Combines two representations of the same shape.</summary>
    /// <exception cref="ArgumentException">The shapes differ.</exception>
    public ResidualTensor(CompressedTensor main, CompressedTensor correction)
        : base(CheckShapes(main, correction), main.Columns)
    {
        Main = main;
        Correction = correction;
    }

    /// <summary>The main representation.</summary>
    public CompressedTensor Main { get; }

    /// <summary>The correction added to it.</summary>
    public CompressedTensor Correction { get; }

    /// <inheritdoc/>
    public override string Kind => KindName;

    /// <inheritdoc/>
    public override long StorageBits => Main.StorageBits + Correction.StorageBits;

    /// <summary>The main part's mask: the correction may fill pruned positions, so the sum has none of its own.</summary>
    public override SparsityMask? SparsityMask => null;

    /// <inheritdoc/>
    protected override void DecompressCore(Span<float> destination)
    {
        Main.DecompressTo(destination);
        float[] correction = new float[destination.Length];
        Correction.DecompressTo(correction);
        TensorPrimitives.Add(destination, correction, destination);
    }

    /// <inheritdoc/>
    protected override void WriteTo(CompressedTensorWriter writer)
    {
        writer.WriteChild("main", Main);
        writer.WriteChild("correction", Correction);
    }

    internal static ResidualTensor Read(CompressedTensorReader reader) => new(reader.ReadChild("main"), reader.ReadChild("correction"));

    private static int CheckShapes(CompressedTensor main, CompressedTensor correction)
    {
        ArgumentNullException.ThrowIfNull(main);
        ArgumentNullException.ThrowIfNull(correction);
        if (main.Rows != correction.Rows || main.Columns != correction.Columns)
        {
            throw new ArgumentException(
                $"The correction is {correction.Rows}×{correction.Columns} but the main part is {main.Rows}×{main.Columns}.", nameof(correction));
        }

        return main.Rows;
    }
}
