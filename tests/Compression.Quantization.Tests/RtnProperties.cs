using Compression.Tensors;
using Compression.Testing;
using FsCheck;
using FsCheck.Fluent;
using FsCheck.Xunit;

namespace Compression.Quantization.Tests;

/// <summary>FsCheck properties of RTN over random formats, granularities, shapes and scales of data.</summary>
public class RtnProperties
{
    private static (DenseTensor W, RtnOptions Options) Case(int seed, int bitsChoice, bool symmetric, int granularityChoice, int rowsChoice, int columnsChoice)
    {
        int rows = rowsChoice % 9 + 1, columns = columnsChoice % 70 + 1;
        Granularity granularity = (granularityChoice % 4) switch
        {
            0 => Granularity.PerTensor,
            1 => Granularity.PerChannel,
            2 => Granularity.PerGroup(Math.Min(columns, granularityChoice % 17 + 1)),
            _ => Granularity.PerBlock(Math.Min(rows, granularityChoice % 3 + 1), Math.Min(columns, granularityChoice % 13 + 1)),
        };
        float magnitude = (float)Math.Pow(10, seed % 7 - 3);
        DenseTensor w = RandomData.GaussianMatrix(rows, columns, seed, magnitude);
        return (w, new RtnOptions { Format = NumberFormat.Int(bitsChoice % 7 + 2), Granularity = granularity, Symmetric = symmetric });
    }

    [Property(MaxTest = 500)]
    public bool Integer_ErrorIsWithinHalfAStep(int seed, PositiveInt bits, bool symmetric, PositiveInt granularity, PositiveInt rows, PositiveInt columns)
    {
        (DenseTensor w, RtnOptions options) = Case(seed, bits.Get, symmetric, granularity.Get, rows.Get, columns.Get);
        QuantizedTensor q = options.CreateCompressor().Quantize(w);
        DenseTensor dq = q.Decompress();
        var layout = new ScaleLayout(options.EffectiveGranularity, w.Rows, w.Columns);
        for (int r = 0; r < w.Rows; r++)
        {
            for (int s = 0; s < layout.SegmentsPerRow; s++)
            {
                (int start, int length) = layout.Segment(s);
                float scale = q.Scales.Span[layout.GroupOf(r, s)];
                for (int c = start; c < start + length; c++)
                {
                    // In range by construction; the slack is one rounding of the float32 product (code − zero)·s.
                    if (MathF.Abs(w[r, c] - dq[r, c]) > scale / 2 * (1 + 1e-6f) + MathF.Abs(dq[r, c]) * 1.2e-7f)
                    {
                        return false;
                    }
                }
            }
        }

        return true;
    }

    [Property(MaxTest = 500)]
    public bool RequantizingTheReconstruction_GivesTheSameCodes(int seed, PositiveInt bits, bool symmetric, PositiveInt granularity, PositiveInt rows, PositiveInt columns)
    {
        (DenseTensor w, RtnOptions options) = Case(seed, bits.Get, symmetric, granularity.Get, rows.Get, columns.Get);
        QuantizedTensor q = options.CreateCompressor().Quantize(w);
        return q.UnpackCodes().SequenceEqual(options.CreateCompressor().Quantize(q.Decompress()).UnpackCodes());
    }

    /// <summary>
    /// Re-quantizing a reconstruction gives it back: MX formats re-derive the same power-of-two scales (the
    /// reconstructed absmax stays in its binade); float-scaled formats re-derive the scale within an ulp or two, far
    /// too little to move a value off its grid point. NVFP4 is left out on purpose: its E4M3 block scales are rounded
    /// quotients of a tensor scale that itself changes with the reconstruction's absmax, so a block scale can move by a
    /// whole E4M3 step (it is idempotent against fixed scales: the codec tests).
    /// </summary>
    [Property(MaxTest = 500)]
    public bool SmallFloatAndMxFormats_ReconstructionIsIdempotent(int seed, PositiveInt formatChoice, PositiveInt columns)
    {
        NumberFormat[] formats = [NumberFormat.Fp8E4M3, NumberFormat.Fp8E5M2, NumberFormat.Fp6E2M3, NumberFormat.Fp6E3M2, NumberFormat.Fp4E2M1,
            NumberFormat.Mxfp8E4M3, NumberFormat.Mxfp8E5M2, NumberFormat.Mxfp6E2M3, NumberFormat.Mxfp6E3M2, NumberFormat.Mxfp4, NumberFormat.Mxint8];
        NumberFormat format = formats[formatChoice.Get % formats.Length];
        DenseTensor w = RandomData.GaussianMatrix(3, columns.Get % 100 + 1, seed);
        var options = new RtnOptions { Format = format };
        DenseTensor once = options.CreateCompressor().Quantize(w).Decompress();
        DenseTensor twice = options.CreateCompressor().Quantize(once).Decompress();
        return once.BitwiseEquals(twice);
    }
}
