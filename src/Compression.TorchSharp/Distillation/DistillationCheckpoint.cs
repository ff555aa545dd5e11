// Licensed under the MIT License. See LICENSE in the repository root.
// Part of the Compression library for .NET.

using System;
using System.Collections.Generic;
using System.Globalization;
using System.IO;
using System.Linq;
using System.Text.Json.Nodes;
using Compression.Safetensors;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Compression.TorchSharp.Distillation;

/// <summary>
/// A <see cref="Distiller"/> checkpoint: one safetensors file, <c>checkpoint-&lt;step, 8 digits&gt;.safetensors</c>,
/// written to a temporary file and renamed. Tensors: every trainable tensor under its name (<c>trainable.</c> prefix,
/// stored in its own dtype) and the optimizer's state as TorchSharp's <c>save_state_dict</c> bytes (<c>optimizer.state</c>,
/// U8). <c>__metadata__</c>: <c>format</c>, <c>step</c>, <c>optimizer</c> (its type name), <c>trainable</c> (the names,
/// JSON), <c>history</c> and <c>evaluations</c> (JSON arrays of numbers; doubles written shortest round-trip, so they read
/// back exactly; null stands for NaN).
/// </summary>
internal static class DistillationCheckpoint
{
    private const string FormatName = "compression-distiller/1";
    private const string Prefix = "checkpoint-";
    private const string Extension = ".safetensors";
    private const string OptimizerTensor = "optimizer.state";

    /// <summary>A checkpoint's contents other than the tensors it restores in place.</summary>
    internal sealed record State(int Step, List<DistillationStepResult> History, List<DistillationEvaluation> Evaluations);

    /// <summary>The newest checkpoint in <paramref name="directory"/>, or null.</summary>
    public static string? Latest(string directory) =>
        List(directory).Select(c => c.Path).LastOrDefault();

    /// <summary>Writes the checkpoint of <paramref name="step"/> and deletes all but the newest <paramref name="keep"/>.</summary>
    public static void Write(string directory, int step, IReadOnlyList<(string Name, Parameter Parameter)> trainable, OptimizerHelper optimizer,
        IReadOnlyList<DistillationStepResult> history, IReadOnlyList<DistillationEvaluation> evaluations, int keep)
    {
        Directory.CreateDirectory(directory);
        var writer = new SafetensorsWriter();
        writer.SetMetadata("format", FormatName);
        writer.SetMetadata("step", step.ToString(CultureInfo.InvariantCulture));
        writer.SetMetadata("optimizer", optimizer.GetType().Name);
        writer.SetMetadata("trainable", new JsonArray(trainable.Select(t => (JsonNode?)JsonValue.Create(t.Name)).ToArray()).ToJsonString());
        writer.SetMetadata("history", new JsonArray(history.Select(h => (JsonNode?)Numbers(
            h.Step, h.LearningRate, h.Loss, h.Logit, h.Label, h.Hidden, h.Attention, h.GradientNorm)).ToArray()).ToJsonString());
        writer.SetMetadata("evaluations", new JsonArray(evaluations.Select(e => (JsonNode?)Numbers(e.Step, e.Value)).ToArray()).ToJsonString());
        using (torch.no_grad())
        {
            foreach ((string name, Parameter parameter) in trainable)
            {
                using Tensor cpu = parameter.detach().cpu().contiguous();
                writer.Add("trainable." + name, DTypeOf(cpu, name), cpu.shape, cpu.bytes.ToArray());
            }
        }

        using (var stream = new MemoryStream())
        {
            using (var binary = new BinaryWriter(stream, System.Text.Encoding.UTF8, leaveOpen: true))
            {
                optimizer.save_state_dict(binary);
            }

            writer.Add(OptimizerTensor, SafetensorsDType.U8, [stream.Length], stream.ToArray());
        }

        writer.Save(Path.Combine(directory, FileName(step)));
        foreach ((string path, _) in List(directory).SkipLast(keep))
        {
            File.Delete(path);
        }
    }

