// Licensed under the MIT License. See LICENSE in the repository root.
// Part of the Compression library for .NET.

using System;
using System.Linq;
using System.Numerics.Tensors;

namespace Compression.Tensors;

/// <summary>
/// A dense, contiguous, row-major float32 tensor: the currency of the library for weights and activations.
/// </summary>
/// <remarks>
/// <para>
/// Deliberately small (not a tensor library): a shape, one <see cref="Memory{T}"/> of floats, and views. The storage
/// may be shared: <see cref="SliceRows"/>, <see cref="Reshape"/> and the <see cref="DenseTensor(Memory{float}, int[])"/>
/// constructor never copy, so a write through one view is seen by the others.
/// </para>
/// <para>
/// Matrix convention, used by every compressor: a weight of shape [out, in] has <see cref="Rows"/> = out features and
/// <see cref="Columns"/> = in features (PyTorch's <c>nn.Linear.weight</c> layout). A tensor of rank above two is
/// seen as a matrix of <see cref="Columns"/> = the last dimension and <see cref="Rows"/> = the product of the others,
/// which is how activations [batch, sequence, hidden] become rows of samples. A vector is one row.
/// </para>
/// </remarks>
public sealed class DenseTensor
{
    private readonly int[] _shape;

    /// <summary>Allocates a zero-filled tensor.</summary>
    /// <param name="shape">The dimensions; each must be non-negative and their product at most <see cref="Array.MaxLength"/>.</param>
    /// <exception cref="ArgumentException">A dimension is negative, or the element count overflows.</exception>
    public DenseTensor(params int[] shape)
    {
        _shape = ValidateShape(shape, nameof(shape), out int length);
        Memory = new float[length];
    }

    /// <summary>Wraps existing storage without copying.</summary>
    /// <param name="data">The elements, row-major; its length must equal the product of <paramref name="shape"/>.</param>
    /// <param name="shape">The dimensions.</param>
    /// <exception cref="ArgumentException">The shape is invalid or does not match the length of <paramref name="data"/>.</exception>
    public DenseTensor(Memory<float> data, params int[] shape)
    {
        _shape = ValidateShape(shape, nameof(shape), out int length);
        if (data.Length != length)
        {
            ThrowHelper.ThrowArgument(nameof(data),
                $"Shape [{string.Join(", ", shape)}] holds {length} elements but the data has {data.Length}.");
        }

        Memory = data;
    }

    /// <summary>The dimensions, outermost first.</summary>
    public ReadOnlySpan<int> Shape => _shape;

    /// <summary>The number of dimensions.</summary>
    public int Rank => _shape.Length;

    /// <summary>The number of elements.</summary>
    public int Length => Memory.Length;

    /// <summary>Rows of the matrix view: the product of all dimensions but the last (1 for a vector).</summary>
    public int Rows => _shape.Length == 0 ? 1 : Columns == 0 ? ProductOfLeading() : Length / Columns;

    /// <summary>Columns of the matrix view: the last dimension (1 for a scalar).</summary>
    public int Columns => _shape.Length == 0 ? 1 : _shape[^1];

    /// <summary>The storage, row-major.</summary>
    public Memory<float> Memory { get; }

    /// <summary>The storage as a span, for SIMD code. Zero-copy.</summary>
    public Span<float> Span => Memory.Span;

    /// <summary>Gets or sets the element at a row and column of the matrix view.</summary>
    public float this[int row, int column]
    {
        get => Span[CheckedIndex(row, column)];
        set => Span[CheckedIndex(row, column)] = value;
    }

    /// <summary>Creates a tensor over a copy of <paramref name="values"/>.</summary>
    public static DenseTensor FromValues(ReadOnlySpan<float> values, params int[] shape)
    {
        var tensor = new DenseTensor(shape);
        if (values.Length != tensor.Length)
        {
            ThrowHelper.ThrowArgument(nameof(values),
                $"Shape [{string.Join(", ", shape)}] holds {tensor.Length} elements but {values.Length} values were given.");
        }

        values.CopyTo(tensor.Span);
        return tensor;
    }

