// Every benchmark class carries its own baseline, measured in the same run (memcpy for bandwidth-bound kernels, a
// naive reference for algorithms), so each figure is a ratio on the same machine at the same moment.
//
//   dotnet run -c Release --project benchmarks/Compression.Benchmarks -- --filter '*'
//   dotnet run -c Release --project benchmarks/Compression.Benchmarks -- --filter '*BFloat16*' --job short
//   dotnet run -c Release --project benchmarks/Compression.Benchmarks -- svd-check 1024   (SVD accuracy + one timing)

using BenchmarkDotNet.Running;

if (args is ["svd-check", .. var rest])
{
    Compression.Benchmarks.SvdCheck.Run(rest);
    return;
}

BenchmarkSwitcher.FromAssembly(typeof(Compression.Benchmarks.BFloat16WideningBench).Assembly).Run(args);
