// Licensed under the MIT License. See LICENSE in the repository root.
// Part of the Compression library for .NET.

using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.Globalization;
using System.IO;
using System.Linq;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Threading;
using Compression.Safetensors;
using Compression.Tensors;

namespace Compression.Quantization.Checkpoints;

/// <summary>
/// Round-to-nearest weight quantization of a Hugging Face safetensors checkpoint (declaring dynamic per-token FP8
/// activations when the options ask for them), tensor by tensor, without
/// loading a model (and without TorchSharp): the output folder is a compressed-tensors checkpoint byte-identical to
/// what <c>Quantizer.Apply</c> + <c>CompressedModels.Save</c> write for the same options.
/// </summary>
/// <remarks>
/// <para>Memory is bounded by the largest single tensor, not the checkpoint: the input stays memory-mapped, one weight
/// is decoded to float32 at a time, and its compressed-tensors parts go straight to a journal file (see below), so
/// nothing grows with the number of layers. The output <c>model.safetensors</c> is then assembled by streaming: input
/// tensors copied in chunks from the memory map, quantized parts copied from the journal. The input folder is never
/// modified.</para>
/// <para>Crash consistency and resume: the journal is the hidden folder <c>.&lt;output name&gt;.quantize-journal</c>
/// beside the output folder. Each quantized module is written there atomically as soon as it is computed, next to a
/// manifest binding the journal to the input (every file's length and header hash, config.json's hash) and to the
/// options. A run that is killed, cancelled or stopped by a refused weight (NaN, a shape the format cannot take) leaves
/// the journal; the next run with the same input and options takes
/// every completed module from it and computes only the rest (<see cref="CheckpointQuantizationResult.ModulesResumed"/>);
/// a journal for another input or other options is deleted (<see cref="CheckpointJournalOptions"/>). The output folder
/// is touched only at the end: <c>model.safetensors</c>, then <c>config.json</c>, each written to a hidden temporary file
/// and renamed into place, then the journal is deleted. A killed or cancelled run therefore never leaves a partial
/// file under either name, and an existing output folder keeps its previous files (hidden <c>.*.tmp</c> files of a
/// killed run may remain; the next run deletes them). One exception: a kill between the two renames (microseconds) of a
/// run that overwrites an older, different result leaves the new weights beside the old config; the journal is still
/// there, and rerunning the same command completes the folder. Run one quantization per output folder at a time.</para>
/// <para>What counts as a linear layer without a model: every 2-D floating <c>*.weight</c> except embeddings (modules
/// whose last name part contains <c>embed</c>, or GPT-2's <c>wte</c>/<c>wpe</c>). GPT-2 (<c>model_type</c> gpt2)
/// stores its <c>c_attn</c>, <c>c_proj</c> and <c>c_fc</c> weights as Conv1D [in, out]; they are transposed to
/// [out, in] before quantizing, as the model path does.</para>
/// </remarks>
public static class CheckpointQuantizer
{
    /// <summary>Quantizes the targeted weights of the checkpoint in <paramref name="inputFolder"/> into
    /// <paramref name="outputFolder"/>, resuming a matching journal (see <see cref="CheckpointJournalOptions.Default"/>).</summary>
    /// <param name="inputFolder">A folder with config.json and model.safetensors (or a sharded index).</param>
    /// <param name="outputFolder">Where the compressed checkpoint goes; must differ from the input.</param>
    /// <param name="options">Format, targets, ignores and overrides; the method must be round to nearest.</param>
    /// <param name="progress">One report per quantized weight (stage <c>quantize</c>, or <c>journal</c> for a module
    /// taken from the journal), reported after the module is safely in the journal.</param>
    /// <param name="cancellationToken">Checked between weights, inside each weight's quantization and while the output
    /// is assembled; a cancelled run leaves the output folder as it was (the journal stays, for resuming).</param>
    /// <returns>The quantized modules with their storage.</returns>
    /// <exception cref="ArgumentException">GPTQ asked for, the same input and output folder, or a pattern that matches
    /// no linear weight.</exception>
    /// <exception cref="FileNotFoundException">The input has no config.json.</exception>
    /// <exception cref="NotSupportedException">A format has no compressed-tensors layout.</exception>
    /// <exception cref="OperationCanceledException">The token was cancelled.</exception>
    public static CheckpointQuantizationResult Quantize(string inputFolder, string outputFolder, QuantizerOptions options,
        IProgress<CompressionProgress>? progress = null, CancellationToken cancellationToken = default) =>
        Quantize(inputFolder, outputFolder, options, CheckpointJournalOptions.Default, progress, cancellationToken);

