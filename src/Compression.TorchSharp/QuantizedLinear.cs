// Licensed under the MIT License. See LICENSE in the repository root.
// Part of the Compression library for .NET.

using System;
using Compression.Quantization;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Compression.TorchSharp;

/// <summary>
/// A linear layer whose weight is kept compressed (packed codes and scales, a <see cref="CompressedTensor"/> from the
/// quantizers): the dense weight exists only during a forward pass, which dequantizes it and multiplies as
/// <c>nn.Linear</c> does, so its output equals that of a <c>Linear</c> holding the dequantized weight.
/// </summary>
/// <remarks>
/// <see cref="Quantizer.Pack"/> swaps a quantized model's linear layers for these; <see cref="CompressedModels"/>
/// saves and loads them in the compressed-tensors layout. The bias (if any) stays a float32 parameter named
/// <c>bias</c>, so parameter names match the original model's.
/// <para>Scale training (<see cref="Distiller"/> with <see cref="Distillation.TrainableParts.QuantizationScales"/>): the
/// layer then holds the factors u the scales multiply (<c>UnscaledValues</c>), each element's scale index and the scales
/// as a float32 parameter θ that is <em>not</em> registered (parameter names and saved checkpoints stay as they were);
/// the forward pass computes W = u ⊙ θ[index] so gradients reach θ, and committing stores θ rounded to its storage
/// type with the same codes (<c>WithScales</c>), so every code stays on its grid.</para>
/// </remarks>
public sealed class QuantizedLinear : nn.Module<Tensor, Tensor>
{
    // Looked up on every use: Module.to(dtype/device) replaces parameter objects, and a field would keep the disposed one.
    private Parameter? _bias => get_parameter("bias");
    private Parameter? _trainedScales;
    private Tensor? _unscaled;
    private Tensor? _scaleIndex;

    /// <summary>Wraps a compressed weight [out, in] and an optional bias [out] (copied).</summary>
    /// <param name="weight">The compressed weight.</param>
    /// <param name="bias">The bias, or null.</param>
    /// <param name="inputActivations">Declared quantization of the layer's input (dynamic per-token FP8), simulated in
    /// every forward pass (<see cref="ActivationFakeQuantization"/>); null (the default) keeps the input as it is.</param>
    /// <exception cref="ArgumentException">The bias does not have one value per output.</exception>
    public QuantizedLinear(CompressedTensor weight, Tensor? bias = null, ActivationQuantization? inputActivations = null)
        : base(nameof(QuantizedLinear))
    {
        ArgumentNullException.ThrowIfNull(weight);
        Weight = weight;
        InputActivations = inputActivations;
        if (bias is not null)
        {
            if (bias.ndim != 1 || bias.shape[0] != weight.Rows)
            {
                throw new ArgumentException($"The bias has shape [{string.Join(", ", bias.shape)}]; [{weight.Rows}] expected.", nameof(bias));
            }

            register_parameter("bias", new Parameter(bias.detach().to(ScalarType.Float32).clone(), requires_grad: false));
        }
    }

    /// <summary>The compressed weight, [out, in].</summary>
    public CompressedTensor Weight { get; private set; }

    /// <summary>Input features.</summary>
    public long InFeatures => Weight.Columns;

    /// <summary>Output features.</summary>
    public long OutFeatures => Weight.Rows;

    /// <summary>The bias, or null.</summary>
    public Parameter? Bias => _bias;

    /// <summary>The declared input-activation quantization (simulated in <see cref="forward"/>), or null for weight-only.</summary>
    public ActivationQuantization? InputActivations { get; }

    /// <summary>y = x·Wᵀ + b with W dequantized for this call, and x quantized and dequantized first when
    /// <see cref="InputActivations"/> declares it.</summary>
    public override Tensor forward(Tensor input)
    {
        if (InputActivations is not null)
        {
            using Tensor quantized = ActivationFakeQuantization.Apply(input, InputActivations);
            return Linear(quantized);
        }

        return Linear(input);
    }

