// Licensed under the MIT License. See LICENSE in the repository root.
// Part of the Compression library for .NET.

using System;
using System.Collections.Generic;
using System.Linq;
using System.Text.RegularExpressions;
using Compression.TorchSharp;
using Compression.TorchSharp.Adapters;
using Compression.TorchSharp.Models;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Compression;

/// <summary>
/// Parameter-efficient fine-tuning of a TorchSharp language model with the LoRA family (LoRA, DoRA, rsLoRA, PiSSA,
/// QLoRA, VeRA, DyLoRA, AdaLoRA), the sibling of <see cref="Quantizer"/> and <see cref="Pruner"/>: PEFT's
/// <c>get_peft_model</c>, <c>merge_and_unload</c>, <c>unload</c>, <c>save_pretrained</c> and
/// <c>PeftModel.from_pretrained</c>, with PEFT's file layout.
/// </summary>
/// <remarks>
/// Adapting swaps each targeted linear module for an <see cref="AdapterLinear"/> that holds it as <c>base_layer</c>,
/// so parameter names become PEFT's (<c>model.layers.0.self_attn.q_proj.base_layer.weight</c>,
/// <c>….q_proj.lora_A</c>); <see cref="MergeAndUnload"/> and <see cref="Unload"/> give the plain names back. A model
/// whose layers were packed by <see cref="Quantizer.Pack"/> gets QLoRA: the packed weights stay packed and frozen.
/// </remarks>
/// <example>
/// <code>
/// using CausalLanguageModel model = HuggingFaceModels.Load("../shared/data/llama-shakespeare-char");
/// AdapterReport report = Lora.Apply(model, new LoraOptions { Rank = 8, Alpha = 16, TargetModules = ["q_proj", "v_proj"] });
/// var optimizer = torch.optim.AdamW(model.parameters().Where(p => p.requires_grad), lr: 1e-3);
/// // … train …
/// Lora.Save(model, "adapter");          // adapter_model.safetensors + adapter_config.json
/// Lora.MergeAndUnload(model);           // plain nn.Linear layers with the adapted weights
/// </code>
/// </example>
public static partial class Lora
{
    /// <summary>Freezes every parameter of <paramref name="model"/> and wraps the targeted linear modules in adapters.</summary>
    /// <param name="model">The model; its targeted modules are replaced in place.</param>
    /// <param name="options">Method, rank, α, dropout, variants and targets.</param>
    /// <returns>The adapted modules and the trainable and total parameter counts.</returns>
    /// <exception cref="ArgumentException">A target entry matches no linear module (or the pattern none, or is not a
    /// valid regular expression), the rank exceeds a targeted layer's min(in, out), PiSSA targets a packed layer, or the
    /// options combine DoRA/PiSSA with another method.</exception>
    /// <exception cref="InvalidOperationException">The model already has adapters.</exception>
    public static AdapterReport Apply(CausalLanguageModel model, LoraOptions options)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        if (AdaptersOf(model).Count > 0)
        {
            throw new InvalidOperationException("The model already has adapters; MergeAndUnload or Unload them first.");
        }

        var linear = model.CanonicalModules()
            .Where(m => m.Module is Linear or QuantizedLinear)
            .Select(m => (m.Name, Module: (nn.Module<Tensor, Tensor>)m.Module))
            .ToArray();
        string[] targets = SelectTargets(linear.Select(l => l.Name).ToArray(), options);
        var byName = linear.ToDictionary(l => l.Name, l => l.Module, StringComparer.Ordinal);
        // Everything that can fail is checked before the first swap, so a refused call leaves the model as it was.
        foreach (string name in targets)
        {
            (long inFeatures, long outFeatures) = Dimensions(byName[name]);
            try
            {
                LoraLinear.CheckRank(options.Rank, inFeatures, outFeatures);
            }
            catch (ArgumentException e)
            {
                throw new ArgumentException($"'{name}': {e.Message}", nameof(options), e);
            }

            if (options.Initialization == LoraInitialization.Pissa && byName[name] is QuantizedLinear)
            {
                throw new ArgumentException($"PiSSA rewrites the base weight, but '{name}' is packed (quantized).", nameof(options));
            }
        }

