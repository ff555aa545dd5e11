// Licensed under the MIT License. See LICENSE in the repository root.
// Part of the Compression library for .NET.

using Compression.Tensors;

namespace Compression.Testing;

/// <summary>The checks behind every bad-input matrix row (docs/reliability.md), shared by the test projects.</summary>
public static class BadInput
{
    /// <summary>
    /// <paramref name="call"/> throws exactly <paramref name="expected"/>; an argument error names
    /// <paramref name="parameter"/>; the message contains <paramref name="detail"/>. <paramref name="why"/> labels failures.
    /// </summary>
    public static void AssertRefused(string why, Action call, Type expected, string? parameter, string detail)
    {
        Exception e = Xunit.Assert.Throws(expected, call);
        if (e is ArgumentException argument)
        {
            Xunit.Assert.True(parameter == argument.ParamName, $"{why}: expected parameter '{parameter}', got '{argument.ParamName}' ({e.Message})");
        }

        Xunit.Assert.True(e.Message.Contains(detail, StringComparison.Ordinal), $"{why}: the message '{e.Message}' does not say '{detail}'");
    }

    /// <summary>A copy of <paramref name="good"/> with <paramref name="value"/> (NaN, ±Inf) at (2, 5), where the rows' messages expect it.</summary>
    public static DenseTensor WithValueAt25(DenseTensor good, float value)
    {
        DenseTensor w = good.Clone();
        w[2, 5] = value;
        return w;
    }
}