    private Tensor Linear(Tensor input)
    {
        if (_trainedScales is not null)
        {
            using var scope = NewDisposeScope();
            Tensor scales = _trainedScales.index_select(0, _scaleIndex!).view(OutFeatures, InFeatures);
            return nn.functional.linear(input, As(_unscaled! * scales, input.dtype)!, As(_bias, input.dtype)).MoveToOuterDisposeScope();
        }

        // The weight is dequantized in float32 and cast to the activations' dtype (as vLLM's and llm-compressor's
        // kernels do), so a model converted with to(bfloat16) runs; for float32 activations the casts are no-ops.
        using var forwardScope = NewDisposeScope();
        Tensor weight = As(Weight.Decompress().ToTorchTensor(device: input.device), input.dtype)!;
        return nn.functional.linear(input, weight, As(_bias, input.dtype)).MoveToOuterDisposeScope();
    }

    /// <summary>Whether the weight's scales can train: a <see cref="QuantizedTensor"/> (or GPTQ's) whose scales are
    /// continuous (float32, float16, bfloat16, FP8 E4M3), not MX's powers of two or NF4's double-quantized codes; a
    /// Hadamard-rotated GPTQ weight mixes a block's scales in every element and is not trained either.</summary>
    internal bool CanTrainScales => Weight is QuantizedTensor { TunableParameterCount: > 0 }
        or GptqTensor { TunableParameterCount: > 0, Rotation: null };

    /// <summary>The float32 scales being trained, or null outside scale training.</summary>
    internal Parameter? TrainedScales => _trainedScales;

    /// <summary>Starts scale training on <paramref name="device"/>: returns θ (the stored scales, trainable), which the
    /// forward pass now uses with the fixed codes.</summary>
    /// <exception cref="InvalidOperationException">The scales cannot train, or training has already begun.</exception>
    internal Parameter BeginScaleTraining(Device device)
    {
        if (_trainedScales is not null || !CanTrainScales)
        {
            throw new InvalidOperationException("This layer's scales cannot train (not continuous, or rotated) or are already training.");
        }

        (float[] unscaled, int[] index, QuantizedTensor quantized) = Weight switch
        {
            GptqTensor gptq => (gptq.UnscaledValues(), gptq.ScaleIndex(), gptq.Quantized),
            _ => (((QuantizedTensor)Weight).UnscaledValues(), ((QuantizedTensor)Weight).ScaleIndex(), (QuantizedTensor)Weight),
        };
        _unscaled = torch.tensor(unscaled, [OutFeatures, InFeatures], device: device);
        using (Tensor index32 = torch.tensor(index, device: device))
        {
            _scaleIndex = index32.to(ScalarType.Int64);
        }

        _trainedScales = new Parameter(torch.tensor(quantized.Scales.ToArray(), device: device), requires_grad: true);
        return _trainedScales;
    }

    /// <summary>Ends scale training: the weight becomes the same codes with θ rounded to the scales' storage type, and
    /// the forward pass dequantizes it again. Does nothing outside scale training.</summary>
    /// <exception cref="ArgumentException">A trained scale cannot be stored (not finite, or not positive where the format
    /// requires it); training then continues, with nothing changed.</exception>
    internal void CommitScales()
    {
        if (_trainedScales is null)
        {
            return;
        }

        float[] scales;
        using (torch.no_grad())
        using (Tensor cpu = _trainedScales.detach().cpu())
        {
            scales = cpu.data<float>().ToArray();
        }

        Weight = Weight is GptqTensor gptq ? gptq.WithScales(scales) : ((QuantizedTensor)Weight).WithScales(scales);
        _trainedScales.Dispose();
        _unscaled!.Dispose();
        _scaleIndex!.Dispose();
        (_trainedScales, _unscaled, _scaleIndex) = (null, null, null);
    }

    // Never returns a new alias of a tensor already in the wanted dtype (a parameter must not land in a dispose scope).
    private static Tensor? As(Tensor? tensor, ScalarType dtype) => tensor is null || tensor.dtype == dtype ? tensor : tensor.to(dtype);
}
