// Every number format of Compression.Quantization on one real weight: TinyStories-656K's
// model.layers.0.mlp.down_proj.weight ([128, 384], read with the safetensors reader). For each format (round to
// nearest): bits per weight with its scales, RMSE, maximum error and SQNR against the FP32 weight, and a histogram of
// the weights with the grid that the format gave row 0's first group. Then the singular-value spectra of the seven
// linear weights of block 0 (how much a low-rank factorisation could keep).
//
//   dotnet run --project samples/FormatsTour -c Release [-- tensor-name] [--plots out/plots]

using System.Globalization;
using Compression.Quantization;
using Compression.Safetensors;
using Compression.Samples;
using Compression.Tensors;
using ScottPlot;
using TorchSharp;

CultureInfo.CurrentCulture = CultureInfo.InvariantCulture;
string tensorName = args.Length > 0 && !args[0].StartsWith("--", StringComparison.Ordinal) ? args[0] : "model.layers.0.mlp.down_proj.weight";
string plots = SamplePlots.Folder(args);
using SafetensorsCheckpoint checkpoint = SafetensorsCheckpoint.Open(Path.Combine(TinyStoriesData.ModelFolder, "model.safetensors"));
DenseTensor weight = checkpoint.ReadDense(tensorName);
float[] w = weight.Span.ToArray();

var formats = new (string Name, RtnOptions Options)[]
{
    ("INT8 per-channel", RtnOptions.W8PerChannel),
    ("INT4 per-channel", new RtnOptions { Format = NumberFormat.Int4, Granularity = Granularity.PerChannel }),
    ("INT4 g32", new RtnOptions { Format = NumberFormat.Int4, Granularity = Granularity.PerGroup(32) }),
    ("INT4 g32 asymmetric", new RtnOptions { Format = NumberFormat.Int4, Granularity = Granularity.PerGroup(32), Symmetric = false }),
    ("INT4 g32 + clipping search", new RtnOptions { Format = NumberFormat.Int4, Granularity = Granularity.PerGroup(32), Clipping = ClippingSearch.Default }),
    ("INT3 g32", new RtnOptions { Format = NumberFormat.Int3, Granularity = Granularity.PerGroup(32) }),
    ("INT2 g32", new RtnOptions { Format = NumberFormat.Int2, Granularity = Granularity.PerGroup(32) }),
    ("FP8 E4M3 per-channel", RtnOptions.Fp8PerChannel),
    ("FP8 E5M2 per-channel", new RtnOptions { Format = NumberFormat.Fp8E5M2, Granularity = Granularity.PerChannel }),
    ("MXFP8 E4M3", new RtnOptions { Format = NumberFormat.Mxfp8E4M3 }),
    ("MXFP8 E5M2", new RtnOptions { Format = NumberFormat.Mxfp8E5M2 }),
    ("MXFP6 E2M3", new RtnOptions { Format = NumberFormat.Mxfp6E2M3 }),
    ("MXFP6 E3M2", new RtnOptions { Format = NumberFormat.Mxfp6E3M2 }),
    ("MXINT8", new RtnOptions { Format = NumberFormat.Mxint8 }),
    ("MXFP4", RtnOptions.Mxfp4),
    ("NVFP4", RtnOptions.Nvfp4),
    ("NF4", RtnOptions.Nf4),
    ("ternary (absmean)", new RtnOptions { Format = NumberFormat.TernaryAbsMean }),
    ("ternary (threshold, TWN)", new RtnOptions { Format = NumberFormat.TernaryThreshold }),
};

double signal = w.Sum(x => (double)x * x);
var table = new MarkdownTable("format", "granularity", "bits/weight", "RMSE", "max |error|", "SQNR, dB");
foreach ((string name, RtnOptions options) in formats)
{
    QuantizedTensor quantized = options.CreateCompressor().Quantize(weight);
    float[] q = quantized.Decompress().Span.ToArray();
    double noise = 0, maxError = 0;
    for (int i = 0; i < w.Length; i++)
    {
        // float64 sums: 49,152 squared errors of ~1e-4 each would lose digits in float32.
        double e = (double)w[i] - q[i];
        noise += e * e;
        maxError = Math.Max(maxError, Math.Abs(e));
    }

    table.Add(name, options.EffectiveGranularity.ToString(), quantized.BitsPerWeight.ToString("F3"), Math.Sqrt(noise / w.Length).ToString("E3"),
        maxError.ToString("E3"), (10 * Math.Log10(signal / noise)).ToString("F2"));

    // The grid row 0's first group was given: the distinct values its weights dequantized to, drawn over the histogram.
    int groupWidth = options.EffectiveGranularity switch
    {
        PerGroupGranularity g => g.Size,
        PerBlockGranularity b => b.Columns,
        _ => FixedBlock(options.Format, weight.Columns),
    };
    double[] grid = q.AsSpan(0, Math.Min(groupWidth, weight.Columns)).ToArray().Distinct().Select(v => (double)v).Order().ToArray();
    var plot = new Plot();
    Histogram(plot, w, bins: 120);
    foreach (double g in grid)
    {
        var line = plot.Add.VerticalLine(g, 1, Colors.OrangeRed.WithAlpha(0.7));
        line.LegendText = g == grid[0] ? $"dequantized values of row 0, first group ({grid.Length})" : "";
    }

    plot.Title($"{tensorName}: {name} ({quantized.BitsPerWeight:F2} bits/weight)");
    plot.XLabel("weight");
    plot.YLabel("count");
    plot.ShowLegend(Alignment.UpperRight);
    SamplePlots.Save(plot, plots, "format-" + Slug(name), 900, 480);
}

