// Licensed under the MIT License. See LICENSE in the repository root.
// Part of the Compression library for .NET.

using System.CommandLine;
using Compression.Tool.Commands;
using Compression.Tool.Infrastructure;

namespace Compression.Tool.Cli;

/// <summary>
/// The command-line grammar of <c>compress</c> (System.CommandLine): commands, arguments, options and their help
/// texts, and for each command the binding of a parse result to that command's settings and implementation. Nothing
/// here does any work; the commands live in <c>Commands/</c>.
/// </summary>
internal sealed class CommandLineDefinition
{
    private readonly Dictionary<Command, Func<ParseResult, ToolContext, ICommandResult>> _handlers = [];

    /// <summary>Builds the grammar.</summary>
    public CommandLineDefinition()
    {
        Root = new RootCommand("compress: inspect, quantize, prune, factorise and evaluate language-model checkpoints (safetensors, Hugging Face layout) with the Compression library.");
        Root.Add(Json);
        Root.Add(Verbose);
        Root.Add(Inspect());
        Root.Add(Quantize());
        Root.Add(Prune());
        Root.Add(LowRank());
        Root.Add(Eval());
    }

    /// <summary>The root command.</summary>
    public RootCommand Root { get; }

    /// <summary><c>--json</c>: one JSON object on stdout.</summary>
    public Option<bool> Json { get; } = new("--json")
    {
        Description = "Print the result as one JSON object on stdout (nothing else goes to stdout).",
        Recursive = true,
    };

    /// <summary><c>--verbose</c>: stack traces on errors.</summary>
    public Option<bool> Verbose { get; } = new("--verbose")
    {
        Description = "Print the full exception with its stack trace on errors.",
        Recursive = true,
    };

    /// <summary>The implementation bound to <paramref name="command"/>, or null for the root (no command given).</summary>
    public Func<ParseResult, ToolContext, ICommandResult>? HandlerOf(Command command) => _handlers.GetValueOrDefault(command);

    private Command Inspect()
    {
        var checkpoint = CheckpointArgument();
        var command = new Command("inspect",
            "List the tensors of a safetensors checkpoint (dtype, shape, bytes), the parameter count, the architecture (config.json) and the format: plain float or compressed-tensors (quantization_config and tensor suffixes). Never loads libtorch.")
        {
            checkpoint,
        };
        _handlers[command] = (p, c) => InspectCommand.Run(new InspectCommand.Settings(p.GetRequiredValue(checkpoint)), c);
        return command;
    }

    private Command Quantize()
    {
        var checkpoint = CheckpointArgument();
        var scheme = new Option<string>("--scheme", "-s")
        {
            Description = "The quantization scheme:\n" + string.Join("\n", QuantizationScheme.All.Select(s => $"  {s.Name}: {s.Description}")),
            Required = true,
        };
        var output = OutputOption();
        var calibration = CalibrationOptions();
        var command = new Command("quantize",
            "Quantize the linear layers (all but lm_head) and write a compressed-tensors checkpoint (model.safetensors + config.json with quantization_config, as llm-compressor writes and vLLM reads) plus the input's tokenizer files. Weight-only but w8a8-fp8, whose checkpoint declares dynamic per-token FP8 activations (compressed-tensors FP8_DYNAMIC) that vLLM quantizes at run time and eval simulates. Round-to-nearest schemes stream the checkpoint without libtorch; GPTQ schemes load the model and need --calib.")
        {
            checkpoint, scheme, output,
        };
        calibration.AddTo(command);
        _handlers[command] = (p, c) => QuantizeCommand.Run(new QuantizeCommand.Settings(p.GetRequiredValue(checkpoint), p.GetRequiredValue(scheme),
            p.GetRequiredValue(output), p.GetValue(calibration.File), p.GetValue(calibration.Samples), p.GetValue(calibration.SequenceLength),
            p.GetValue(calibration.Tokenizer)), c);
        return command;
    }

    private Command Prune()
    {
        var checkpoint = CheckpointArgument();
        var method = new Option<string>("--method", "-m")
        {
            Description = "magnitude (|w|, no data), wanda (|w|·‖x‖, needs --calib) or sparsegpt (OBS updates, needs --calib).",
            Required = true,
        };
        var sparsity = new Option<string>("--sparsity")
        {
            Description = "A ratio of weights to zero in each layer (0.5), or N:M semi-structured (2:4: two of every four kept).",
            Required = true,
        };
        var output = OutputOption();
        var calibration = CalibrationOptions();
        var command = new Command("prune",
            "Prune the linear layers (all but lm_head) and save the model densely: zeros are stored, so the file keeps its size (safetensors has no sparse layout); the sparsity is what a sparse runtime can exploit.")
        {
            checkpoint, method, sparsity, output,
        };
        calibration.AddTo(command);
        _handlers[command] = (p, c) => PruneCommand.Run(new PruneCommand.Settings(p.GetRequiredValue(checkpoint), p.GetRequiredValue(method),
            p.GetRequiredValue(sparsity), p.GetRequiredValue(output), p.GetValue(calibration.File), p.GetValue(calibration.Samples),
            p.GetValue(calibration.SequenceLength), p.GetValue(calibration.Tokenizer)), c);
        return command;
    }

