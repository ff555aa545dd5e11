using Compression.Tensors;
using FsCheck;
using FsCheck.Xunit;

namespace Compression.Core.Tests;

public class SparsityMaskTests
{
    [Property(MaxTest = 200)]
    public bool Bytes_RoundTrip_AndCountsAgree(PositiveInt r, PositiveInt c, int seed)
    {
        int rows = r.Get % 40, columns = c.Get % 40;
        var random = new Random(seed);
        bool[] keep = Enumerable.Range(0, rows * columns).Select(_ => random.Next(2) == 1).ToArray();
        SparsityMask mask = SparsityMask.FromPredicate(rows, columns, keep, (k, i) => k[i]);
        SparsityMask back = SparsityMask.FromBytes(rows, columns, mask.ToBytes());
        bool same = Enumerable.Range(0, rows * columns).All(i => back.IsKept(i / columns, i % columns) == keep[i]);
        return same && back.KeptCount == keep.Count(k => k) && mask.KeptCount == back.KeptCount;
    }

    [Fact]
    public void Apply_ZeroesExactlyThePrunedPositions()
    {
        DenseTensor m = DenseTensor.FromValues([1, 0, 3, 0, 5, 6], 2, 3);
        SparsityMask mask = SparsityMask.FromNonZeros(m);
        Assert.Equal(4, mask.KeptCount);
        Assert.Equal(2.0 / 6, mask.Sparsity, 12);
        float[] other = [9, 9, 9, 9, 9, 9];
        mask.Apply(other);
        Assert.Equal([9f, 0, 9, 0, 9, 9], other);
    }

    [Fact]
    public void FromBytes_RejectsWrongLengthsAndStrayBits()
    {
        Assert.Throws<ArgumentException>("bytes", () => SparsityMask.FromBytes(3, 3, new byte[1]));
        Assert.Throws<ArgumentException>("bytes", () => SparsityMask.FromBytes(3, 3, [0xFF, 0x03]));   // bit 9 is past 3×3
        Assert.Throws<ArgumentOutOfRangeException>("row", () => SparsityMask.FromBytes(3, 3, [0, 0]).IsKept(3, 0));
    }
}