    /// <summary>Quantizes the targeted weights of the checkpoint in <paramref name="inputFolder"/> into
    /// <paramref name="outputFolder"/>, using the journal as <paramref name="journal"/> says.</summary>
    /// <param name="inputFolder">A folder with config.json and model.safetensors (or a sharded index).</param>
    /// <param name="outputFolder">Where the compressed checkpoint goes; must differ from the input.</param>
    /// <param name="options">Format, targets, ignores and overrides; the method must be round to nearest.</param>
    /// <param name="journal">Whether to resume an interrupted run's journal, and where to log its fate.</param>
    /// <param name="progress">One report per quantized weight (stage <c>quantize</c>, or <c>journal</c> for a module
    /// taken from the journal), reported after the module is safely in the journal.</param>
    /// <param name="cancellationToken">Checked between weights, inside each weight's quantization and while the output
    /// is assembled; a cancelled run leaves the output folder as it was (the journal stays, for resuming).</param>
    /// <returns>The quantized modules with their storage, and how many came from the journal.</returns>
    /// <exception cref="ArgumentException">GPTQ asked for, the same input and output folder, or a pattern that matches
    /// no linear weight.</exception>
    /// <exception cref="FileNotFoundException">The input has no config.json.</exception>
    /// <exception cref="NotSupportedException">A format has no compressed-tensors layout.</exception>
    /// <exception cref="OperationCanceledException">The token was cancelled.</exception>
    /// <example>
    /// <code>
    /// // Killed half-way? Run the same call again: completed modules come from the journal.
    /// CheckpointQuantizationResult result = CheckpointQuantizer.Quantize("llama", "llama-w4", QuantizerOptions.W4A16,
    ///     CheckpointJournalOptions.Default with { Log = Console.Error.WriteLine });
    /// Console.WriteLine($"{result.ModulesResumed} resumed, {result.ModulesComputed} computed");
    /// </code>
    /// </example>
    public static CheckpointQuantizationResult Quantize(string inputFolder, string outputFolder, QuantizerOptions options,
        CheckpointJournalOptions journal, IProgress<CompressionProgress>? progress = null, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(inputFolder);
        ArgumentException.ThrowIfNullOrEmpty(outputFolder);
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(journal);
        if (options.Method != QuantizationMethod.RoundToNearest)
        {
            throw new ArgumentException("Quantizing a checkpoint without its model is round to nearest only; GPTQ needs the model (Quantizer.Apply).", nameof(options));
        }

        if (string.Equals(Path.GetFullPath(inputFolder).TrimEnd(Path.DirectorySeparatorChar), Path.GetFullPath(outputFolder).TrimEnd(Path.DirectorySeparatorChar), StringComparison.Ordinal))
        {
            throw new ArgumentException("The output folder must differ from the input folder (the input is never modified).", nameof(outputFolder));
        }

        string configPath = Path.Combine(inputFolder, "config.json");
        if (!File.Exists(configPath))
        {
            throw new FileNotFoundException($"'{inputFolder}' has no config.json.", configPath);
        }

        byte[] configBytes = File.ReadAllBytes(configPath);
        JsonObject config;
        try
        {
            // A key given twice is refused here (JsonException) rather than thrown as ArgumentException on first access.
            // A UTF-8 byte order mark (some Windows editors write one) is not JSON; skip it as File.ReadAllText would.
            ReadOnlySpan<byte> json = configBytes.AsSpan().StartsWith((ReadOnlySpan<byte>)[0xEF, 0xBB, 0xBF]) ? configBytes.AsSpan(3) : configBytes;
            config = JsonNode.Parse(json, documentOptions: new JsonDocumentOptions { AllowDuplicateProperties = false }) as JsonObject ?? throw new InvalidDataException($"{configPath}: not a JSON object.");
        }
        catch (JsonException e)
        {
            throw new InvalidDataException($"{configPath}: not valid JSON ({e.Message}).", e);
        }

        if (config.ContainsKey("quantization_config"))
        {
            throw new ArgumentException($"'{inputFolder}' is already quantized (its config.json has a quantization_config).", nameof(inputFolder));
        }

        bool gpt2 = config["model_type"] is JsonValue type && type.TryGetValue(out string? modelType) && modelType == "gpt2";
        string journalFolder = CheckpointJournal.FolderFor(outputFolder);
        var clock = Stopwatch.StartNew();
        using SafetensorsCheckpoint checkpoint = SafetensorsCheckpoint.Open(inputFolder);
        string[] linear = checkpoint.Tensors.Where(IsLinearWeight).Select(t => t.Name[..^".weight".Length]).ToArray();
        string[] targets = options.SelectTargets(linear);
        var targetSet = new HashSet<string>(targets, StringComparer.Ordinal);
        var plan = checkpoint.Tensors.Select(t => ModuleOf(t.Name)).Where(targetSet.Contains)
            .Select(m => (Module: m, Options: Canonical(options.OptionsFor(m)), Transposed: gpt2 && IsConv1D(m))).ToArray();
        cancellationToken.ThrowIfCancellationRequested();
        (CheckpointJournal entries, string? discarded) = CheckpointJournal.Open(journalFolder,
            CheckpointJournal.Manifest(checkpoint, configBytes, plan, options.Ignore), journal.Resume, journal.Log);

        var writer = new CompressedCheckpointWriter();
        var modules = new List<CheckpointModule>();
        long before = 0, after = 0;
        int resumed = 0;
        float[] decoded = [];
        foreach (SafetensorsTensorInfo info in checkpoint.Tensors)
        {
            string module = ModuleOf(info.Name);
            if (!targetSet.Contains(module))
            {
                SafetensorsFile file = checkpoint.FileOf(info.Name);
                string name = info.Name;
                writer.AddDense(name, info.DType, info.Shape.ToArray(), stream =>
                {
                    cancellationToken.ThrowIfCancellationRequested();
                    file.CopyTo(name, stream);
                });
                continue;
            }

            cancellationToken.ThrowIfCancellationRequested();
            byte[] sourceHash = CheckpointJournal.SourceHash(checkpoint, info);
            JournalEntry? entry = entries.TryRead(module, sourceHash);
            bool fromJournal = entry is not null;
            if (fromJournal)
            {
                resumed++;
            }

            if (entry is null)
            {
                // One float32 buffer, grown to the largest weight and reused: the decoded copy is the biggest allocation
                // per weight, and reusing it spares the GC a large-object collection per layer. The compressed result
                // is encoded into the journal before the buffer is overwritten.
                int[] shape = info.GetInt32Shape();
                int length = checked(shape[0] * shape[1]);
                if (decoded.Length < length)
                {
                    decoded = new float[length];
                }

                var weight = new DenseTensor(decoded.AsMemory(0, length), shape);
                checkpoint.FileOf(info.Name).ReadDense(info.Name, weight.Span);
                if (gpt2 && IsConv1D(module))
                {
                    weight = Transpose(weight);
                }

                RtnOptions format = options.OptionsFor(module);
                CompressedTensor quantized = new RoundToNearestQuantizer(format).Compress(weight,
                    CompressionContext.Default with { LayerName = module, CancellationToken = cancellationToken });
                entry = entries.Write(module, sourceHash, CompressedTensorsCodec.Encode(module, quantized), CompressedTensorsCodec.FormatOf(quantized),
                    CompressedTensorsCodec.WeightArguments(quantized), quantized.StorageBits, weight.Rows, weight.Columns);
            }

            string path = entry.Path;
            writer.AddEncoded(module, entry.Format, entry.Arguments, options.InputActivations, entry.Tensors.Select(t => (t.Name, t.DType, t.Shape, (Action<Stream>)(stream =>
            {
                cancellationToken.ThrowIfCancellationRequested();
                using SafetensorsFile part = SafetensorsFile.Open(path);
                part.CopyTo(t.Name, stream);
            }))), entry.Metadata);
            long elements = (long)entry.Rows * entry.Columns;
            modules.Add(new CheckpointModule(module, entry.Format, entry.Rows, entry.Columns, (double)entry.StorageBits / elements));
            before += 8L * info.ByteLength;
            after += entry.StorageBits;
            progress?.Report(new CompressionProgress(fromJournal ? "journal" : "quantize", module, modules.Count, targets.Length));
        }

        cancellationToken.ThrowIfCancellationRequested();
        DeleteTemporaries(outputFolder);
        // Cancellation is checked while model.safetensors is assembled (in the copy callbacks), never after its rename:
        // config.json must follow it.
        writer.Save(outputFolder, config, options.Ignore);
        journal.Log?.Invoke($"Wrote '{outputFolder}'; deleting the journal '{journalFolder}'.");
        entries.Delete();
        return new CheckpointQuantizationResult(modules, before, after, clock.Elapsed) { ModulesResumed = resumed, DiscardedJournal = discarded };
    }

