using Compression.Calibration;
using Compression.Quantization;
using Compression.Tensors;
using Compression.Testing;

namespace Compression.Distillation.Tests;

/// <summary>
/// The Distillation rows of the bad-input matrix (docs/reliability.md) beyond LayerReconstructorTests: the
/// reconstructing compressor (the ICompressor of this package) and the layer fit refuse each bad input with the
/// documented exception, the parameter and the numbers, before the inner compressor runs.
/// </summary>
public class BadInputTests
{
    private static readonly DenseTensor Good = RandomData.GaussianMatrix(6, 16, seed: 1);

    /// <summary>(what is wrong, the call, the exception type expected exactly, its ParamName or null, a fragment of its message).</summary>
    public static TheoryData<string, Action, Type, string?, string> Cases => new()
    {
        { "compressor: NaN weight", () => Compressor().Compress(WithValue(float.NaN), Hessian(16)), typeof(ArgumentException), "weight", "NaN at (2, 5)" },
        { "compressor: +Inf weight", () => Compressor().Compress(WithValue(float.PositiveInfinity), Hessian(16)), typeof(ArgumentException), "weight", "Infinity at (2, 5)" },
        { "compressor: rank-3 weight", () => Compressor().Compress(new DenseTensor(2, 3, 16), Hessian(16)), typeof(ArgumentException), "weight", "[2, 3, 16]" },
        { "compressor: no Hessian", () => Compressor().Compress(Good, CompressionContext.Default), typeof(ArgumentException), "context", "Hessian" },
        { "compressor: Hessian of the wrong size", () => Compressor().Compress(Good, Hessian(12)), typeof(ArgumentException), "context", "16 columns" },
        { "compressor: Hessian without samples", () => Compressor().Compress(Good, new CompressionContext { InputHessian = new HessianAccumulator(16) }), typeof(ArgumentException), "context", "no samples" },
        { "compressor: null inner", () => _ = new ReconstructingCompressor(null!), typeof(ArgumentNullException), "inner", "inner" },
        { "fit: rank-3 weight", () => LayerReconstructor.Fit(new DenseTensor(2, 3, 16), Rtn(), Hessian(16)), typeof(ArgumentException), "weight", "[2, 3, 16]" },
        { "fit: null compressed tensor", () => LayerReconstructor.Fit(Good, null!, Hessian(16)), typeof(ArgumentNullException), "compressed", "compressed" },
        { "fit: compressed tensor of another shape", () => LayerReconstructor.Fit(RandomData.GaussianMatrix(6, 8, seed: 2), Rtn(), Hessian(8)), typeof(ArgumentException), "compressed", "6×8" },
        { "options: tolerance NaN", () => _ = LayerReconstructionOptions.Default with { RelativeTolerance = double.NaN }, typeof(ArgumentOutOfRangeException), "RelativeTolerance", "NaN" },
    };

    [Theory]
    [MemberData(nameof(Cases))]
    public void BadInput_IsRefused_WithTheDocumentedException(string why, Action call, Type expected, string? parameter, string detail) =>
        BadInput.AssertRefused(why, call, expected, parameter, detail);

    private static ReconstructingCompressor Compressor() => new(RtnOptions.W8PerChannel.CreateCompressor());

    private static CompressedTensor Rtn() => RtnOptions.W8PerChannel.CreateCompressor().Quantize(Good);

    private static CompressionContext Hessian(int columns) => new() { InputHessian = RandomData.CorrelatedHessian(columns, 64, seed: 3) };

    private static DenseTensor WithValue(float value) => BadInput.WithValueAt25(Good, value);
}
