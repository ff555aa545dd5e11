// Licensed under the MIT License. See LICENSE in the repository root.
// Part of the Compression library for .NET.

using System;
using System.Collections.Generic;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Compression.TorchSharp.Adapters;

/// <summary>
/// LoRA (Hu et al., "LoRA: Low-Rank Adaptation of Large Language Models", 2021) around a frozen linear layer:
/// y = base(x) + s·dropout(x)·Aᵀ·Bᵀ with A [r, in], B [out, r] and s = α/r (α/√r for rsLoRA). Optionally DoRA (Liu et al.,
/// "DoRA: Weight-Decomposed Low-Rank Adaptation", 2024) and PiSSA initialisation (Meng et al., 2024).
/// </summary>
/// <remarks>
/// <para>DoRA writes the adapted weight as m ⊙ V/‖V‖ with V = W + s·BA and ‖·‖ the norm of each output row; m starts at
/// the row norms of W, so the layer starts unchanged. As in the paper (section 4.3) and PEFT, ‖V‖ is treated as a
/// constant in the backward pass, which saves memory and barely changes the gradient.</para>
/// <para>QLoRA (Dettmers et al., 2023) is this module around a <see cref="QuantizedLinear"/>: the packed base stays
/// packed and frozen; only A and B (and m) train. Such a layer cannot be merged (<see cref="AdapterLinear.Merge"/>).</para>
/// </remarks>
/// <example>
/// <code>
/// using var lora = new LoraLinear(nn.Linear(384, 384), new LoraOptions { Rank = 8, Alpha = 16 });
/// Tensor y = lora.call(x);     // equals the base's output until B is trained away from zero
/// </code>
/// </example>
public sealed class LoraLinear : AdapterLinear
{
    private Parameter _a => RegisteredParameter("lora_A");
    private Parameter _b => RegisteredParameter("lora_B");
    private Parameter? _magnitude => get_parameter("lora_magnitude_vector");

    /// <summary>Wraps <paramref name="baseLayer"/> (kept, frozen) with a rank-<see cref="LoraOptions.Rank"/> adapter.</summary>
    /// <param name="baseLayer"><c>nn.Linear</c> or <see cref="QuantizedLinear"/>.</param>
    /// <param name="options">Rank, α, dropout, variants; <see cref="LoraOptions.Method"/> is ignored.</param>
    /// <param name="seed">Seed of A's initialisation; default <see cref="LoraOptions.Seed"/>.</param>
    /// <exception cref="ArgumentException">The rank exceeds min(in, out), the base is not linear, or PiSSA is asked for
    /// a quantized base (it must rewrite the base weight).</exception>
    public LoraLinear(nn.Module<Tensor, Tensor> baseLayer, LoraOptions options, int? seed = null)
        : base(nameof(LoraLinear), baseLayer)
    {
        ArgumentNullException.ThrowIfNull(options);
        CheckRank(options.Rank, InFeatures, OutFeatures);
        Options = options;
        Rank = options.Rank;
        Scale = options.ScaleFor(Rank);
        using var noGrad = torch.no_grad();
        using var generator = new Generator((ulong)(seed ?? options.Seed));
        Tensor a, b;
        if (options.Initialization == LoraInitialization.Pissa)
        {
            Linear dense = baseLayer as Linear ?? throw new ArgumentException(
                "PiSSA replaces the base weight by its residual, which a quantized base cannot hold; quantize after PiSSA or use Kaiming initialisation.", nameof(baseLayer));
            (a, b) = PrincipalFactors(dense.weight!, Rank, Scale);
        }
        else
        {
            a = KaimingUniform(Rank, InFeatures, generator);
            b = torch.zeros(OutFeatures, Rank);
        }

        register_parameter("lora_A", new Parameter(a, requires_grad: true));
        register_parameter("lora_B", new Parameter(b, requires_grad: true));
        if (options.UseDora)
        {
            using Tensor weight = BaseWeight();
            register_parameter("lora_magnitude_vector", new Parameter(RowNorms(weight), requires_grad: true));
        }
    }

    /// <inheritdoc/>
    public override LoraOptions Options { get; }

    /// <summary>The rank r.</summary>
    public int Rank { get; }

    /// <summary>The scale s applied to B·A: α/r, or α/√r with rsLoRA.</summary>
    public double Scale { get; }

    /// <summary>A, [r, in] (PEFT's <c>lora_A.weight</c>).</summary>
    public Parameter LoraA => _a;