    private static string ModuleOf(string tensor) =>
        tensor.EndsWith(".weight", StringComparison.Ordinal) ? tensor[..^".weight".Length] : "";

    /// <summary>The options' record text, culture-invariant (a double must not print as 0,5 on one machine and 0.5 on
    /// another): every property of <see cref="RtnOptions"/> and of its parts prints its value.</summary>
    private static string Canonical(RtnOptions options)
    {
        CultureInfo culture = CultureInfo.CurrentCulture;
        try
        {
            CultureInfo.CurrentCulture = CultureInfo.InvariantCulture;
            return options.ToString();
        }
        finally
        {
            CultureInfo.CurrentCulture = culture;
        }
    }

    /// <summary>Deletes the hidden temporary files a killed run left in the output folder.</summary>
    private static void DeleteTemporaries(string outputFolder)
    {
        if (!Directory.Exists(outputFolder))
        {
            return;
        }

        foreach (string name in new[] { SafetensorsCheckpoint.SingleFileName, "config.json" })
        {
            foreach (string temporary in Directory.EnumerateFiles(outputFolder, $".{name}.*.tmp"))
            {
                File.Delete(temporary);
            }
        }
    }

    private static bool IsLinearWeight(SafetensorsTensorInfo info)
    {
        if (!info.Name.EndsWith(".weight", StringComparison.Ordinal) || info.Shape.Count != 2 ||
            info.DType is not (SafetensorsDType.F32 or SafetensorsDType.F16 or SafetensorsDType.BF16 or SafetensorsDType.F64))
        {
            return false;
        }

        string module = info.Name[..^".weight".Length];
        string last = module[(module.LastIndexOf('.') + 1)..];
        return !last.Contains("embed", StringComparison.OrdinalIgnoreCase) && last is not ("wte" or "wpe");
    }

