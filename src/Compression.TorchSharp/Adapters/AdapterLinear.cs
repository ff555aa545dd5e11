// Licensed under the MIT License. See LICENSE in the repository root.
// Part of the Compression library for .NET.

using System;
using System.Collections.Generic;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Compression.TorchSharp.Adapters;

/// <summary>
/// A frozen linear layer (<c>nn.Linear</c>, or a packed <see cref="QuantizedLinear"/> for QLoRA) plus a trainable
/// low-rank update ΔW: y = base(x) + Δ(x). The base module is registered as <c>base_layer</c>, as PEFT does, and all its
/// parameters are frozen.
/// </summary>
/// <remarks>
/// <para><see cref="Merge"/> writes the adapted weight into the base and keeps the weight it replaced, so
/// <see cref="Unmerge"/> restores it bit for bit: subtracting ΔW again would not (float addition is not invertible,
/// W + ΔW − ΔW differs from W in the last bit wherever rounding occurred). The copy costs one out×in float32 tensor per
/// merged layer; <see cref="Lora.MergeAndUnload"/>, which never unmerges, does not keep it.</para>
/// <para>A quantized base cannot be merged into: its packed codes have no room for ΔW. <see cref="Merge"/> refuses;
/// <see cref="Lora.MergeAndUnload"/> dequantizes explicitly when asked.</para>
/// </remarks>
public abstract class AdapterLinear : nn.Module<Tensor, Tensor>
{
    // A field whose name starts with '_': TorchSharp also lists modules under their fields' names, and
    // CanonicalModules prefers the registered name (base_layer) over such names.
    private readonly nn.Module<Tensor, Tensor> _baseLayer;
    private Tensor? _weightBeforeMerge;

    /// <summary>Wraps <paramref name="baseLayer"/> (kept, not copied) and freezes its parameters.</summary>
    /// <exception cref="ArgumentException">The base is neither <c>nn.Linear</c> nor <see cref="QuantizedLinear"/>.</exception>
    protected AdapterLinear(string name, nn.Module<Tensor, Tensor> baseLayer)
        : base(name)
    {
        ArgumentNullException.ThrowIfNull(baseLayer);
        (InFeatures, OutFeatures) = baseLayer switch
        {
            Linear linear => (linear.in_features, linear.out_features),
            QuantizedLinear quantized => (quantized.InFeatures, quantized.OutFeatures),
            _ => throw new ArgumentException($"An adapter wraps nn.Linear or QuantizedLinear, not {baseLayer.GetType().Name}.", nameof(baseLayer)),
        };
        _baseLayer = baseLayer;
        foreach (Parameter parameter in baseLayer.parameters())
        {
            parameter.requires_grad = false;
        }

        register_module("base_layer", baseLayer);
    }

    /// <summary>The frozen base layer.</summary>
    public nn.Module<Tensor, Tensor> BaseLayer => _baseLayer;

    /// <summary>A parameter this adapter registered, looked up by name on every use.</summary>
    /// <remarks><c>Module.to(dtype)</c> and <c>to(device)</c> replace parameter objects; a field would keep the disposed
    /// one.</remarks>
    private protected Parameter RegisteredParameter(string name) =>
        get_parameter(name) ?? throw new InvalidOperationException($"{GetType().Name} has no parameter '{name}'.");

    /// <summary>Input features.</summary>
    public long InFeatures { get; }

    /// <summary>Output features.</summary>
    public long OutFeatures { get; }

    /// <summary>Whether the base is packed (QLoRA): it cannot be merged into.</summary>
    public bool HasQuantizedBase => BaseLayer is QuantizedLinear;

    /// <summary>Whether ΔW is currently merged into the base weight (the forward pass is then the base's alone).</summary>
    public bool IsMerged => _weightBeforeMerge is not null;

    /// <summary>The options the adapter was built with.</summary>
    public abstract LoraOptions Options { get; }

    /// <summary>The number of trainable adapter values.</summary>
    public long TrainableParameterCount
    {
        get
        {
            long count = 0;
            foreach (Parameter parameter in parameters())
            {
                if (parameter.requires_grad)
                {
                    count += parameter.numel();
                }
            }

            return count;
        }
    }

    /// <summary>y = base(x) + Δ(x) while unmerged; base(x) once merged.</summary>
    public override Tensor forward(Tensor input) => IsMerged ? BaseLayer.call(input) : AdaptedForward(input);

    /// <summary>The update ΔW [out, in] in float32 (the adapted weight minus the base weight), detached.</summary>
    public Tensor DeltaWeight()
    {
        using var noGrad = torch.no_grad();
        using var scope = NewDisposeScope();
        Tensor weight = BaseWeight();
        return (MergedWeight(weight) - weight).MoveToOuterDisposeScope();
    }

