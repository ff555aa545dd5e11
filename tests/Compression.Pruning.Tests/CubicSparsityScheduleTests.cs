using FsCheck;
using FsCheck.Xunit;

namespace Compression.Pruning.Tests;

/// <summary>The Zhu–Gupta schedule against its formula and its end points.</summary>
public class CubicSparsityScheduleTests
{
    [Fact]
    public void FollowsTheCubic_AndClampsOutsideTheRange()
    {
        var schedule = new CubicSparsitySchedule { InitialSparsity = 0.1, FinalSparsity = 0.9, StartStep = 100, EndStep = 500, Frequency = 50 };
        Assert.Equal(0.1, schedule.SparsityAt(0));
        Assert.Equal(0.1, schedule.SparsityAt(100));
        // t − t₀ = 200 of nΔt = 400: 0.9 + (0.1 − 0.9)·(1 − 1/2)³ = 0.8.
        Assert.Equal(0.8, schedule.SparsityAt(300), 15);
        Assert.Equal(0.9 - 0.8 * Math.Pow(1 - 50.0 / 400, 3), schedule.SparsityAt(150), 15);
        Assert.Equal(0.9, schedule.SparsityAt(500));
        Assert.Equal(0.9, schedule.SparsityAt(10_000));
    }

    [Fact]
    public void PrunesEveryFrequencySteps_AndAtTheEnd()
    {
        var schedule = new CubicSparsitySchedule { FinalSparsity = 0.5, StartStep = 10, EndStep = 45, Frequency = 10 };
        long[] steps = Enumerable.Range(0, 60).Where(t => schedule.ShouldPrune(t)).Select(t => (long)t).ToArray();
        Assert.Equal([10L, 20, 30, 40, 45], steps);
    }

    [Fact]
    public void EqualStartAndEnd_IsOneShot()
    {
        var schedule = new CubicSparsitySchedule { InitialSparsity = 0.2, FinalSparsity = 0.7, StartStep = 5, EndStep = 5 };
        Assert.Equal(0.2, schedule.SparsityAt(4));
        Assert.Equal(0.7, schedule.SparsityAt(5));
        Assert.True(schedule.ShouldPrune(5));
        Assert.False(schedule.ShouldPrune(6));
    }

    [Property(MaxTest = 300)]
    public bool IsMonotone_AndStaysBetweenTheEnds(PositiveInt start, PositiveInt span, int initial, int final, int step)
    {
        double si = PruningReference.Sparsity(initial), sf = PruningReference.Sparsity(final);
        (si, sf) = (Math.Min(si, sf), Math.Max(si, sf));
        var schedule = new CubicSparsitySchedule { InitialSparsity = si, FinalSparsity = sf, StartStep = start.Get % 1000, EndStep = start.Get % 1000 + span.Get % 5000 };
        long t = Math.Abs((long)step) % 8000;
        double here = schedule.SparsityAt(t), next = schedule.SparsityAt(t + 1);
        return here >= si && here <= sf && next >= here;
    }

    [Fact]
    public void RejectsBadValues()
    {
        Assert.Throws<ArgumentOutOfRangeException>("FinalSparsity", () => new CubicSparsitySchedule { FinalSparsity = 1, EndStep = 1 });
        Assert.Throws<ArgumentOutOfRangeException>("InitialSparsity", () => new CubicSparsitySchedule { InitialSparsity = double.NaN, FinalSparsity = 0.5, EndStep = 1 });
        Assert.Throws<ArgumentOutOfRangeException>("Frequency", () => new CubicSparsitySchedule { FinalSparsity = 0.5, EndStep = 1, Frequency = 0 });
        Assert.Throws<ArgumentOutOfRangeException>("StartStep", () => new CubicSparsitySchedule { FinalSparsity = 0.5, EndStep = 1, StartStep = -1 });
        var backwards = new CubicSparsitySchedule { FinalSparsity = 0.5, StartStep = 10, EndStep = 5 };
        Assert.Throws<ArgumentException>("EndStep", () => backwards.SparsityAt(7));
        Assert.Throws<ArgumentException>("EndStep", () => backwards.ShouldPrune(7));
    }
}
