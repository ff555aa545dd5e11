// Licensed under the MIT License. See LICENSE in the repository root.
// Part of the Compression library for .NET.

using System;
using System.Collections.Generic;
using System.IO;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Compression.TorchSharp;

/// <summary>
/// The original values of the weights a model-level run overwrites, so a cancelled or failed run can put the model back
/// as it was: a run either completes or leaves the model untouched.
/// </summary>
/// <remarks>The originals go to a temporary file deleted on close, not to memory: keeping them in RAM would double the
/// memory a large model needs. The bytes are those of the parameter's own dtype, so restoring is exact.</remarks>
internal sealed class WeightRollback : IDisposable
{
    // Bounded chunks: a Span cannot exceed 2 GiB, and one chunk at a time is all the extra memory a save or restore needs.
    private const long ChunkElements = 1L << 24;

    private readonly List<(Parameter Parameter, long Offset)> _saved = [];
    private FileStream? _spill;

    /// <summary>Records <paramref name="parameter"/>'s current values before it is overwritten.</summary>
    public void Save(Parameter parameter)
    {
        _spill ??= new FileStream(Path.Combine(Path.GetTempPath(), $"compression-rollback-{Guid.NewGuid():N}.bin"), FileMode.CreateNew,
            FileAccess.ReadWrite, FileShare.None, 1 << 20, FileOptions.DeleteOnClose);
        _saved.Add((parameter, _spill.Length));
        _spill.Seek(0, SeekOrigin.End);
        using var noGrad = torch.no_grad();
        using Tensor flat = parameter.detach().cpu().contiguous().view(-1);
        long count = flat.numel();
        for (long start = 0; start < count; start += ChunkElements)
        {
            using Tensor chunk = flat.narrow(0, start, Math.Min(ChunkElements, count - start)).contiguous();
            _spill.Write(chunk.bytes);
        }
    }

    /// <summary>Writes every saved original back, the last saved first (a weight saved twice ends at its first value).</summary>
    public void Restore()
    {
        if (_spill is null)
        {
            return;
        }

        using var noGrad = torch.no_grad();
        for (int i = _saved.Count - 1; i >= 0; i--)
        {
            (Parameter parameter, long offset) = _saved[i];
            _spill.Seek(offset, SeekOrigin.Begin);
            using Tensor original = torch.empty(parameter.shape, parameter.dtype);
            using Tensor flat = original.view(-1);
            long count = flat.numel();
            for (long start = 0; start < count; start += ChunkElements)
            {
                using Tensor chunk = torch.empty(Math.Min(ChunkElements, count - start), parameter.dtype);
                byte[] bytes = new byte[chunk.bytes.Length];
                _spill.ReadExactly(bytes);
                chunk.bytes = bytes;
                flat.narrow(0, start, chunk.numel()).copy_(chunk);
            }

            parameter.copy_(original);
        }
    }

    /// <summary>Deletes the temporary file.</summary>
    public void Dispose() => _spill?.Dispose();
}
