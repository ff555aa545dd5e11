// Tables as the docs print them: Markdown, readable in a terminal and in a CI log, pasted as is into the docs.

using System.Globalization;
using System.Text;

namespace Compression.Samples;

/// <summary>A Markdown table built row by row, with columns padded so that it also reads well as plain text.</summary>
internal sealed class MarkdownTable(params string[] headers)
{
    private readonly List<string[]> rows = [];

    /// <summary>Adds a row; missing cells are left empty.</summary>
    public void Add(params string[] cells) => rows.Add([.. cells, .. Enumerable.Repeat("", Math.Max(0, headers.Length - cells.Length))]);

    /// <inheritdoc/>
    public override string ToString()
    {
        int[] widths = headers.Select((h, i) => rows.Select(r => r[i].Length).Append(h.Length).Max()).ToArray();
        var text = new StringBuilder();
        text.AppendLine("| " + string.Join(" | ", headers.Select((h, i) => h.PadRight(widths[i]))) + " |");
        text.AppendLine("| " + string.Join(" | ", widths.Select(w => new string('-', Math.Max(3, w)))) + " |");
        foreach (string[] row in rows)
        {
            text.AppendLine("| " + string.Join(" | ", row.Select((c, i) => c.PadRight(widths[i]))) + " |");
        }

        return text.ToString();
    }
}

/// <summary>Number formatting shared by the samples (invariant culture).</summary>
internal static class Numbers
{
    /// <summary>"+0.0012" / "−0.0012" / "+0.0000": the sign of the value as printed, never "-0.0000".</summary>
    public static string Signed(double value, string format)
    {
        string digits = Math.Abs(value).ToString(format, CultureInfo.InvariantCulture);
        return (value < 0 && digits.Any(c => c is >= '1' and <= '9') ? "−" : "+") + digits;
    }

    /// <summary>A byte count with thousands separators ("1,234,567").</summary>
    public static string Bytes(long bytes) => bytes.ToString("N0", CultureInfo.InvariantCulture);
}