    /// <summary>B, [out, r] (PEFT's <c>lora_B.weight</c>).</summary>
    public Parameter LoraB => _b;

    /// <summary>DoRA's magnitude m, [out] (PEFT's <c>lora_magnitude_vector</c>), or null without DoRA.</summary>
    public Parameter? Magnitude => _magnitude;

    /// <inheritdoc/>
    protected override Tensor AdaptedForward(Tensor input)
    {
        using var scope = NewDisposeScope();
        Tensor output = BaseLayer.call(input);
        Tensor x = Options.Dropout > 0 ? nn.functional.dropout(input, Options.Dropout, training) : input;
        Tensor update = nn.functional.linear(nn.functional.linear(x, _a), _b) * Scale;
        if (_magnitude is null)
        {
            return (output + update).MoveToOuterDisposeScope();
        }

        // y = m/‖V‖ ⊙ (x·Wᵀ + s·x·Aᵀ·Bᵀ) + bias, written as a correction of the base output so the bias is added once.
        Tensor norms;
        using (torch.no_grad())
        {
            norms = RowNorms(Direction(BaseWeight()));
        }

        Tensor factor = _magnitude / norms;
        Tensor? bias = BaseBias;
        Tensor linearPart = bias is null ? output : output - bias;
        return (output + (factor - 1) * linearPart + factor * update).MoveToOuterDisposeScope();
    }

    /// <inheritdoc/>
    protected override Tensor MergedWeight(Tensor weight)
    {
        using var scope = NewDisposeScope();
        Tensor direction = Direction(weight);
        Tensor merged = _magnitude is null ? direction : (_magnitude.detach() / RowNorms(direction)).unsqueeze(1) * direction;
        return merged.detach().MoveToOuterDisposeScope();
    }

    internal override IEnumerable<(string Name, Tensor Tensor)> AdapterTensors()
    {
        yield return ("lora_A.weight", _a);
        yield return ("lora_B.weight", _b);
        if (_magnitude is not null)
        {
            yield return ("lora_magnitude_vector", _magnitude);
        }
    }

    internal static void CheckRank(int rank, long inFeatures, long outFeatures)
    {
        if (rank > Math.Min(inFeatures, outFeatures))
        {
            throw new ArgumentException($"Rank {rank} exceeds min(in, out) = min({inFeatures}, {outFeatures}) of the layer: a larger rank adds parameters but no expressiveness.", "options");
        }
    }

    /// <summary>V = W + s·B·A (the gradient flows to A and B when they require it).</summary>
    private Tensor Direction(Tensor weight) => weight + _b.matmul(_a) * Scale;

    /// <summary>The Euclidean norm of each row, accumulated in float64 (rows of a down projection hold a thousand or more
    /// values) and returned as float32.</summary>
    private static Tensor RowNorms(Tensor weight)
    {
        using Tensor wide = weight.to(ScalarType.Float64);
        using Tensor squares = wide.pow(2);
        using Tensor sums = squares.sum(1);
        using Tensor norms = sums.sqrt();
        // In the weight's dtype, so a model converted with to(bfloat16) stays in bfloat16 (float32 for float32 weights).
        return norms.to(weight.dtype);
    }

    /// <summary>PiSSA: with W = U·Σ·Vᵀ (float64), B = U_r·√(Σ_r/s), A = √(Σ_r/s)·V_rᵀ so that s·B·A is the best rank-r
    /// approximation of W, and the base keeps the residual W − s·B·A. Dividing Σ by s (as PEFT does) makes the
    /// adapter's scale irrelevant to the starting point.</summary>
    private static (Tensor A, Tensor B) PrincipalFactors(Parameter weight, int rank, double scale)
    {
        using var scope = NewDisposeScope();
        Tensor w = weight.detach().to(ScalarType.Float64);
        (Tensor u, Tensor s, Tensor vh) = torch.linalg.svd(w, fullMatrices: false);
        Tensor root = (s.narrow(0, 0, rank) / scale).sqrt();
        Tensor b = u.narrow(1, 0, rank) * root.unsqueeze(0);
        Tensor a = root.unsqueeze(1) * vh.narrow(0, 0, rank);
        Tensor residual = w - b.matmul(a) * scale;
        weight.copy_(residual.to(ScalarType.Float32));
        return (a.to(ScalarType.Float32).MoveToOuterDisposeScope(), b.to(ScalarType.Float32).MoveToOuterDisposeScope());
    }
}