    private static bool IsConv1D(string module) =>
        module.EndsWith(".c_attn", StringComparison.Ordinal) || module.EndsWith(".c_proj", StringComparison.Ordinal) ||
        module.EndsWith(".c_fc", StringComparison.Ordinal);

    private static DenseTensor Transpose(DenseTensor x)
    {
        int rows = x.Rows, columns = x.Columns;
        var result = new DenseTensor(columns, rows);
        ReadOnlySpan<float> source = x.Span;
        Span<float> destination = result.Span;
        for (int r = 0; r < rows; r++)
        {
            for (int c = 0; c < columns; c++)
            {
                destination[c * rows + r] = source[r * columns + c];
            }
        }

        return result;
    }
}

/// <summary>One weight <see cref="CheckpointQuantizer"/> quantized.</summary>
/// <param name="Name">The module name.</param>
/// <param name="Format">The compressed-tensors format it was written in.</param>
/// <param name="Rows">Output features.</param>
/// <param name="Columns">Input features.</param>
/// <param name="BitsPerWeight">Storage bits per weight, scales included.</param>
public sealed record CheckpointModule(string Name, string Format, int Rows, int Columns, double BitsPerWeight);

/// <summary>What <see cref="CheckpointQuantizer"/> did.</summary>
/// <param name="Modules">The quantized weights in checkpoint order.</param>
/// <param name="OriginalBits">Their storage in the input checkpoint.</param>
/// <param name="CompressedBits">Their storage after quantization.</param>
/// <param name="Elapsed">Wall-clock time, writing included.</param>
public sealed record CheckpointQuantizationResult(IReadOnlyList<CheckpointModule> Modules, long OriginalBits, long CompressedBits, TimeSpan Elapsed)
{
    /// <summary>How many of <see cref="Modules"/> were taken from the journal of an interrupted run.</summary>
    public int ModulesResumed { get; init; }

    /// <summary>How many of <see cref="Modules"/> were quantized by this run.</summary>
    public int ModulesComputed => Modules.Count - ModulesResumed;

    /// <summary>Why a journal found beside the output was deleted instead of resumed; null when none was.</summary>
    public string? DiscardedJournal { get; init; }
}
