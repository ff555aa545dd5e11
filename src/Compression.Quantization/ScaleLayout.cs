// Licensed under the MIT License. See LICENSE in the repository root.
// Part of the Compression library for .NET.

using System;

namespace Compression.Quantization;

/// <summary>
/// Maps every weight of a rows × columns matrix to its scale group. Each row is cut into segments of
/// <see cref="SegmentWidth"/> columns (the last may be shorter); every segment belongs to exactly one group.
/// </summary>
internal readonly struct ScaleLayout
{
    private readonly int _blockRows;

    public ScaleLayout(Granularity granularity, int rows, int columns)
    {
        Rows = rows;
        Columns = columns;
        (SegmentWidth, _blockRows) = granularity switch
        {
            PerTensorGranularity => (Math.Max(columns, 1), Math.Max(rows, 1)),
            PerChannelGranularity => (Math.Max(columns, 1), 1),
            PerGroupGranularity g => (g.Size, 1),
            PerBlockGranularity b => (b.Columns, b.Rows),
            _ => throw new ArgumentOutOfRangeException(nameof(granularity), granularity, "Unknown granularity."),
        };
        SegmentsPerRow = columns == 0 ? 0 : (columns + SegmentWidth - 1) / SegmentWidth;
        GroupRows = rows == 0 ? 0 : (rows + _blockRows - 1) / _blockRows;
        GroupCount = GroupRows * SegmentsPerRow;
    }

    public int Rows { get; }

    public int Columns { get; }

    /// <summary>Columns per segment (the group size along a row).</summary>
    public int SegmentWidth { get; }

    public int SegmentsPerRow { get; }

    /// <summary>Rows of groups (1 for per-tensor, Rows for per-channel and per-group).</summary>
    public int GroupRows { get; }

    /// <summary>The number of scale groups.</summary>
    public int GroupCount { get; }

    /// <summary>The group of segment <paramref name="segment"/> of row <paramref name="row"/>.</summary>
    public int GroupOf(int row, int segment) => (row / _blockRows) * SegmentsPerRow + segment;

    /// <summary>The rows and the segment (column range) a group covers.</summary>
    public (int FirstRow, int RowCount, int Segment) GroupExtent(int group)
    {
        int groupRow = group / SegmentsPerRow;
        int first = groupRow * _blockRows;
        return (first, Math.Min(_blockRows, Rows - first), group % SegmentsPerRow);
    }

    /// <summary>The first column and the width of a segment.</summary>
    public (int Start, int Length) Segment(int segment)
    {
        int start = segment * SegmentWidth;
        return (start, Math.Min(SegmentWidth, Columns - start));
    }
}
