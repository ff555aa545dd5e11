// The README's quick start, compiled against the packages in nuget/out (see .ci/check-consumer.sh). The lines between
// the markers are the README's code block, character for character; the script checks that they still are.
// Usage: dotnet run -- <shared data folder> <output folder>

using Compression;
using Compression.Quantization;
using Compression.Text;
using Compression.TorchSharp;
using Compression.TorchSharp.Evaluation;
using Compression.TorchSharp.Models;

string data = args.Length > 0 ? args[0] : "../shared/data";
string output = args.Length > 1 ? args[1] : "out/tinystories-w4a16";
// README quick start begin
using CausalLanguageModel model = HuggingFaceModels.Load($"{data}/tinystories-656k");
var tokenizer = BpeTokenizer.FromHuggingFaceJson($"{data}/tinystories-656k/tokenizer.json");
string text = File.ReadAllText($"{data}/tinystories/val-sample.txt");
int[] test = tokenizer.Encode(text[..20_000]);                       // the evaluation protocol of data/README.md
int[][] calibration = [.. tokenizer.Encode(text[20_000..80_000]).Chunk(256).Take(32)];

double fp32 = LanguageModelEvaluator.EvaluateWithBos(model, test[..2040], window: 256, bos: 1).Perplexity;
var options = QuantizerOptions.W4A16 with { Method = QuantizationMethod.Gptq };    // INT4, groups of 128, GPTQ
QuantizationReport report = Quantizer.Apply(model, options, calibration);
double int4 = LanguageModelEvaluator.EvaluateWithBos(model, test[..2040], window: 256, bos: 1).Perplexity;
Console.WriteLine($"perplexity {fp32:F3} → {int4:F3}; the model is {report.CompressionRatio:F2}× smaller than in BF16");

Quantizer.Pack(model, report);                        // packed INT4 layers: the memory really shrinks
CompressedModels.Save(model, report, output);         // compressed-tensors: the layout vLLM serves
// README quick start end

// The consumer's own checks: the published FP32 figure (../shared/data/README.md, 8 windows) and a sane INT4 result.
if (Math.Abs(fp32 - 29.250) > 0.01 || !(int4 > fp32 && int4 < fp32 * 1.15) || !File.Exists(Path.Combine(output, "config.json")))
{
    Console.Error.WriteLine($"FAIL: perplexity {fp32:F3} (expected 29.250) → {int4:F3}, or no checkpoint in {output}");
    return 1;
}

Console.WriteLine($"ok: FP32 matches the reference 29.250; INT4 GPTQ within 15%; checkpoint in {output}");
return 0;
