using Compression.Quantization.Rotation;

namespace Compression.Quantization.Tests;

/// <summary>Explicit float64 matrices the fast transforms are held to: Sylvester's recursion, not the library's code.</summary>
internal static class HadamardReference
{
    /// <summary>The normalized Sylvester–Hadamard matrix of order n, row-major: H₂ₙ = [[Hₙ, Hₙ], [Hₙ, −Hₙ]] / √2.</summary>
    public static double[,] Sylvester(int n)
    {
        var h = new double[,] { { 1.0 } };
        for (int size = 1; size < n; size *= 2)
        {
            var next = new double[2 * size, 2 * size];
            for (int i = 0; i < size; i++)
            {
                for (int j = 0; j < size; j++)
                {
                    double v = h[i, j] / Math.Sqrt(2);
                    next[i, j] = v;
                    next[i, j + size] = v;
                    next[i + size, j] = v;
                    next[i + size, j + size] = -v;
                }
            }

            h = next;
        }

        return h;
    }

    /// <summary>The explicit R = diag(H_b, …, H_b)·D of a rotation for n columns.</summary>
    public static double[,] Rotation(HadamardRotation rotation, int n)
    {
        int b = rotation.BlockSize;
        double[,] block = Sylvester(b);
        var r = new double[n, n];
        for (int start = 0; start < n; start += b)
        {
            for (int i = 0; i < b; i++)
            {
                for (int j = 0; j < b; j++)
                {
                    r[start + i, start + j] = block[i, j] * rotation.Sign(start + j);
                }
            }
        }

        return r;
    }

    /// <summary>M·v in float64.</summary>
    public static double[] Multiply(double[,] m, ReadOnlySpan<float> v)
    {
        int n = m.GetLength(0);
        var result = new double[n];
        for (int i = 0; i < n; i++)
        {
            double sum = 0;
            for (int j = 0; j < v.Length; j++)
            {
                sum += m[i, j] * v[j];
            }

            result[i] = sum;
        }

        return result;
    }

    /// <summary>A·B for square matrices, float64.</summary>
    public static double[,] Multiply(double[,] a, double[,] b)
    {
        int n = a.GetLength(0);
        var c = new double[n, n];
        for (int i = 0; i < n; i++)
        {
            for (int k = 0; k < n; k++)
            {
                double aik = a[i, k];
                for (int j = 0; j < n; j++)
                {
                    c[i, j] += aik * b[k, j];
                }
            }
        }

        return c;
    }

    public static double[,] Transpose(double[,] a)
    {
        int n = a.GetLength(0);
        var t = new double[n, n];
        for (int i = 0; i < n; i++)
        {
            for (int j = 0; j < n; j++)
            {
                t[j, i] = a[i, j];
            }
        }

        return t;
    }

    public static double Norm(ReadOnlySpan<float> v)
    {
        double sum = 0;
        foreach (float x in v)
        {
            sum += (double)x * x;
        }

        return Math.Sqrt(sum);
    }
}