        foreach (Parameter parameter in model.parameters())
        {
            parameter.requires_grad = false;
        }

        VeraProjections? projections = options.Method == AdapterMethod.Vera
            ? new VeraProjections(options.Rank, targets.Max(t => Dimensions(byName[t]).In), targets.Max(t => Dimensions(byName[t]).Out), options.Seed)
            : null;
        for (int i = 0; i < targets.Length; i++)
        {
            // The owner's swap disposes the module it replaces, so the adapter wraps a copy that shares no native handle.
            nn.Module<Tensor, Tensor> baseLayer = CopyOf(byName[targets[i]]);
            int seed = unchecked(options.Seed + i);
            AdapterLinear adapter = options.Method switch
            {
                AdapterMethod.Lora => new LoraLinear(baseLayer, options, seed),
                AdapterMethod.Vera => new VeraLinear(baseLayer, projections!, options),
                AdapterMethod.DyLora => new DyLoraLinear(baseLayer, options, seed),
                AdapterMethod.AdaLora => new AdaLoraLinear(baseLayer, options, seed),
                _ => throw new ArgumentOutOfRangeException(nameof(options), options.Method, "Unknown adapter method."),
            };
            model.ReplaceLinear(targets[i], adapter);
        }

        return Report(model);
    }

    /// <summary>The adapters of <paramref name="model"/> with their module names, in model order.</summary>
    public static IReadOnlyList<(string Name, AdapterLinear Adapter)> AdaptersOf(CausalLanguageModel model)
    {
        ArgumentNullException.ThrowIfNull(model);
        return model.CanonicalModules().Where(m => m.Module is AdapterLinear).Select(m => (m.Name, (AdapterLinear)m.Module)).ToArray();
    }

    /// <summary>The parameter counts of an adapted model (PEFT's <c>print_trainable_parameters</c>).</summary>
    public static AdapterReport Report(CausalLanguageModel model)
    {
        var adapters = AdaptersOf(model);
        var parameters = model.parameters().Distinct(ReferenceEqualityComparer.Instance).Cast<Parameter>().ToArray();
        long trainable = parameters.Where(p => p.requires_grad).Sum(p => p.numel());
        long total = parameters.Sum(p => p.numel())
            + model.CanonicalModules().Select(m => m.Module).OfType<QuantizedLinear>().Sum(q => q.InFeatures * q.OutFeatures)
            + adapters.Select(a => a.Adapter).OfType<VeraLinear>().Select(v => v.Projections).Distinct()
                .Sum(p => p.A.numel() + p.B.numel());
        AdapterMethod method = adapters.Count == 0 ? AdapterMethod.Lora : adapters[0].Adapter.Options.Method;
        return new AdapterReport(method, adapters.Select(a => a.Name).ToArray(), trainable, total);
    }

    /// <summary>The rank allocator over an AdaLoRA-adapted model's layers, with the schedule of its options.</summary>
    /// <exception cref="ArgumentException">The model has no AdaLoRA adapter.</exception>
    public static AdaLoraRankAllocator CreateRankAllocator(CausalLanguageModel model)
    {
        AdaLoraLinear[] layers = AdaptersOf(model).Select(a => a.Adapter).OfType<AdaLoraLinear>().ToArray();
        if (layers.Length == 0)
        {
            throw new ArgumentException("The model has no AdaLoRA adapter: Apply with Method = AdapterMethod.AdaLora first.", nameof(model));
        }

        return new AdaLoraRankAllocator(layers, layers[0].Options.AdaLora);
    }

    /// <summary>Replaces every adapter by a plain <c>nn.Linear</c> holding the adapted weight (PEFT's
    /// <c>merge_and_unload</c>); the new layers stay frozen, like the rest of the base.</summary>
    /// <param name="model">An adapted model.</param>
    /// <param name="dequantize">Allow merging into packed (QLoRA) layers by dequantizing them to float32 first; without
    /// it such a model is refused before anything changes.</param>
    /// <returns>The number of modules merged.</returns>
    /// <exception cref="InvalidOperationException">A base is packed and <paramref name="dequantize"/> is false.</exception>
    public static int MergeAndUnload(CausalLanguageModel model, bool dequantize = false)
    {
        var adapters = AdaptersOf(model);
        if (!dequantize && adapters.FirstOrDefault(a => a.Adapter.HasQuantizedBase) is { Name: not null } packed)
        {
            throw new InvalidOperationException($"'{packed.Name}' has a packed (quantized) base: merging would dequantize it. Pass dequantize: true to accept dense float32 layers.");
        }

        foreach ((string name, AdapterLinear adapter) in adapters)
        {
            Linear merged = adapter.ToMergedLinear(dequantize);
            foreach (Parameter parameter in merged.parameters())
            {
                parameter.requires_grad = false;
            }

            model.ReplaceLinear(name, merged);
        }

        return adapters.Count;
    }

    /// <summary>Removes every adapter and puts the base layers back unchanged (PEFT's <c>unload</c>): a merged adapter is
    /// unmerged first, so the base weights are the ones <see cref="Apply"/> found (PiSSA's residual excepted).</summary>
    /// <returns>The number of modules restored.</returns>
    public static int Unload(CausalLanguageModel model)
    {
        var adapters = AdaptersOf(model);
        foreach ((string name, AdapterLinear adapter) in adapters)
        {
            if (adapter.IsMerged)
            {
                adapter.Unmerge();
            }

            model.ReplaceLinear(name, CopyOf(adapter.BaseLayer));
        }

        return adapters.Count;
    }

    /// <summary>PEFT's list semantics (a name equal to an entry or ending with '.' + entry), or its string semantics (a
    /// regular expression matching the whole name).</summary>
    private static string[] SelectTargets(string[] names, LoraOptions options)
    {
        if (options.TargetPattern is { } pattern)
        {
            Regex regex;
            try
            {
                regex = new Regex($"^(?:{pattern})$", RegexOptions.CultureInvariant, TimeSpan.FromSeconds(1));
            }
            catch (ArgumentException e)
            {
                throw new ArgumentException($"TargetPattern '{pattern}' is not a valid regular expression: {e.Message}", nameof(options), e);
            }

            string[] matched = names.Where(n => regex.IsMatch(n)).ToArray();
            return matched.Length > 0 ? matched : throw new ArgumentException(
                $"TargetPattern '{pattern}' matches no linear module; the model's linear modules are {Listing(names)}.", nameof(options));
        }

        foreach (string entry in options.TargetModules)
        {
            if (!names.Any(n => Matches(n, entry)))
            {
                throw new ArgumentException($"Target module '{entry}' matches no linear module; the model's linear modules are {Listing(names)}.", nameof(options));
            }
        }

        return names.Where(n => options.TargetModules.Any(entry => Matches(n, entry))).ToArray();
    }

    private static bool Matches(string name, string entry) =>
        name == entry || name.EndsWith("." + entry, StringComparison.Ordinal);

    private static string Listing(string[] names) =>
        string.Join(", ", names.Select(n => n[(n.LastIndexOf('.') + 1)..]).Distinct().Select(n => $"'{n}'"));

    private static (long In, long Out) Dimensions(nn.Module<Tensor, Tensor> module) => module switch
    {
        Linear l => (l.in_features, l.out_features),
        QuantizedLinear q => (q.InFeatures, q.OutFeatures),
        _ => throw new InvalidOperationException("Unreachable: only linear modules are targeted."),
    };

    private static nn.Module<Tensor, Tensor> CopyOf(nn.Module<Tensor, Tensor> module)
    {
        switch (module)
        {
            case QuantizedLinear q:
                return new QuantizedLinear(q.Weight, q.Bias, q.InputActivations);
            case Linear l:
                using (torch.no_grad())
                {
                    Linear copy = nn.Linear(l.in_features, l.out_features, hasBias: l.bias is not null);
                    copy.weight!.copy_(l.weight!);
                    copy.bias?.copy_(l.bias!);
                    copy.weight!.requires_grad = l.weight!.requires_grad;
                    if (copy.bias is not null)
                    {
                        copy.bias.requires_grad = l.bias!.requires_grad;
                    }

                    return copy;
                }

            default:
                throw new InvalidOperationException("Unreachable: only linear modules are targeted.");
        }
    }
}
