// Converts a Hugging Face Llama checkpoint folder to a GGUF file for llama.cpp (docs/gguf.md), printing each tensor's
// GGUF name, type and shape. Default input: ../shared/data/tinystories-656k (beside the repository).
//
//   dotnet run --project samples/ExportGguf -c Release [-- <folder> <output.gguf> [F32|F16|Q8_0|Q4_0|Q4_1|Q5_0]]
//
// benchmarks/reference/gguf_check.py reads the result with llama.cpp's gguf-py and compares it to the checkpoint.

using System.Globalization;
using Compression.Quantization.Gguf;

CultureInfo.CurrentCulture = CultureInfo.InvariantCulture;
string input = args.Length > 0 ? args[0] : Path.Combine(RepositoryRoot(), "..", "shared", "data", "tinystories-656k");
string output = args.Length > 1 ? args[1] : "tinystories-656k-q8_0.gguf";
GgmlType type = GgmlType.Q8_0;
if (args.Length > 2 && !Enum.TryParse(args[2], ignoreCase: true, out type))
{
    Console.Error.WriteLine($"Unknown type '{args[2]}'; use one of {string.Join(", ", Enum.GetNames<GgmlType>())}.");
    return 1;
}

GgufExportResult result = GgufExporter.Export(input, output, GgufExportOptions.Default with { TensorType = type });
foreach (GgufTensorRecord t in result.Tensors)
{
    Console.WriteLine($"{t.Name,-28} {t.Type,-5} [{string.Join(", ", t.Shape)}]{(t.RopePermuted ? "  rope-permuted" : "")}  <- {t.Source}");
}

Console.WriteLine($"{result.Path}: {result.Tensors.Count} tensors, tokenizer '{result.TokenizerModel}', {result.FileBytes:N0} bytes, {result.Elapsed.TotalMilliseconds:F0} ms");
return 0;

static string RepositoryRoot()
{
    for (DirectoryInfo? d = new(AppContext.BaseDirectory); d is not null; d = d.Parent)
    {
        if (File.Exists(Path.Combine(d.FullName, "Compression.sln")))
        {
            return d.FullName;
        }
    }

    return Directory.GetCurrentDirectory();
}
