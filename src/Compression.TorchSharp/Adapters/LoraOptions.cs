// Licensed under the MIT License. See LICENSE in the repository root.
// Part of the Compression library for .NET.

using System;
using System.Collections.Generic;

namespace Compression.TorchSharp.Adapters;

/// <summary>
/// What <see cref="Lora.Apply"/> inserts and where: the method (LoRA, VeRA, DyLoRA, AdaLoRA), the rank r, the scaling
/// α, the adapter dropout, the variants (DoRA, rsLoRA, PiSSA) and the target modules, with PEFT's meanings and defaults
/// (<c>LoraConfig(r=8, lora_alpha=8, lora_dropout=0.0)</c>).
/// </summary>
/// <remarks>Every property validates when set (so <c>with</c> validates too) and throws
/// <see cref="ArgumentOutOfRangeException"/> naming it; checks that need a layer's shape (r ≤ min(in, out)) run when the
/// adapter is built.</remarks>
/// <example>
/// <code>
/// var options = new LoraOptions { Rank = 16, Alpha = 32, TargetModules = ["q_proj", "v_proj"] };
/// AdapterReport report = Lora.Apply(model, options);   // base frozen, adapters trainable
/// </code>
/// </example>
public sealed record LoraOptions
{
    /// <summary>The adapter family member. Default <see cref="AdapterMethod.Lora"/>.</summary>
    public AdapterMethod Method
    {
        get;
        init => field = Enum.IsDefined(value) ? value : throw new ArgumentOutOfRangeException(nameof(Method), value, "Unknown adapter method.");
    } = AdapterMethod.Lora;

    /// <summary>The rank r (for DyLoRA the largest rank, for AdaLoRA the initial rank per layer); at least 1 and at most
    /// min(in, out) of every adapted layer. Default 8.</summary>
    public int Rank
    {
        get;
        init => field = value >= 1 ? value : throw new ArgumentOutOfRangeException(nameof(Rank), value, "The rank must be at least 1.");
    } = 8;

    /// <summary>The scaling numerator α: ΔW is multiplied by α/r (α/√r with <see cref="UseRsLora"/>); finite and &gt; 0.
    /// Default 8.</summary>
    public double Alpha
    {
        get;
        init => field = double.IsFinite(value) && value > 0 ? value : throw new ArgumentOutOfRangeException(nameof(Alpha), value, "Alpha must be finite and greater than 0.");
    } = 8;

    /// <summary>Dropout probability on the adapter's input during training, in [0, 1). Default 0.</summary>
    public double Dropout
    {
        get;
        init => field = value >= 0 && value < 1 ? value : throw new ArgumentOutOfRangeException(nameof(Dropout), value, "Dropout must be in [0, 1).");
    }

    /// <summary>rsLoRA (Kalajdzievski, "A Rank Stabilization Scaling Factor for Fine-Tuning with LoRA", 2023): scale by
    /// α/√r instead of α/r, so the update's size does not shrink as r grows. Default false.</summary>
    public bool UseRsLora { get; init; }

    /// <summary>DoRA (Liu et al., "DoRA: Weight-Decomposed Low-Rank Adaptation", 2024): a trainable magnitude per output
    /// row times the normalised direction W + scale·BA. LoRA only. Default false.</summary>
    public bool UseDora { get; init; }

    /// <summary>How A and B start (LoRA only). Default <see cref="LoraInitialization.Kaiming"/>.</summary>
    public LoraInitialization Initialization
    {
        get;
        init => field = Enum.IsDefined(value) ? value : throw new ArgumentOutOfRangeException(nameof(Initialization), value, "Unknown initialization.");
    } = LoraInitialization.Kaiming;

    /// <summary>
    /// Module names to adapt, PEFT's list form of <c>target_modules</c>: a linear module is adapted when its full name
    /// equals an entry or ends with '.' + the entry (<c>"q_proj"</c>, <c>"self_attn.v_proj"</c>). Every entry must match
    /// at least one linear module. Default <c>q_proj</c>, <c>v_proj</c> (PEFT's default for Llama).
    /// </summary>
    public IReadOnlyList<string> TargetModules
    {
        get;
        init => field = value ?? throw new ArgumentNullException(nameof(TargetModules));
    } = ["q_proj", "v_proj"];

    /// <summary>PEFT's string form of <c>target_modules</c>: a regular expression that must match a module's whole name
    /// (<c>@"model\.layers\.[0-2]\..*_proj"</c>). When set it replaces <see cref="TargetModules"/>. Default null.</summary>
    public string? TargetPattern { get; init; }

    /// <summary>Seed of the adapters' random initialisation (layer i uses Seed + i; VeRA's shared matrices use Seed, as
    /// PEFT's <c>projection_prng_key</c>). Default 0.</summary>
    public int Seed { get; init; }

    /// <summary>VeRA's initial value of every entry of d (PEFT's <c>d_initial</c>); finite. Default 0.1.</summary>
    public double VeraInitialD
    {
        get;
        init => field = double.IsFinite(value) ? value : throw new ArgumentOutOfRangeException(nameof(VeraInitialD), value, "d_initial must be finite.");
    } = 0.1;

    /// <summary>AdaLoRA's schedule (used when <see cref="Method"/> is <see cref="AdapterMethod.AdaLora"/>). Default: the
    /// defaults of <see cref="AdaLoraOptions"/>.</summary>
    public AdaLoraOptions AdaLora
    {
        get;
        init => field = value ?? throw new ArgumentNullException(nameof(AdaLora));
    } = new();

    /// <summary>The scale applied to the low-rank product for rank <paramref name="rank"/>: α/r, or α/√r (rsLoRA).</summary>
    public double ScaleFor(int rank) => UseRsLora ? Alpha / Math.Sqrt(rank) : Alpha / rank;

    /// <summary>Checks the combinations no single property can (called by <see cref="Lora.Apply"/>).</summary>
    /// <exception cref="ArgumentException">DoRA or PiSSA with another method than LoRA.</exception>
    internal void Validate()
    {
        if (Method != AdapterMethod.Lora && (UseDora || Initialization != LoraInitialization.Kaiming))
        {
            throw new ArgumentException($"DoRA and PiSSA are variants of LoRA; Method is {Method}.", "options");
        }

        if (Method == AdapterMethod.AdaLora)
        {
            AdaLora.Validate();
            if (AdaLora.TargetRank > Rank)
            {
                throw new ArgumentException($"AdaLoRA's target rank {AdaLora.TargetRank} exceeds the initial rank {Rank}: the budget only falls.", "options");
            }
        }

        if (TargetPattern is null && TargetModules.Count == 0)
        {
            throw new ArgumentException("TargetModules is empty and TargetPattern is null: there is nothing to adapt.", "options");
        }
    }
}
