using Compression.Quantization.Formats;

namespace Compression.Quantization.Tests;

/// <summary>
/// An independent reference for small-float rounding: the sorted list of every finite value a format holds (built
/// from the spec's definition in float64), nearest by comparison with the midpoints, ties to the value whose code
/// has an even mantissa (its lowest bit clear). Knows nothing of the codec's bit arithmetic.
/// </summary>
internal sealed class MiniFloatReference
{
    private readonly double[] _values;      // non-negative finite values, ascending
    private readonly int[] _codes;          // their codes (sign clear)

    public MiniFloatReference(int exponentBits, int mantissaBits, int bias, SpecialValues specials)
    {
        var pairs = new List<(double Value, int Code)>();
        int maxField = (1 << exponentBits) - 1;
        for (int e = 0; e <= maxField; e++)
        {
            for (int m = 0; m < 1 << mantissaBits; m++)
            {
                if (specials == SpecialValues.Ieee && e == maxField)
                {
                    continue;
                }

                if (specials == SpecialValues.NaNOnly && e == maxField && m == (1 << mantissaBits) - 1)
                {
                    continue;
                }

                double value = e == 0
                    ? m * Math.Pow(2, 1 - bias - mantissaBits)
                    : (1 + m / Math.Pow(2, mantissaBits)) * Math.Pow(2, e - bias);
                pairs.Add((value, (e << mantissaBits) | m));
            }
        }

        pairs.Sort((a, b) => a.Value.CompareTo(b.Value));
        _values = pairs.Select(p => p.Value).ToArray();
        _codes = pairs.Select(p => p.Code).ToArray();
        SignBit = 1 << (exponentBits + mantissaBits);
        Max = _values[^1];
    }

    public int SignBit { get; }

    public double Max { get; }

    public IReadOnlyList<double> Values => _values;

    /// <summary>The saturating encode of a finite or infinite x (NaN is not asked of the reference).</summary>
    public int Encode(float x)
    {
        double a = Math.Abs((double)x);
        int sign = float.IsNegative(x) ? SignBit : 0;
        if (a >= Max)
        {
            return sign | _codes[^1];
        }

        int hi = Array.BinarySearch(_values, a);
        if (hi >= 0)
        {
            return sign | _codes[hi];
        }

        hi = ~hi;                                   // first value above a
        double below = _values[hi - 1], above = _values[hi];
        double midpoint = (below + above) / 2;      // exact in float64 for these short significands
        int pick = a < midpoint ? hi - 1 : a > midpoint ? hi : ((_codes[hi - 1] & 1) == 0 ? hi - 1 : hi);
        return sign | _codes[pick];
    }
}
