// Licensed under the MIT License. See LICENSE in the repository root.
// Part of the Compression library for .NET.

using Compression.Tool;

// The first Ctrl+C asks the running command to stop (exit code 130) instead of killing the process: outputs are written
// through temporary files and renamed, and the library restores models it had started to change. A second Ctrl+C
// ends the process at once.
using var cancellation = new CancellationTokenSource();
Console.CancelKeyPress += (_, e) =>
{
    e.Cancel = !cancellation.IsCancellationRequested;
    cancellation.Cancel();
};

return CompressApp.Run(args, Console.Out, Console.Error, cancellation.Token);
