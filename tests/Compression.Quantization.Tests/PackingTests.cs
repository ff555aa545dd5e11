using Compression.Quantization.Packing;
using FsCheck;
using FsCheck.Fluent;
using FsCheck.Xunit;

namespace Compression.Quantization.Tests;

public class PackingTests
{
    [Property(MaxTest = 300)]
    public bool BitPacker_PackUnpack_IsIdentity(byte[] raw, PositiveInt b)
    {
        int bits = b.Get % 8 + 1;
        byte[] codes = raw.Select(v => (byte)(v & ((1 << bits) - 1))).ToArray();
        var packed = new byte[BitPacker.PackedLength(codes.Length, bits)];
        BitPacker.Pack(codes, bits, packed);
        var back = new byte[codes.Length];
        BitPacker.Unpack(packed, bits, back);
        return back.SequenceEqual(codes) && packed.Length == (codes.Length * bits + 7) / 8;
    }

    [Fact]
    public void BitPacker_Layout_IsLsbFirst()
    {
        var packed = new byte[2];
        BitPacker.Pack([0x1, 0x2, 0x3], 4, packed);                            // low nibble first
        Assert.Equal([0x21, 0x03], packed);

        packed = new byte[2];
        BitPacker.Pack([0b101, 0b011, 0b110, 0b001], 3, packed);               // bits 0-2, 3-5, 6-8, 9-11
        Assert.Equal([0b1001_1101, 0b0000_0011], packed);

        packed = new byte[3];
        BitPacker.Pack([0x3F, 0x00, 0x2A, 0x15], 6, packed);
        Assert.Equal([0x3F, 0xA0, 0x56], packed);

        packed = new byte[1];
        BitPacker.Pack([1, 2, 3, 0], 2, packed);
        Assert.Equal([0b00_11_10_01], packed);
    }

    [Property(MaxTest = 300)]
    public bool TritPacker_PackUnpack_IsIdentity(byte[] raw)
    {
        byte[] trits = raw.Select(v => (byte)(v % 3)).ToArray();
        var packed = new byte[TritPacker.PackedLength(trits.Length)];
        TritPacker.Pack(trits, packed);
        var back = new byte[trits.Length];
        TritPacker.Unpack(packed, back);
        return back.SequenceEqual(trits) && packed.All(p => p <= 242);
    }

    [Fact]
    public void TritPacker_Layout_IsBaseThreeLittleEndian()
    {
        var packed = new byte[2];
        TritPacker.Pack([2, 0, 1, 2, 2, 1], packed);                            // 2 + 0·3 + 1·9 + 2·27 + 2·81 = 227
        Assert.Equal([227, 1], packed);
        Assert.Throws<ArgumentException>("trits", () => TritPacker.Pack([3], new byte[1]));
        Assert.Throws<ArgumentException>("packed", () => TritPacker.Unpack([243], new byte[5]));
    }

    [Property(MaxTest = 100)]
    public bool Int32Layout_PackUnpack_IsIdentity(PositiveInt r, PositiveInt c, int seed)
    {
        int rows = r.Get % 9 + 1, columns = c.Get % 40 + 1;
        var random = new Random(seed);
        foreach (int bits in new[] { 2, 4, 8 })
        {
            byte[] codes = Enumerable.Range(0, rows * columns).Select(_ => (byte)random.Next(1 << bits)).ToArray();
            int[] packed = Int32PackedLayout.Pack(codes, rows, columns, bits);
            if (packed.Length != rows * Int32PackedLayout.WordsPerRow(columns, bits) ||
                !Int32PackedLayout.Unpack(packed, rows, columns, bits).SequenceEqual(codes))
            {
                return false;
            }
        }

        return true;
    }

    [Fact]
    public void Int32Layout_PutsEightInt4PerWordLowFirst()
    {
        byte[] codes = [1, 2, 3, 4, 5, 6, 7, 8, 9];
        int[] packed = Int32PackedLayout.Pack(codes, 1, 9, 4);
        Assert.Equal([unchecked((int)0x87654321), 9], packed);
        Assert.Throws<ArgumentOutOfRangeException>("bits", () => Int32PackedLayout.Pack(codes, 1, 9, 3));
    }
}
