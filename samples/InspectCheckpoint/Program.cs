// Opens a real checkpoint with the safetensors reader and prints, for every tensor, its name, dtype, shape, size
// and weight statistics. Default: ../shared/data/llama-shakespeare-char/model.safetensors (beside the repository).
//
//   dotnet run --project samples/InspectCheckpoint -c Release [-- <file-or-folder>]

using System.Diagnostics;
using System.Globalization;
using System.Numerics.Tensors;
using Compression.Safetensors;
using Compression.Samples;
using Compression.Tensors;

CultureInfo.CurrentCulture = CultureInfo.InvariantCulture;
string path = args.Length > 0 ? args[0] : DefaultCheckpoint();
if (!File.Exists(path) && !Directory.Exists(path))
{
    Console.Error.WriteLine($"No checkpoint at '{path}'. Pass a .safetensors file, an index .json or a folder.");
    return 1;
}

var clock = Stopwatch.StartNew();
using SafetensorsCheckpoint checkpoint = SafetensorsCheckpoint.Open(path);
Console.WriteLine($"{Path.GetFullPath(path)}");
Console.WriteLine($"{checkpoint.Files.Count} file(s), {checkpoint.Tensors.Count} tensors, metadata: " +
                  string.Join(", ", checkpoint.Metadata.Select(m => $"{m.Key}={m.Value}")));
Console.WriteLine();
Console.WriteLine($"{"tensor",-46} {"dtype",-7} {"shape",-14} {"bytes",10} {"min",10} {"max",10} {"mean",11} {"std",10} {"absmax",9} {"zeros",7}");

long parameters = 0, bytes = 0;
foreach (SafetensorsTensorInfo info in checkpoint.Tensors)
{
    DenseTensor values = checkpoint.ReadDense(info.Name);
    ReadOnlySpan<float> v = values.Span;
    double mean = 0, m2 = 0;
    int zeros = 0;
    for (int i = 0; i < v.Length; i++)
    {
        // Welford's update: one pass, stable for the millions of small weights of a real layer.
        double delta = v[i] - mean;
        mean += delta / (i + 1);
        m2 += delta * (v[i] - mean);
        zeros += v[i] == 0 ? 1 : 0;
    }

    string shape = "[" + string.Join(", ", info.Shape) + "]";
    float min = v.IsEmpty ? 0 : TensorPrimitives.Min(v), max = v.IsEmpty ? 0 : TensorPrimitives.Max(v);
    float absMax = v.IsEmpty ? 0 : TensorPrimitives.MaxMagnitude(v);
    Console.WriteLine($"{Truncate(info.Name, 46),-46} {info.DType,-7} {shape,-14} {info.ByteLength,10} {min,10:G4} {max,10:G4} {mean,11:E3} " +
                      $"{Math.Sqrt(v.Length > 0 ? m2 / v.Length : 0),10:G4} {Math.Abs(absMax),9:G4} {(v.Length > 0 ? 100.0 * zeros / v.Length : 0),6:F2}%");
    parameters += info.ElementCount;
    bytes += info.ByteLength;
}

Console.WriteLine();
Console.WriteLine($"{parameters:N0} parameters, {bytes / 1048576.0:F2} MiB of tensor data, read in {clock.Elapsed.TotalMilliseconds:F0} ms.");
return 0;

// The shared data folder beside the repository (samples/Shared/DataFolder.cs).
static string DefaultCheckpoint() => Path.Combine(DataFolder.Root, "llama-shakespeare-char", "model.safetensors");

static string Truncate(string s, int width) => s.Length <= width ? s : "…" + s[^(width - 1)..];
