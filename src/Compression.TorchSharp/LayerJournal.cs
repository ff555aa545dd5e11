// Licensed under the MIT License. See LICENSE in the repository root.
// Part of the Compression library for .NET.

using System;
using System.Collections.Generic;
using System.Globalization;
using System.IO;
using System.Security.Cryptography;
using System.Text;
using Compression.Quantization;
using Compression.Safetensors;
using Compression.Serialization;
using Compression.Tensors;

namespace Compression.TorchSharp;

/// <summary>
/// Finished layers of a model-level quantization run, one safetensors file per layer in a folder, so a run killed at
/// layer 70 of 80 resumes at layer 70: a layer whose entry matches is loaded instead of recomputed.
/// </summary>
/// <remarks>
/// <para>An entry is bound to everything the layer's result depends on: the layer name, its original weight's bytes,
/// the layer's format and method options, and the calibration token ids (GPTQ's Hessian comes from the inputs that the
/// earlier, identical layers produce). A mismatching or unreadable entry is recomputed and overwritten.</para>
/// <para>Entries are written with <see cref="AtomicFile"/>, so an entry is complete or absent. The loaded tensor equals
/// the computed one bit for bit (serialization is the identity), so a resumed run's weights equal an uninterrupted
/// run's.</para>
/// </remarks>
internal sealed class LayerJournal
{
    private const string LayerKey = "journal.layer";
    private const string FingerprintKey = "journal.fingerprint";
    private const string ObjectiveKey = "journal.objective";
    private const string TensorName = "weight";

    private static readonly CompressedTensorSerializer s_serializer = GptqTensor.Register(CompressedTensorSerializer.Default);

    private readonly string _folder;
    private readonly string _calibrationHash;

    public LayerJournal(string folder, IReadOnlyList<int[]> calibration)
    {
        _folder = Path.GetFullPath(folder);
        Directory.CreateDirectory(_folder);
        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        foreach (int[] sequence in calibration)
        {
            hash.AppendData(BitConverter.GetBytes(sequence.Length));
            hash.AppendData(System.Runtime.InteropServices.MemoryMarshal.AsBytes(sequence.AsSpan()));
        }

        _calibrationHash = Convert.ToHexString(hash.GetHashAndReset());
    }

    /// <summary>Layers taken from the journal in this run.</summary>
    public int Resumed { get; private set; }

    /// <summary>The fingerprint of a layer's inputs: name, original weight bits, options, calibration.</summary>
    public string Fingerprint(string layer, DenseTensor original, string options)
    {
        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        hash.AppendData(Encoding.UTF8.GetBytes($"{layer}\n{options}\n{_calibrationHash}\n{original.Rows}x{original.Columns}\n"));
        hash.AppendData(System.Runtime.InteropServices.MemoryMarshal.AsBytes(original.Span));
        return Convert.ToHexString(hash.GetHashAndReset());
    }

    /// <summary>The stored result of <paramref name="layer"/> if its entry matches <paramref name="fingerprint"/>.</summary>
    public bool TryLoad(string layer, string fingerprint, out CompressedTensor tensor, out double objective)
    {
        tensor = null!;
        objective = double.NaN;
        string path = PathOf(layer);
        if (!File.Exists(path))
        {
            return false;
        }

        try
        {
            using SafetensorsCheckpoint file = SafetensorsCheckpoint.Open(path);
            if (!file.Metadata.TryGetValue(LayerKey, out string? name) || name != layer ||
                !file.Metadata.TryGetValue(FingerprintKey, out string? stored) || stored != fingerprint)
            {
                return false;
            }

            tensor = s_serializer.Read(file, TensorName);
            objective = double.Parse(file.Metadata[ObjectiveKey], CultureInfo.InvariantCulture);
            Resumed++;
            return true;
        }
        catch (Exception e) when (e is InvalidDataException or KeyNotFoundException or FormatException or NotSupportedException)
        {
            // A damaged entry is recomputed (and overwritten by Store).
            return false;
        }
    }

    /// <summary>Stores a finished layer (atomically).</summary>
    public void Store(string layer, string fingerprint, CompressedTensor tensor, double objective)
    {
        var writer = new SafetensorsWriter();
        s_serializer.Write(writer, TensorName, tensor);
        writer.SetMetadata(LayerKey, layer);
        writer.SetMetadata(FingerprintKey, fingerprint);
        writer.SetMetadata(ObjectiveKey, objective.ToString("R", CultureInfo.InvariantCulture));
        writer.Save(PathOf(layer));
    }

    /// <summary>Deletes the journal (after a completed run).</summary>
    public void Delete()
    {
        if (Directory.Exists(_folder))
        {
            Directory.Delete(_folder, recursive: true);
        }
    }

    private string PathOf(string layer) =>
        Path.Combine(_folder, Convert.ToHexString(SHA256.HashData(Encoding.UTF8.GetBytes(layer)))[..32] + ".safetensors");
}
