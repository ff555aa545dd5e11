#:project ../src/Compression.TorchSharp/Compression.TorchSharp.csproj
#:package TorchSharp-cpu
// A .NET 10 file-based app: `dotnet run samples/quantize.cs` from the repository root. Loads TinyStories-656K, quantizes
// its linear layers to INT4 with GPTQ, scores it with the protocol of ../shared/data/README.md and saves a
// compressed-tensors checkpoint to out/tinystories-w4a16.
using Compression;
using Compression.Text;
using Compression.TorchSharp;
using Compression.TorchSharp.Evaluation;
using Compression.TorchSharp.Models;

string data = args.Length > 0 ? args[0] : "../shared/data";
if (!File.Exists($"{data}/tinystories/val-sample.txt")) { Console.Error.WriteLine($"No shared data at '{Path.GetFullPath(data)}': run from the repository root with ../shared/data beside it, or pass its path."); return 2; }
using CausalLanguageModel model = HuggingFaceModels.Load($"{data}/tinystories-656k");
var tokenizer = BpeTokenizer.FromHuggingFaceJson($"{data}/tinystories-656k/tokenizer.json");
string text = File.ReadAllText($"{data}/tinystories/val-sample.txt");   // scored: the first 20,000 characters; calibration: what follows
int[] scored = tokenizer.Encode(text[..20_000])[..(8 * 255)], calibration = tokenizer.Encode(text[20_000..100_000]);
double Perplexity() => LanguageModelEvaluator.EvaluateWithBos(model, scored, window: 256, bos: 1).Perplexity;
double before = Perplexity();
QuantizationReport report = Quantizer.Apply(model, QuantizerOptions.W4A16 with { Method = QuantizationMethod.Gptq },
    calibration.Chunk(255).Take(64).Select(c => (int[])[1, .. c]).ToArray());
Console.WriteLine($"perplexity {before:F3} → {Perplexity():F3}; {report.CompressionRatio:F2}× smaller than the model in BF16");
Quantizer.Pack(model, report);
CompressedModels.Save(model, "out/tinystories-w4a16");
return 0;
