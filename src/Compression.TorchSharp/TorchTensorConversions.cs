// Licensed under the MIT License. See LICENSE in the repository root.
// Part of the Compression library for .NET.

using System;
using System.Linq;
using Compression.Tensors;
using TorchSharp;
using static TorchSharp.torch;

namespace Compression.TorchSharp;

/// <summary>Copies between <see cref="DenseTensor"/> and TorchSharp tensors.</summary>
/// <remarks>
/// Both directions copy: a <see cref="DenseTensor"/> lives in managed memory, a TorchSharp tensor in libtorch's (or
/// on a GPU). Reading converts any floating dtype to float32 exactly (float64 rounds to nearest); writing produces
/// float32 and, if asked, converts with libtorch's own rounding (round-to-nearest-even for float16/bfloat16).
/// </remarks>
public static class TorchTensorConversions
{
    /// <summary>Copies a TorchSharp tensor (any floating dtype, any device, any strides) into a new float32 tensor.</summary>
    /// <exception cref="ArgumentException">The tensor is not floating point, or too large for one array.</exception>
    public static DenseTensor ToDenseTensor(this Tensor tensor)
    {
        ArgumentNullException.ThrowIfNull(tensor);
        if (!tensor.is_floating_point())
        {
            throw new ArgumentException($"Expected a floating-point tensor, got {tensor.dtype}.", nameof(tensor));
        }

        if (tensor.shape.Any(d => d > int.MaxValue) || tensor.numel() > Array.MaxLength)
        {
            throw new ArgumentException($"Tensor of shape [{string.Join(", ", tensor.shape)}] is too large for one array.", nameof(tensor));
        }

        using var scope = NewDisposeScope();
        Tensor cpu = tensor.detach().to(ScalarType.Float32, CPU).contiguous();
        var result = new DenseTensor(tensor.shape.Select(d => (int)d).ToArray());
        cpu.data<float>().CopyTo(result.Span);
        return result;
    }

    /// <summary>Copies a tensor into a new TorchSharp tensor of the same shape.</summary>
    /// <param name="tensor">The source.</param>
    /// <param name="dtype">The element type of the result; float32 by default.</param>
    /// <param name="device">The device of the result; the CPU by default.</param>
    /// <exception cref="ArgumentException"><paramref name="dtype"/> is not a floating type.</exception>
    public static Tensor ToTorchTensor(this DenseTensor tensor, ScalarType dtype = ScalarType.Float32, Device? device = null)
    {
        ArgumentNullException.ThrowIfNull(tensor);
        if (!is_floating_point(dtype))
        {
            throw new ArgumentException($"Expected a floating dtype, got {dtype}.", nameof(dtype));
        }

        long[] shape = tensor.Shape.ToArray().Select(d => (long)d).ToArray();
        using var scope = NewDisposeScope();
        Tensor result = torch.tensor(tensor.Span.ToArray(), shape, ScalarType.Float32);
        if (dtype != ScalarType.Float32 || (device is not null && device.type != DeviceType.CPU))
        {
            result = result.to(dtype, device ?? CPU);
        }

        return result.MoveToOuterDisposeScope();
    }
}
