// Licensed under the MIT License. See LICENSE in the repository root.
// Part of the Compression library for .NET.

using System;
using System.Linq;
using static TorchSharp.torch;

namespace Compression.TorchSharp.Models;

/// <summary>A module whose linear children can be swapped for other modules (e.g. <see cref="QuantizedLinear"/>).</summary>
internal interface ILinearOwner
{
    /// <summary>Replaces the child registered as <paramref name="child"/> (e.g. <c>q_proj</c>) and disposes the old one.</summary>
    void Replace(string child, nn.Module<Tensor, Tensor> replacement);
}

internal static class ModuleSlots
{
    /// <summary>
    /// Unregisters <paramref name="old"/> under every name it is registered with (TorchSharp also registers fields
    /// under their field names), registers <paramref name="replacement"/> as <paramref name="child"/>, disposes the old
    /// module (its weight is what packing frees) and returns the replacement for the owner's field.
    /// </summary>
    public static nn.Module<Tensor, Tensor> Swap(nn.Module owner, string child, nn.Module<Tensor, Tensor> old, nn.Module<Tensor, Tensor> replacement)
    {
        ArgumentNullException.ThrowIfNull(replacement);
        foreach (string name in owner.named_children().Where(c => ReferenceEquals(c.module, old)).Select(c => c.name).ToArray())
        {
            owner.register_module(name, null!);
        }

        owner.register_module(child, replacement);
        old.Dispose();
        return replacement;
    }

    public static ArgumentException NoSuchChild(nn.Module owner, string child) =>
        new($"{owner.GetName()} has no linear child '{child}'.", nameof(child));
}