    /// <summary>Writes the adapted weight into the base weight, keeping the replaced weight for <see cref="Unmerge"/>.</summary>
    /// <exception cref="InvalidOperationException">The base is quantized, or the adapter is already merged.</exception>
    public void Merge()
    {
        Linear linear = MergeableBase();
        if (IsMerged)
        {
            throw new InvalidOperationException("The adapter is already merged; Unmerge it first.");
        }

        using var noGrad = torch.no_grad();
        Tensor weight = linear.weight!;
        Tensor before = weight.detach().clone();
        using (Tensor merged = MergedWeight(before))
        {
            weight.copy_(merged);
        }

        _weightBeforeMerge = before;
    }

    /// <summary>Restores the base weight saved by <see cref="Merge"/>, bit for bit.</summary>
    /// <exception cref="InvalidOperationException">The adapter is not merged.</exception>
    public void Unmerge()
    {
        Tensor before = _weightBeforeMerge ?? throw new InvalidOperationException("The adapter is not merged.");
        using (torch.no_grad())
        {
            ((Linear)BaseLayer).weight!.copy_(before);
        }

        before.Dispose();
        _weightBeforeMerge = null;
    }

    /// <summary>A plain <c>nn.Linear</c> holding the adapted weight (and the base's bias), for
    /// <see cref="Lora.MergeAndUnload"/>; a quantized base is dequantized only when <paramref name="dequantize"/> is set.</summary>
    /// <exception cref="InvalidOperationException">The base is quantized and <paramref name="dequantize"/> is false.</exception>
    public Linear ToMergedLinear(bool dequantize = false)
    {
        if (HasQuantizedBase && !dequantize)
        {
            throw new InvalidOperationException("The base layer is quantized: merging would have to dequantize it. Pass dequantize: true to get a dense float32 layer.");
        }

        using var noGrad = torch.no_grad();
        Tensor? bias = BaseLayer switch { Linear l => l.bias, QuantizedLinear q => q.Bias, _ => null };
        Linear result = nn.Linear(InFeatures, OutFeatures, hasBias: bias is not null);
        using (Tensor weight = BaseWeight())
        using (Tensor merged = IsMerged ? weight.clone() : MergedWeight(weight))
        {
            result.weight!.copy_(merged);
        }

        if (bias is not null)
        {
            result.bias!.copy_(bias);
        }

        return result;
    }

    /// <summary>The adapter's tensors under their PEFT names relative to the module (<c>lora_A.weight</c>, …), the
    /// tensors themselves (saving reads them, loading copies into them).</summary>
    internal abstract IEnumerable<(string Name, Tensor Tensor)> AdapterTensors();

    /// <summary>The adapted output while unmerged.</summary>
    protected abstract Tensor AdaptedForward(Tensor input);

    /// <summary>The adapted weight for base weight <paramref name="weight"/> (float32, [out, in], no gradient).</summary>
    protected abstract Tensor MergedWeight(Tensor weight);

    /// <summary>The base weight [out, in] as float32 (a new tensor; dequantized for a packed base), detached.</summary>
    protected Tensor BaseWeight() => BaseLayer switch
    {
        Linear linear => linear.weight!.detach().clone(),
        QuantizedLinear quantized => quantized.Weight.Decompress().ToTorchTensor(),
        _ => throw new InvalidOperationException("Unreachable: the constructor accepts only linear bases."),
    };

    /// <summary>The base's bias, or null.</summary>
    protected Tensor? BaseBias => BaseLayer switch { Linear l => l.bias, QuantizedLinear q => q.Bias, _ => null };

    /// <summary>The dense base, or the reason merging is refused.</summary>
    protected Linear MergeableBase() => BaseLayer as Linear ?? throw new InvalidOperationException(
        "The base layer is quantized (QLoRA): ΔW cannot be merged into packed codes. Use Lora.MergeAndUnload(model, dequantize: true) to get a dense layer.");

    /// <summary>Kaiming-uniform with a = √5 (bound 1/√fan_in), <c>nn.Linear</c>'s default and PEFT's choice for A.</summary>
    internal static Tensor KaimingUniform(long rows, long fanIn, Generator generator)
    {
        double bound = 1 / Math.Sqrt(fanIn);
        using Tensor unit = torch.rand([rows, fanIn], ScalarType.Float32, generator: generator);
        return unit * (2 * bound) - bound;
    }

    /// <inheritdoc/>
    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            _weightBeforeMerge?.Dispose();
            _weightBeforeMerge = null;
        }

        base.Dispose(disposing);
    }
}