    private Command LowRank()
    {
        var checkpoint = CheckpointArgument();
        var rank = new Option<int?>("--rank", "-r") { Description = "Keep this many singular values in every layer." };
        var energy = new Option<double?>("--energy", "-e") { Description = "Keep the fewest singular values holding this fraction of each layer's energy (sum of σ²), in (0, 1]." };
        var output = OutputOption();
        var calibration = CalibrationOptions();
        var command = new Command("lowrank",
            "Truncated SVD of the linear layers (all but lm_head); with --calib activation-aware (SVD-LLM Cholesky whitening). The output holds the DENSE RECONSTRUCTION A·B under the original names and dtypes, so any Hugging Face reader loads it but it is as large as the input; the factors' parameter count is reported, not stored.")
        {
            checkpoint, rank, energy, output,
        };
        calibration.AddTo(command);
        _handlers[command] = (p, c) => LowRankCommand.Run(new LowRankCommand.Settings(p.GetRequiredValue(checkpoint), p.GetValue(rank),
            p.GetValue(energy), p.GetRequiredValue(output), p.GetValue(calibration.File), p.GetValue(calibration.Samples),
            p.GetValue(calibration.SequenceLength), p.GetValue(calibration.Tokenizer)), c);
        return command;
    }

    private Command Eval()
    {
        var checkpoint = CheckpointArgument();
        var data = new Option<string>("--data", "-d") { Description = "A UTF-8 text file to score.", Required = true };
        var window = new Option<int>("--window", "-w")
        {
            Description = "Window length in tokens (BOS included for BPE tokenizers); non-overlapping windows, each scored independently.",
            DefaultValueFactory = _ => 256,
        };
        var maxTokens = new Option<int?>("--max-tokens") { Description = "Score only the first N tokens of the text." };
        var tokenizer = TokenizerOption();
        var batch = new Option<int>("--batch-size") { Description = "Windows per forward pass.", DefaultValueFactory = _ => 16 };
        var command = new Command("eval",
            "Next-token loss (nats) and perplexity on a text file. Reads plain checkpoints and compressed-tensors checkpoints written by 'compress quantize'. BPE tokenizers (tokenizer.json): windows of BOS + window-1 tokens; character vocabularies (meta.json): windows of plain text.")
        {
            checkpoint, data, window, maxTokens, tokenizer, batch,
        };
        _handlers[command] = (p, c) => EvalCommand.Run(new EvalCommand.Settings(p.GetRequiredValue(checkpoint), p.GetRequiredValue(data),
            p.GetValue(window), p.GetValue(maxTokens), p.GetValue(tokenizer), p.GetValue(batch)), c);
        return command;
    }

    private static Argument<string> CheckpointArgument() => new("checkpoint")
    {
        Description = "A checkpoint folder (config.json + model.safetensors or a sharded index); inspect also takes a .safetensors file or an index.",
    };

    private static Option<string> OutputOption() => new("--out", "-o")
    {
        Description = "The output folder (created; must differ from the input). Files are written to temporary names and renamed.",
        Required = true,
    };

    private static Option<string?> TokenizerOption() => new("--tokenizer", "-t")
    {
        Description = "tokenizer.json (Hugging Face BPE) or meta.json (a 'vocab' string of characters in id order, as the shakespeare-char models use). Default: <checkpoint>/tokenizer.json.",
    };

    private static CalibrationOptionSet CalibrationOptions() => new(
        new Option<string?>("--calib", "-c") { Description = "A UTF-8 text file of calibration text (needed by GPTQ, Wanda, SparseGPT; makes lowrank activation-aware)." },
        new Option<int>("--samples", "-n") { Description = "Number of calibration sequences cut from the start of the text.", DefaultValueFactory = _ => 32 },
        new Option<int>("--seq-len") { Description = "Tokens per calibration sequence (BOS included for BPE tokenizers); at most the model's context.", DefaultValueFactory = _ => 256 },
        TokenizerOption());

    /// <summary>The calibration options shared by quantize, prune and lowrank.</summary>
    private sealed record CalibrationOptionSet(Option<string?> File, Option<int> Samples, Option<int> SequenceLength, Option<string?> Tokenizer)
    {
        public void AddTo(Command command)
        {
            command.Add(File);
            command.Add(Samples);
            command.Add(SequenceLength);
            command.Add(Tokenizer);
        }
    }
}
