// ScottPlot output shared by the samples: every figure is written as PNG (for the README) and SVG (for print).

using ScottPlot;

namespace Compression.Samples;

/// <summary>Saving and small conveniences for ScottPlot figures.</summary>
internal static class SamplePlots
{
    /// <summary>
    /// The folder a sample writes its plots to: the value after <c>--plots</c> in <paramref name="args"/>, else
    /// <c>out/plots</c> under the working directory (ignored by git). Created if needed.
    /// </summary>
    public static string Folder(string[] args)
    {
        int i = Array.IndexOf(args, "--plots");
        string folder = i >= 0 && i + 1 < args.Length ? args[i + 1] : Path.Combine("out", "plots");
        Directory.CreateDirectory(folder);
        return Path.GetFullPath(folder);
    }

    /// <summary>Writes <paramref name="plot"/> as <c>name.png</c> and <c>name.svg</c>; returns the PNG's path.</summary>
    public static string Save(Plot plot, string folder, string name, int width = 900, int height = 560)
    {
        string png = Path.Combine(folder, name + ".png");
        plot.SavePng(png, width, height);
        plot.SaveSvg(Path.Combine(folder, name + ".svg"), width, height);
        return png;
    }

    /// <summary>Adds a line with markers for (x, y) pairs, labelled for the legend.</summary>
    public static void Line(Plot plot, IReadOnlyList<double> xs, IReadOnlyList<double> ys, string label, bool markers = false)
    {
        var scatter = plot.Add.Scatter(xs.ToArray(), ys.ToArray());
        scatter.LegendText = label;
        scatter.MarkerSize = markers ? 6 : 0;
        scatter.LineWidth = 1.5f;
    }
}
