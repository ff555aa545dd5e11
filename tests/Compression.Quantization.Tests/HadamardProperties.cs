using Compression.Quantization.Rotation;
using Compression.Tensors;
using Compression.Testing;
using FsCheck;
using FsCheck.Xunit;

namespace Compression.Quantization.Tests;

/// <summary>FsCheck properties of the Walsh–Hadamard transform and rotations over random sizes, blocks and magnitudes.</summary>
public class HadamardProperties
{
    [Property(MaxTest = 300)]
    public bool Transform_PreservesTheNorm(int seed, PositiveInt logLength, PositiveInt logBlock, int magnitude)
    {
        int length = 1 << (logLength.Get % 12 + 1);
        int block = 1 << Math.Min(logBlock.Get % 12 + 1, (int)Math.Log2(length));
        // Magnitudes from 1e-30 to 1e30: no overflow or underflow into subnormals for the sums of ≤ 4096 terms.
        float scale = (float)Math.Pow(10, magnitude % 31);
        float[] x = RandomData.Gaussian(length, seed, scale);
        double before = HadamardReference.Norm(x);
        WalshHadamard.TransformBlocks(x, block);
        double after = HadamardReference.Norm(x);
        // Per element error ≤ 13·2⁻²⁴ of the block's norm (see HadamardTests), so the norm moves by < 1e-6 relative.
        return Math.Abs(after - before) <= 1e-6 * before;
    }

    [Property(MaxTest = 100)]
    public bool Rotation_RoundTrips_AndPreservesEachRowsNorm(int seed, PositiveInt logBlock, PositiveInt rowsChoice, PositiveInt blocksChoice, bool signs)
    {
        int block = 1 << (logBlock.Get % 8 + 1);
        int rows = rowsChoice.Get % 5 + 1, columns = block * (blocksChoice.Get % 4 + 1);
        var rotation = new HadamardRotation(block, signs ? seed : null);
        DenseTensor w = RandomData.GaussianMatrix(rows, columns, seed);
        DenseTensor rotated = rotation.RotateWeight(w);
        DenseTensor back = rotation.UnrotateWeight(rotated);
        for (int r = 0; r < rows; r++)
        {
            double norm = HadamardReference.Norm(w.Row(r));
            if (Math.Abs(HadamardReference.Norm(rotated.Row(r)) - norm) > 1e-6 * norm)
            {
                return false;
            }

            for (int c = 0; c < columns; c++)
            {
                if (Math.Abs(back[r, c] - w[r, c]) > 2e-6 * norm)
                {
                    return false;
                }
            }
        }

        return true;
    }
}
