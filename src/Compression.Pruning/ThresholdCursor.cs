// Licensed under the MIT License. See LICENSE in the repository root.
// Part of the Compression library for .NET.

namespace Compression.Pruning;

/// <summary>
/// Walks scores in index order and says which survive a <see cref="SelectionThreshold"/>: below it pruned, equal to it
/// pruned until its quota of ties is used up (so the lower indices go first), above it kept.
/// </summary>
internal struct ThresholdCursor
{
    private readonly uint _key;
    private long _tiesLeft;

    /// <summary>Starts a walk; <paramref name="pruned"/> = 0 keeps everything.</summary>
    public ThresholdCursor(SelectionThreshold threshold, long pruned)
    {
        // With nothing to prune there is no threshold: a key of 0 with no ties to take keeps every score.
        _key = pruned == 0 ? 0 : threshold.Key;
        _tiesLeft = pruned == 0 ? 0 : threshold.TakeAtKey;
    }

    /// <summary>Whether the next score in index order is kept.</summary>
    public bool Keeps(float score)
    {
        uint key = ThresholdSelection.KeyOf(score);
        // Ties at the threshold are rare, so this branch predicts well; the common comparison below compiles to a flag
        // set rather than a branch that random data would mispredict half the time.
        if (key == _key && _tiesLeft > 0)
        {
            _tiesLeft--;
            return false;
        }

        return key >= _key;
    }
}
