// Licensed under the MIT License. See LICENSE in the repository root.
// Part of the Compression library for .NET.

using System;
using System.Collections.Generic;
using TorchSharp;
using static TorchSharp.torch;

namespace Compression.TorchSharp.Distillation;

/// <summary>
/// The <see cref="Distiller"/>'s view of its batches: an endless stream that enumerates the source again when it runs
/// out (epochs), skips consumed batches on resume, and checks each batch's dtype, shape and ids.
/// </summary>
internal sealed class BatchStream(IEnumerable<Tensor> source, int vocabulary, int context) : IDisposable
{
    private IEnumerator<Tensor> _enumerator = source.GetEnumerator();
    private long _drawn;

    /// <summary>Draws the first batch (in a dispose scope), checks it, and starts again from the beginning.</summary>
    /// <exception cref="ArgumentException">The source yields nothing, or its first batch is malformed.</exception>
    public void CheckNotEmpty()
    {
        using (NewDisposeScope())
        {
            if (!_enumerator.MoveNext())
            {
                throw new ArgumentException("The batch sequence is empty: give at least one batch of token ids [batch, time].", "batches");
            }

            Check(_enumerator.Current, 0);
        }

        Restart();
    }

    /// <summary>Draws and discards <paramref name="count"/> batches (each in its own dispose scope).</summary>
    public void Skip(long count)
    {
        for (long i = 0; i < count; i++)
        {
            using (NewDisposeScope())
            {
                _ = Next();
            }
        }
    }

    /// <summary>The next batch, checked; the source starts again when it is exhausted.</summary>
    /// <exception cref="ArgumentException">A batch is malformed, or a new enumeration of the source yields nothing.</exception>
    public Tensor Next()
    {
        if (!_enumerator.MoveNext())
        {
            Restart();
            if (!_enumerator.MoveNext())
            {
                throw new ArgumentException("The batch sequence ran out and enumerating it again yields nothing.", "batches");
            }
        }

        Tensor batch = _enumerator.Current;
        Check(batch, _drawn++);
        return batch;
    }

    /// <inheritdoc/>
    public void Dispose() => _enumerator.Dispose();

    private void Restart()
    {
        _enumerator.Dispose();
        _enumerator = source.GetEnumerator();
    }

    private void Check(Tensor? batch, long index)
    {
        if (batch is null)
        {
            throw new ArgumentException($"Batch {index} is null.", "batches");
        }

        if (batch.dtype != ScalarType.Int64 || batch.dim() != 2)
        {
            throw new ArgumentException($"Batch {index} is {batch.dtype} [{string.Join(", ", batch.shape)}]; token ids must be int64 [batch, time].", "batches");
        }

        long time = batch.shape[1];
        if (batch.shape[0] < 1 || time < 2 || time - 1 > context)
        {
            throw new ArgumentException(
                $"Batch {index} has shape [{string.Join(", ", batch.shape)}]; it needs at least one row and 2 ≤ time ≤ {context + 1} (the models read time − 1 tokens, context {context}).",
                "batches");
        }

        using var noGrad = torch.no_grad();
        using Tensor low = batch.min(), high = batch.max();
        long min = low.ToInt64(), max = high.ToInt64();
        if (min < 0 || max >= vocabulary)
        {
            throw new ArgumentException($"Batch {index} holds token ids in [{min}, {max}]; the vocabulary has {vocabulary} tokens.", "batches");
        }
    }
}
