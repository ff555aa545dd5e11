// Licensed under the MIT License. See LICENSE in the repository root.
// Part of the Compression library for .NET.

using Compression.Tool.Infrastructure;
using Compression.TorchSharp.Models;

namespace Compression.Tool.Commands;

/// <summary>The calibration windows shared by quantize, prune and lowrank.</summary>
internal static class CalibrationCommon
{
    /// <summary>Up to <paramref name="samples"/> windows of <paramref name="sequenceLength"/> tokens (capped at the
    /// model's context) from <paramref name="path"/>.</summary>
    public static IReadOnlyList<int[]> Windows(TextData text, string path, int samples, int sequenceLength, CausalLanguageModel model)
    {
        if (samples < 1)
        {
            throw ToolException.Usage($"--samples must be at least 1; got {samples}.");
        }

        if (sequenceLength < 2)
        {
            throw ToolException.Usage($"--seq-len must be at least 2; got {sequenceLength}.");
        }

        if (sequenceLength > model.ContextLength)
        {
            throw ToolException.Usage($"--seq-len {sequenceLength} exceeds the model's context of {model.ContextLength} tokens.");
        }

        if (text.Tokenizer.VocabularySize > model.VocabularySize)
        {
            throw ToolException.Input($"the tokenizer '{text.Source}' has {text.Tokenizer.VocabularySize} tokens, more than the model's vocabulary of {model.VocabularySize}.");
        }

        return text.CalibrationWindows(path, samples, sequenceLength);
    }
}
