// Licensed under the MIT License. See LICENSE in the repository root.
// Part of the Compression library for .NET.

using System.Text;
using Compression;

namespace Compression.Fuzzing;

/// <summary>Quantization recipes: <see cref="QuantizationRecipe.FromJson"/> and <see cref="QuantizationRecipe.Load"/>.</summary>
public static class RecipeTargets
{
    /// <summary>
    /// The input is the recipe JSON. Documented: <see cref="ArgumentException"/> from <c>FromJson</c>,
    /// <see cref="InvalidDataException"/> from <c>Load</c>; both must agree on whether the text is a recipe, and an
    /// accepted recipe must survive <see cref="QuantizationRecipe.ToJson"/> and back.
    /// </summary>
    public static void Recipe(ReadOnlySpan<byte> input)
    {
        string text = Encoding.UTF8.GetString(input);
        QuantizationRecipe? fromText;
        try
        {
            fromText = QuantizationRecipe.FromJson(text);
        }
        catch (ArgumentException)
        {
            fromText = null;
        }

        QuantizationRecipe? fromFile = null;
        FuzzScratch.WithFile(input, "recipe.json", path =>
        {
            try
            {
                fromFile = QuantizationRecipe.Load(path);
            }
            catch (InvalidDataException)
            {
            }
        });

        if (fromText is null != fromFile is null)
        {
            throw new InvalidOperationException($"FromJson {(fromText is null ? "refused" : "accepted")} the text but Load {(fromFile is null ? "refused" : "accepted")} the file.");
        }

        if (fromText is not null)
        {
            string json = fromText.ToJson();
            string again = QuantizationRecipe.FromJson(json).ToJson();
            if (json != again)
            {
                throw new InvalidOperationException("ToJson → FromJson → ToJson is not stable.");
            }
        }
    }
}
