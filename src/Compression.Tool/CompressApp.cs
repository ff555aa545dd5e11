// Licensed under the MIT License. See LICENSE in the repository root.
// Part of the Compression library for .NET.

using System.CommandLine;
using System.CommandLine.Help;
using System.Text.Encodings.Web;
using System.Text.Json;
using System.Text.Json.Serialization;
using Compression.Tool.Cli;
using Compression.Tool.Infrastructure;

namespace Compression.Tool;

/// <summary>
/// The <c>compress</c> application, callable in-process: parses the arguments, runs the command and maps every outcome
/// to an exit code (<see cref="ExitCodes"/>). Results go to <c>stdout</c> (text, or one JSON object with
/// <c>--json</c>); progress, warnings and errors go to <c>stderr</c>; an error is one line unless <c>--verbose</c>.
/// </summary>
/// <example>
/// <code>
/// int code = CompressApp.Run(["inspect", "model-folder", "--json"], Console.Out, Console.Error, CancellationToken.None);
/// </code>
/// </example>
public static class CompressApp
{
    private static readonly JsonSerializerOptions JsonOptions = new()
    {
        WriteIndented = true,
        PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
        DictionaryKeyPolicy = null,
        Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping,
        NumberHandling = JsonNumberHandling.AllowNamedFloatingPointLiterals,
    };

    /// <summary>Runs <c>compress</c> with <paramref name="args"/>.</summary>
    /// <param name="args">The command line, without the program name.</param>
    /// <param name="stdout">Where results go.</param>
    /// <param name="stderr">Where progress bars (only when this is the console's stderr on a terminal), warnings and
    /// errors go.</param>
    /// <param name="cancellationToken">Cancels the running command (exit code 130).</param>
    /// <returns>The exit code.</returns>
    public static int Run(string[] args, TextWriter stdout, TextWriter stderr, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(args);
        ArgumentNullException.ThrowIfNull(stdout);
        ArgumentNullException.ThrowIfNull(stderr);
        var definition = new CommandLineDefinition();
        ParseResult parse = definition.Root.Parse(args);
        bool verbose = parse.GetValue(definition.Verbose);
        bool json = parse.GetValue(definition.Json);

        if (parse.Action is HelpAction)
        {
            parse.Invoke(new InvocationConfiguration { Output = stdout, Error = stderr });
            stdout.WriteLine(ExitCodes.HelpEpilog);
            return ExitCodes.Success;
        }

        if (parse.Errors.Count > 0)
        {
            foreach (System.CommandLine.Parsing.ParseError error in parse.Errors)
            {
                stderr.WriteLine($"compress: error: {error.Message}");
            }

            stderr.WriteLine("Run 'compress --help' or 'compress <command> --help' for usage.");
            return ExitCodes.Usage;
        }

        if (parse.Action is not null && definition.HandlerOf(parse.CommandResult.Command) is null)
        {
            // --version and other built-in actions.
            return parse.Invoke(new InvocationConfiguration { Output = stdout, Error = stderr });
        }

        Func<ParseResult, ToolContext, ICommandResult>? handler = definition.HandlerOf(parse.CommandResult.Command);
        if (handler is null)
        {
            stderr.WriteLine("compress: error: no command given. Run 'compress --help' for usage.");
            return ExitCodes.Usage;
        }

        bool terminal = ReferenceEquals(stderr, Console.Error) && !Console.IsErrorRedirected;
        var context = new ToolContext(stdout, stderr, json, verbose, terminal, cancellationToken);
        try
        {
            ICommandResult result = handler(parse, context);
            if (json)
            {
                stdout.WriteLine(JsonSerializer.Serialize(result, result.GetType(), JsonOptions));
            }
            else
            {
                result.WriteText(stdout);
            }

            return ExitCodes.Success;
        }
        catch (Exception e)
        {
            (int code, string message) = Classify(e, cancellationToken);
            stderr.WriteLine(verbose ? $"compress: error: {message}{Environment.NewLine}{e}" : $"compress: error: {OneLine(message)}");
            return code;
        }
    }

    /// <summary>The exit code and message for an exception that ended a command.</summary>
    private static (int Code, string Message) Classify(Exception e, CancellationToken cancellationToken) => e switch
    {
        ToolException t => (t.ExitCode, t.Message),
        OperationCanceledException when cancellationToken.IsCancellationRequested => (ExitCodes.Cancelled, "cancelled."),
        // The library validates at its public boundary: an argument it refuses came from the command line.
        ArgumentException a => (ExitCodes.Usage, a.Message),
        FileNotFoundException or DirectoryNotFoundException or InvalidDataException or JsonException =>
            (ExitCodes.InputError, e.Message),
        _ => (ExitCodes.OperationFailed, $"{e.GetType().Name}: {e.Message}"),
    };

    private static string OneLine(string message) =>
        string.Join(' ', message.Split(['\r', '\n'], StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries));
}