    /// <summary>Creates a float32 tensor from FP16 values (exact).</summary>
    public static DenseTensor FromHalf(ReadOnlySpan<Half> values, params int[] shape)
    {
        var tensor = new DenseTensor(shape);
        CheckSourceLength(values.Length, tensor, nameof(values));
        NumericConversions.ConvertToSingle(values, tensor.Span);
        return tensor;
    }

    /// <summary>Creates a float32 tensor from BF16 values (exact).</summary>
    public static DenseTensor FromBFloat16(ReadOnlySpan<BFloat16> values, params int[] shape)
    {
        var tensor = new DenseTensor(shape);
        CheckSourceLength(values.Length, tensor, nameof(values));
        NumericConversions.ConvertToSingle(values, tensor.Span);
        return tensor;
    }

    /// <summary>Copies a (possibly strided) <see cref="ReadOnlyTensorSpan{T}"/> into a new contiguous tensor.</summary>
    /// <exception cref="ArgumentException">A dimension exceeds <see cref="int.MaxValue"/>.</exception>
    public static DenseTensor FromTensorSpan(ReadOnlyTensorSpan<float> source)
    {
        ReadOnlySpan<nint> lengths = source.Lengths;
        var shape = new int[lengths.Length];
        for (int i = 0; i < shape.Length; i++)
        {
            if (lengths[i] > int.MaxValue)
            {
                ThrowHelper.ThrowArgument(nameof(source), $"Dimension {i} has {lengths[i]} elements; at most {int.MaxValue} are supported.");
            }

            shape[i] = (int)lengths[i];
        }

        var tensor = new DenseTensor(shape);
        source.FlattenTo(tensor.Span);
        return tensor;
    }

    /// <summary>A zero-copy <see cref="TensorSpan{T}"/> over this tensor, for System.Numerics.Tensors operations.</summary>
    public TensorSpan<float> AsTensorSpan()
    {
        var lengths = new nint[_shape.Length];
        for (int i = 0; i < lengths.Length; i++)
        {
            lengths[i] = _shape[i];
        }

        return new TensorSpan<float>(Span, lengths, []);
    }

    /// <summary>Writes the elements as FP16 (round-to-nearest-even).</summary>
    public void CopyTo(Span<Half> destination) => NumericConversions.ConvertToHalf(Span, destination);

    /// <summary>Writes the elements as BF16 (round-to-nearest-even).</summary>
    public void CopyTo(Span<BFloat16> destination) => NumericConversions.ConvertToBFloat16(Span, destination);

    /// <summary>Row <paramref name="row"/> of the matrix view. Zero-copy.</summary>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="row"/> is outside [0, <see cref="Rows"/>).</exception>
    public Span<float> Row(int row)
    {
        if ((uint)row >= (uint)Rows)
        {
            ThrowHelper.ThrowArgumentOutOfRange(nameof(row), row, $"Row must lie in [0, {Rows}).");
        }

        return Span.Slice(row * Columns, Columns);
    }

    /// <summary>Column <paramref name="column"/> of the matrix view, as a strided view. Zero-copy.</summary>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="column"/> is outside [0, <see cref="Columns"/>).</exception>
    public ColumnView Column(int column)
    {
        if ((uint)column >= (uint)Columns)
        {
            ThrowHelper.ThrowArgumentOutOfRange(nameof(column), column, $"Column must lie in [0, {Columns}).");
        }

        return new ColumnView(Memory, column, Columns, Rows);
    }

