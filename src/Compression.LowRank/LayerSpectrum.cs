// Licensed under the MIT License. See LICENSE in the repository root.
// Part of the Compression library for .NET.

using System;
using System.Collections.Generic;

namespace Compression.LowRank;

/// <summary>One layer's shape and singular values, the input of a global rank allocation.</summary>
/// <param name="Name">The layer's name, carried through to the result.</param>
/// <param name="Rows">Output features m.</param>
/// <param name="Columns">Input features n.</param>
/// <param name="SingularValues">Its singular values, descending (all min(m, n) of them for an exact allocation; a
/// leading part is treated as if the rest were zero).</param>
public sealed record LayerSpectrum(string Name, int Rows, int Columns, IReadOnlyList<double> SingularValues)
{
    /// <summary>m·n, the layer's dense parameter count.</summary>
    public long DenseParameters => (long)Rows * Columns;

    internal void Validate()
    {
        ArgumentNullException.ThrowIfNull(Name, nameof(Name));
        ArgumentNullException.ThrowIfNull(SingularValues, nameof(SingularValues));
        if (Rows < 1 || Columns < 1)
        {
            throw new ArgumentException($"Layer '{Name}' is {Rows}×{Columns}; both dimensions must be positive.", "layers");
        }

        if (SingularValues.Count == 0 || SingularValues.Count > Math.Min(Rows, Columns))
        {
            throw new ArgumentException($"Layer '{Name}' has {SingularValues.Count} singular values; 1 to {Math.Min(Rows, Columns)} are needed.", "layers");
        }

        for (int i = 0; i < SingularValues.Count; i++)
        {
            double s = SingularValues[i];
            if (!double.IsFinite(s) || s < 0 || (i > 0 && s > SingularValues[i - 1]))
            {
                throw new ArgumentException($"Layer '{Name}': singular value {i} is {s}; they must be finite, non-negative and descending.", "layers");
            }
        }
    }
}