Console.WriteLine($"{tensorName} of TinyStories-656K, [{weight.Rows}, {weight.Columns}], round to nearest in every format; SQNR = 10·log10(Σw² / Σ(w − q)²)");
Console.WriteLine();
Console.WriteLine(table);
Console.WriteLine($"histograms: {plots}/format-*.png (and .svg)");

// Singular values of block 0's linear weights, each normalised by its largest: how fast the spectrum falls says how
// much a rank-r factorisation keeps (docs/lowrank.md).
var spectra = new Plot();
var ranks = new MarkdownTable("weight", "shape", "rank for 90% of ‖W‖²_F", "rank for 99%");
foreach (string projection in new[] { "self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.o_proj", "mlp.gate_proj", "mlp.up_proj", "mlp.down_proj" })
{
    DenseTensor matrix = checkpoint.ReadDense($"model.layers.0.{projection}.weight");
    using var t = torch.tensor(matrix.Span.ToArray(), [matrix.Rows, matrix.Columns]);
    using var values = torch.linalg.svdvals(t.to(torch.float64));
    double[] sigma = values.data<double>().ToArray();
    double energy = sigma.Sum(x => x * x), running = 0;
    int r90 = 0, r99 = 0;
    for (int i = 0; i < sigma.Length; i++)
    {
        running += sigma[i] * sigma[i];
        r90 = r90 == 0 && running >= 0.90 * energy ? i + 1 : r90;
        r99 = r99 == 0 && running >= 0.99 * energy ? i + 1 : r99;
    }

    ranks.Add(projection, $"[{matrix.Rows}, {matrix.Columns}]", $"{r90} of {sigma.Length}", $"{r99} of {sigma.Length}");
    SamplePlots.Line(spectra, Enumerable.Range(1, sigma.Length).Select(i => (double)i).ToArray(), sigma.Select(x => x / sigma[0]).ToArray(), projection);
}

spectra.Title("TinyStories-656K block 0: singular values σᵢ/σ₁");
spectra.XLabel("index i");
spectra.YLabel("σᵢ / σ₁");
spectra.ShowLegend(Alignment.UpperRight);
Console.WriteLine();
Console.WriteLine(ranks);
Console.WriteLine($"spectra: {SamplePlots.Save(spectra, plots, "singular-values")} (and .svg)");
return 0;


// MX formats scale blocks of 32, NVFP4 blocks of 16, NF4 blocks of 64 (their fixed granularity); others per channel.
static int FixedBlock(NumberFormat format, int columns) => format.Name switch
{
    var n when n.StartsWith("mx", StringComparison.Ordinal) => 32,
    "nvfp4" => 16,
    "nf4" => 64,
    _ => columns,
};

static string Slug(string name) => new(name.ToLowerInvariant().Select(c => char.IsLetterOrDigit(c) ? c : '-').ToArray());

static void Histogram(Plot plot, float[] values, int bins)
{
    double min = values.Min(), max = values.Max(), width = (max - min) / bins;
    double[] counts = new double[bins];
    foreach (float v in values)
    {
        counts[Math.Min(bins - 1, (int)((v - min) / width))]++;
    }

    var bars = plot.Add.Bars(Enumerable.Range(0, bins).Select(i => min + (i + 0.5) * width).ToArray(), counts);
    foreach (var bar in bars.Bars)
    {
        bar.Size = width;
        bar.LineWidth = 0;
        bar.FillColor = Colors.SteelBlue.WithAlpha(0.6);
    }

    bars.LegendText = $"weights ({values.Length:N0})";
}
