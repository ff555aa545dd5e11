using System.Diagnostics;
using ILGPU.Runtime;

/// <summary>The timing loop every GpuBench mode uses: warm-up runs, then the median over repetitions of
/// <c>batch</c> back-to-back runs between two synchronisations, divided by the batch (launch overhead amortised).</summary>
internal static class DeviceTimer
{
    public static double Median(Accelerator accelerator, int repetitions, Action run, int warmUps = 3, int batch = 1)
    {
        for (int i = 0; i < warmUps; i++)
        {
            run();
        }

        accelerator.Synchronize();
        var times = new double[repetitions];
        for (int i = 0; i < repetitions; i++)
        {
            long start = Stopwatch.GetTimestamp();
            for (int k = 0; k < batch; k++)
            {
                run();
            }

            accelerator.Synchronize();
            times[i] = Stopwatch.GetElapsedTime(start).TotalMilliseconds / batch;
        }

        Array.Sort(times);
        return times[repetitions / 2];
    }
}
