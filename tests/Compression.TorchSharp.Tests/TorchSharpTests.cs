using Compression.Tensors;
using Compression.Testing;
using Compression.TorchSharp;
using TorchSharp;
using BFloat16 = Compression.Tensors.BFloat16;
using static TorchSharp.torch;

namespace Compression.TorchSharp.Tests;

/// <summary>TorchSharp must load and compute on a fresh Debian 12 machine (see docs/torchsharp-native.md).</summary>
[Collection("TorchSharp")]
public class TorchSharpTests
{
    [Fact]
    public void LinearForward_Runs_AndEqualsTheFloat64Reference()
    {
        torch.manual_seed(20261123);
        using var linear = nn.Linear(6, 4, hasBias: true);
        DenseTensor x = RandomData.GaussianMatrix(3, 6, seed: 2);
        using Tensor input = x.ToTorchTensor();
        using Tensor output = linear.forward(input);

        DenseTensor y = output.ToDenseTensor();
        DenseTensor w = linear.weight!.ToDenseTensor();
        DenseTensor b = linear.bias!.ToDenseTensor();
        Assert.Equal([3, 4], y.Shape.ToArray());
        for (int i = 0; i < 3; i++)
        {
            for (int o = 0; o < 4; o++)
            {
                double expected = b.Span[o] + Enumerable.Range(0, 6).Sum(k => (double)x[i, k] * w[o, k]);
                // float32 dot products of 6 terms of magnitude ~1: 1e-5 is ~100 ulps of slack.
                Assert.Equal(expected, y[i, o], 1e-5);
            }
        }
    }

    [Fact]
    public void Conversions_RoundTrip_ForEveryFloatingDType()
    {
        DenseTensor t = RandomData.GaussianMatrix(5, 7, seed: 3);
        using Tensor f32 = t.ToTorchTensor();
        Assert.True(f32.ToDenseTensor().BitwiseEquals(t));

        using Tensor bf16 = t.ToTorchTensor(ScalarType.BFloat16);
        var expectedBf16 = new BFloat16[t.Length];
        t.CopyTo(expectedBf16);                                                  // our RNE must equal libtorch's
        Assert.Equal(expectedBf16.Select(v => (float)v), bf16.ToDenseTensor().Span.ToArray());

        using Tensor f16 = t.ToTorchTensor(ScalarType.Float16);
        var expectedHalf = new Half[t.Length];
        t.CopyTo(expectedHalf);
        Assert.Equal(expectedHalf.Select(v => (float)v), f16.ToDenseTensor().Span.ToArray());

        using Tensor f64 = t.ToTorchTensor(ScalarType.Float64);
        Assert.True(f64.ToDenseTensor().BitwiseEquals(t));
    }

    [Fact]
    public void ToDenseTensor_HandlesNonContiguousViews_AndRejectsIntegers()
    {
        using Tensor a = torch.arange(12, ScalarType.Float32).reshape(3, 4);
        using Tensor transposed = a.t();
        DenseTensor t = transposed.ToDenseTensor();
        Assert.Equal([4, 3], t.Shape.ToArray());
        Assert.Equal([0f, 4, 8, 1, 5, 9, 2, 6, 10, 3, 7, 11], t.Span.ToArray());

        using Tensor ints = torch.arange(3, ScalarType.Int64);
        Assert.Throws<ArgumentException>("tensor", () => ints.ToDenseTensor());
        Assert.Throws<ArgumentException>("dtype", () => t.ToTorchTensor(ScalarType.Int32));
    }
}
