// Licensed under the MIT License. See LICENSE in the repository root.
// Part of the Compression library for .NET.

using System;
using System.Numerics;
using Compression.Tensors;
using MathNet.Numerics.LinearAlgebra;

namespace Compression.LowRank;

/// <summary>
/// Conversions between <see cref="DenseTensor"/> (row-major) and MathNet.Numerics dense matrices (column-major).
/// They live here, not in Core, so that Core does not depend on MathNet.
/// </summary>
/// <remarks>Each conversion copies, because the two layouts differ. Float → double is exact; double → float rounds
/// to nearest.</remarks>
public static class MathNetInterop
{
    /// <summary>Copies a matrix (rank 2) into a MathNet single-precision matrix.</summary>
    /// <exception cref="ArgumentException"><paramref name="tensor"/> is not rank 2.</exception>
    public static Matrix<float> ToMathNetMatrix(this DenseTensor tensor)
    {
        float[] storage = ColumnMajor<float>(tensor);
        return MathNet.Numerics.LinearAlgebra.Single.DenseMatrix.OfColumnMajor(tensor.Rows, tensor.Columns, storage);
    }

    /// <summary>Copies a matrix (rank 2) into a MathNet double-precision matrix (exact).</summary>
    /// <exception cref="ArgumentException"><paramref name="tensor"/> is not rank 2.</exception>
    public static Matrix<double> ToMathNetMatrixDouble(this DenseTensor tensor)
    {
        double[] storage = ColumnMajor<double>(tensor);
        return MathNet.Numerics.LinearAlgebra.Double.DenseMatrix.OfColumnMajor(tensor.Rows, tensor.Columns, storage);
    }

    /// <summary>Copies a MathNet matrix into a new [rows, columns] tensor.</summary>
    public static DenseTensor ToDenseTensor(this Matrix<float> matrix) => RowMajor(matrix);

    /// <summary>Copies a MathNet double matrix into a new float32 [rows, columns] tensor (round to nearest).</summary>
    public static DenseTensor ToDenseTensor(this Matrix<double> matrix) => RowMajor(matrix);

    private static T[] ColumnMajor<T>(DenseTensor tensor)
        where T : unmanaged, INumberBase<T>
    {
        CheckMatrix(tensor);
        int rows = tensor.Rows, columns = tensor.Columns;
        var storage = new T[rows * columns];
        ReadOnlySpan<float> source = tensor.Span;
        for (int r = 0; r < rows; r++)
        {
            for (int c = 0; c < columns; c++)
            {
                storage[c * rows + r] = T.CreateTruncating(source[r * columns + c]);
            }
        }

        return storage;
    }

    private static DenseTensor RowMajor<T>(Matrix<T> matrix)
        where T : struct, IEquatable<T>, IFormattable, INumberBase<T>
    {
        ArgumentNullException.ThrowIfNull(matrix);
        var tensor = new DenseTensor(matrix.RowCount, matrix.ColumnCount);
        Span<float> destination = tensor.Span;
        int columns = matrix.ColumnCount;
        for (int r = 0; r < matrix.RowCount; r++)
        {
            for (int c = 0; c < columns; c++)
            {
                destination[r * columns + c] = float.CreateTruncating(matrix.At(r, c));
            }
        }

        return tensor;
    }

    private static void CheckMatrix(DenseTensor tensor)
    {
        ArgumentNullException.ThrowIfNull(tensor);
        if (tensor.Rank != 2)
        {
            throw new ArgumentException($"Expected a matrix (rank 2), got shape [{string.Join(", ", tensor.Shape.ToArray())}].", nameof(tensor));
        }
    }
}
