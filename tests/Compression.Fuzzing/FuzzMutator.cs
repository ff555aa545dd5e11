// Licensed under the MIT License. See LICENSE in the repository root.
// Part of the Compression library for .NET.

using System.Buffers.Binary;
using System.Text;

namespace Compression.Fuzzing;

/// <summary>
/// A small, deterministic mutator for the CI run (AFL++ does the real search): bit flips, byte inserts and deletes,
/// splices with another seed, interesting integers written over the 8-byte safetensors length prefix or over a byte
/// run, and interesting numbers written over a JSON number. The same seed gives the same sequence of inputs.
/// </summary>
public sealed class FuzzMutator
{
    private static readonly long[] InterestingIntegers =
    [
        0, 1, -1, 2, 7, 8, 15, 16, 127, 128, 255, 256, 1023, 1024, 4095, 4096, 32767, 32768, 65535, 65536,
        int.MaxValue, (long)int.MaxValue + 1, uint.MaxValue, (long)uint.MaxValue + 1, 100_000_000, 100_000_001,
        long.MaxValue, long.MinValue, long.MaxValue / 2, 1L << 40, 1L << 53, -(1L << 31),
    ];

    private static readonly string[] InterestingNumbers =
    [
        "0", "-0", "1", "-1", "2", "3", "65", "128", "2147483647", "2147483648", "-2147483648", "4294967295", "4294967296",
        "9223372036854775807", "9223372036854775808", "18446744073709551616", "1e308", "1e400", "-1e400", "1.5", "0.5",
        "1e-400", "NaN", "Infinity", "1E9", "00", "1.0", "100000000", "99999999999999999999999999",
    ];

    private readonly Random _random;
    private readonly IReadOnlyList<byte[]> _seeds;

    /// <summary>Creates a mutator over <paramref name="seeds"/> (at least one) with a fixed <paramref name="seed"/>.</summary>
    public FuzzMutator(IReadOnlyList<byte[]> seeds, int seed)
    {
        ArgumentNullException.ThrowIfNull(seeds);
        if (seeds.Count == 0)
        {
            throw new ArgumentException("At least one seed is needed.", nameof(seeds));
        }

        _seeds = seeds;
        _random = new Random(seed);
    }

    /// <summary>The next input: a seed with one to four stacked mutations.</summary>
    public byte[] Next()
    {
        var data = new List<byte>(_seeds[_random.Next(_seeds.Count)]);
        int mutations = 1 + _random.Next(4);
        for (int m = 0; m < mutations; m++)
        {
            Mutate(data);
        }

        return data.ToArray();
    }

    private void Mutate(List<byte> data)
    {
        switch (_random.Next(9))
        {
            case 0 when data.Count > 0:
                int bit = _random.Next(data.Count * 8);
                data[bit / 8] ^= (byte)(1 << (bit % 8));
                break;
            case 1 when data.Count > 0:
                data[_random.Next(data.Count)] = (byte)_random.Next(256);
                break;
            case 2:
                int at = _random.Next(data.Count + 1);
                int count = 1 + _random.Next(8);
                for (int i = 0; i < count; i++)
                {
                    data.Insert(at, (byte)_random.Next(256));
                }

                break;
            case 3 when data.Count > 0:
                int start = _random.Next(data.Count);
                data.RemoveRange(start, Math.Min(data.Count - start, 1 + _random.Next(16)));
                break;
            case 4:
                byte[] other = _seeds[_random.Next(_seeds.Count)];
                int cut = _random.Next(data.Count + 1), from = _random.Next(other.Length + 1);
                data.RemoveRange(cut, data.Count - cut);
                data.AddRange(other.AsSpan(from).ToArray());
                break;
            case 5 when data.Count >= 8:
                // The safetensors length prefix (and the header target's data length).
                Span<byte> prefix = stackalloc byte[8];
                BinaryPrimitives.WriteInt64LittleEndian(prefix, Interesting());
                for (int i = 0; i < 8; i++)
                {
                    data[i] = prefix[i];
                }

                break;
            case 6 when data.Count >= 4:
                Span<byte> word = stackalloc byte[8];
                BinaryPrimitives.WriteInt64LittleEndian(word, Interesting());
                int width = _random.Next(2) == 0 ? 4 : Math.Min(8, data.Count);
                int position = _random.Next(data.Count - width + 1);
                for (int i = 0; i < width; i++)
                {
                    data[position + i] = word[i];
                }

                break;
            case 7:
                ReplaceJsonNumber(data);
                break;
            default:
                TruncateOrDuplicate(data);
                break;
        }
    }

    private long Interesting() => InterestingIntegers[_random.Next(InterestingIntegers.Length)];

    /// <summary>Writes an interesting number over a run of digits (a JSON number, or an offset in a header).</summary>
    private void ReplaceJsonNumber(List<byte> data)
    {
        var starts = new List<int>();
        for (int i = 0; i < data.Count; i++)
        {
            if (IsNumberByte(data[i]) && (i == 0 || !IsNumberByte(data[i - 1])))
            {
                starts.Add(i);
            }
        }

        if (starts.Count == 0)
        {
            return;
        }

        int begin = starts[_random.Next(starts.Count)], end = begin;
        while (end < data.Count && IsNumberByte(data[end]))
        {
            end++;
        }

        data.RemoveRange(begin, end - begin);
        data.InsertRange(begin, Encoding.ASCII.GetBytes(InterestingNumbers[_random.Next(InterestingNumbers.Length)]));
    }

    private static bool IsNumberByte(byte b) => b is (>= (byte)'0' and <= (byte)'9') or (byte)'-' or (byte)'.' or (byte)'e' or (byte)'E';

    private void TruncateOrDuplicate(List<byte> data)
    {
        if (data.Count == 0)
        {
            return;
        }

        int at = _random.Next(data.Count);
        if (_random.Next(2) == 0)
        {
            data.RemoveRange(at, data.Count - at);
        }
        else
        {
            int length = Math.Min(data.Count - at, 1 + _random.Next(64));
            data.InsertRange(at, data.GetRange(at, length));
        }
    }
}