    /// <summary>Copies a checkpoint's trainable tensors and optimizer state into the run's and returns its step and logs.
    /// Everything is checked before the first tensor is copied, so a refused checkpoint changes nothing.</summary>
    /// <exception cref="InvalidDataException">The file is not a Distiller checkpoint, or was written for other trainable
    /// tensors, shapes or another optimizer.</exception>
    /// <exception cref="ArgumentException">The checkpoint's step is beyond <paramref name="steps"/>.</exception>
    public static State Read(string path, IReadOnlyList<(string Name, Parameter Parameter)> trainable, OptimizerHelper optimizer, int steps)
    {
        using SafetensorsFile file = SafetensorsFile.Open(path);
        if (!file.Metadata.TryGetValue("format", out string? format) || format != FormatName)
        {
            throw new InvalidDataException($"{path}: not a Distiller checkpoint (format '{format}', '{FormatName}' expected).");
        }

        int step = int.Parse(file.Metadata["step"], CultureInfo.InvariantCulture);
        if (step > steps)
        {
            throw new ArgumentException(
                $"The checkpoint {path} is at step {step}, beyond this run's {steps} steps; raise Steps or set Resume = false.", "options");
        }

        string[] stored = JsonNode.Parse(file.Metadata["trainable"])!.AsArray().Select(n => n!.GetValue<string>()).ToArray();
        string[] names = trainable.Select(t => t.Name).ToArray();
        if (!stored.SequenceEqual(names, StringComparer.Ordinal))
        {
            string missing = string.Join(", ", names.Except(stored).Take(5)), extra = string.Join(", ", stored.Except(names).Take(5));
            throw new InvalidDataException(
                $"{path}: the checkpoint trains other tensors than this run ({stored.Length} stored, {names.Length} now; not stored: [{missing}]; not trained now: [{extra}]). Use the same student structure and Trainable parts, or Resume = false.");
        }

        string optimizerName = file.Metadata.GetValueOrDefault("optimizer") ?? "";
        if (optimizerName != optimizer.GetType().Name)
        {
            throw new InvalidDataException($"{path}: the checkpoint's optimizer is {optimizerName}; this run uses {optimizer.GetType().Name}.");
        }

        foreach ((string name, Parameter parameter) in trainable)
        {
            SafetensorsTensorInfo info = file.GetInfo("trainable." + name);
            if (!info.Shape.SequenceEqual(parameter.shape) || info.DType != DTypeOf(parameter, name))
            {
                throw new InvalidDataException(
                    $"{path}: '{name}' is stored as {info.DType} [{string.Join(", ", info.Shape)}]; the student has {parameter.dtype} [{string.Join(", ", parameter.shape)}].");
            }
        }

        using (torch.no_grad())
        {
            foreach ((string name, Parameter parameter) in trainable)
            {
                using Tensor value = torch.empty(parameter.shape, parameter.dtype);
                value.bytes = file.GetBytes("trainable." + name).ToArray();
                parameter.copy_(value);
            }
        }

        using (var stream = new MemoryStream(file.GetBytes(OptimizerTensor).ToArray()))
        using (var reader = new BinaryReader(stream))
        {
            optimizer.load_state_dict(reader);
        }

        var history = JsonNode.Parse(file.Metadata["history"])!.AsArray().Select(n =>
        {
            double[] v = Values(n!);
            return new DistillationStepResult((int)v[0], v[1], v[2], v[3], v[4], v[5], v[6], v[7]);
        }).ToList();
        var evaluations = JsonNode.Parse(file.Metadata["evaluations"])!.AsArray().Select(n =>
        {
            double[] v = Values(n!);
            return new DistillationEvaluation((int)v[0], v[1]);
        }).ToList();
        return new State(step, history, evaluations);
    }

    /// <summary>Deletes every checkpoint in <paramref name="directory"/> (a run that starts afresh).</summary>
    public static void DeleteAll(string directory)
    {
        foreach ((string path, _) in List(directory))
        {
            File.Delete(path);
        }
    }

    private static string FileName(int step) => $"{Prefix}{step.ToString("D8", CultureInfo.InvariantCulture)}{Extension}";

    /// <summary>The checkpoints in a directory, oldest first.</summary>
    private static IEnumerable<(string Path, int Step)> List(string directory)
    {
        if (!Directory.Exists(directory))
        {
            return [];
        }

        return Directory.EnumerateFiles(directory, Prefix + "*" + Extension)
            .Select(path => (Path: path, Name: System.IO.Path.GetFileNameWithoutExtension(path)[Prefix.Length..]))
            .Where(c => c.Name.Length == 8 && c.Name.All(char.IsAsciiDigit))
            .Select(c => (c.Path, Step: int.Parse(c.Name, CultureInfo.InvariantCulture)))
            .OrderBy(c => c.Step)
            .ToList();
    }

    private static JsonArray Numbers(params double[] values) =>
        new(values.Select(v => double.IsFinite(v) ? (JsonNode?)JsonValue.Create(v) : null).ToArray());

    private static double[] Values(JsonNode node) =>
        node.AsArray().Select(v => v is null ? double.NaN : v.GetValue<double>()).ToArray();

    private static SafetensorsDType DTypeOf(Tensor tensor, string name) => tensor.dtype switch
    {
        ScalarType.Float32 => SafetensorsDType.F32,
        ScalarType.Float64 => SafetensorsDType.F64,
        ScalarType.BFloat16 => SafetensorsDType.BF16,
        ScalarType.Float16 => SafetensorsDType.F16,
        _ => throw new NotSupportedException($"'{name}' is {tensor.dtype}; checkpoints hold floating-point tensors only."),
    };
}