    /// <summary>Rows [start, start + count) of the matrix view, as a matrix sharing this storage.</summary>
    /// <exception cref="ArgumentOutOfRangeException">The range is outside [0, <see cref="Rows"/>].</exception>
    public DenseTensor SliceRows(int start, int count)
    {
        if ((uint)start > (uint)Rows || (uint)count > (uint)(Rows - start))
        {
            ThrowHelper.ThrowArgumentOutOfRange(nameof(count), count, $"Rows [{start}, {start}+{count}) are outside [0, {Rows}).");
        }

        return new DenseTensor(Memory.Slice(start * Columns, count * Columns), count, Columns);
    }

    /// <summary>The same storage under another shape with the same element count. Zero-copy.</summary>
    /// <exception cref="ArgumentException">The element counts differ.</exception>
    public DenseTensor Reshape(params int[] shape) => new(Memory, shape);

    /// <summary>A deep copy.</summary>
    public DenseTensor Clone() => new(Span.ToArray(), _shape);

    /// <summary>The transpose of the matrix view, as a new [Columns, Rows] tensor.</summary>
    public DenseTensor Transpose()
    {
        int rows = Rows, columns = Columns;
        var result = new DenseTensor(columns, rows);
        ReadOnlySpan<float> source = Span;
        Span<float> destination = result.Span;

        // Tiled so both the reads and the writes stay within a few cache lines per tile.
        const int Tile = 32;
        for (int r0 = 0; r0 < rows; r0 += Tile)
        {
            int r1 = Math.Min(r0 + Tile, rows);
            for (int c0 = 0; c0 < columns; c0 += Tile)
            {
                int c1 = Math.Min(c0 + Tile, columns);
                for (int r = r0; r < r1; r++)
                {
                    for (int c = c0; c < c1; c++)
                    {
                        destination[c * rows + r] = source[r * columns + c];
                    }
                }
            }
        }

        return result;
    }

    /// <summary>Whether shapes are equal and every element is bitwise equal.</summary>
    public bool BitwiseEquals(DenseTensor other)
    {
        ArgumentNullException.ThrowIfNull(other);
        return Shape.SequenceEqual(other.Shape) &&
               System.Runtime.InteropServices.MemoryMarshal.Cast<float, uint>(Span)
                   .SequenceEqual(System.Runtime.InteropServices.MemoryMarshal.Cast<float, uint>(other.Span));
    }

    /// <inheritdoc/>
    public override string ToString() => $"DenseTensor[{string.Join(", ", _shape)}]";

    internal static int[] ValidateShape(int[] shape, string paramName, out int length)
    {
        ArgumentNullException.ThrowIfNull(shape, paramName);
        long product = 1;
        for (int i = 0; i < shape.Length; i++)
        {
            if (shape[i] < 0)
            {
                ThrowHelper.ThrowArgument(paramName, $"Dimension {i} is {shape[i]}; dimensions must be non-negative.");
            }

            product *= shape[i];
            if (product > Array.MaxLength)
            {
                ThrowHelper.ThrowArgument(paramName,
                    $"Shape [{string.Join(", ", shape)}] has more than {Array.MaxLength} elements, the most one array can hold.");
            }
        }

        length = (int)product;
        return shape.ToArray();
    }

    private static void CheckSourceLength(int actual, DenseTensor tensor, string paramName)
    {
        if (actual != tensor.Length)
        {
            ThrowHelper.ThrowArgument(paramName,
                $"Shape [{string.Join(", ", tensor._shape)}] holds {tensor.Length} elements but {actual} values were given.");
        }
    }

    private int ProductOfLeading()
    {
        long product = 1;
        for (int i = 0; i < _shape.Length - 1; i++)
        {
            product *= _shape[i];
        }

        return (int)Math.Min(product, int.MaxValue);
    }

    private int CheckedIndex(int row, int column)
    {
        if ((uint)row >= (uint)Rows || (uint)column >= (uint)Columns)
        {
            ThrowHelper.ThrowArgumentOutOfRange(nameof(row), (row, column), $"Index ({row}, {column}) is outside [{Rows}, {Columns}].");
        }

        return row * Columns + column;
    }
}
