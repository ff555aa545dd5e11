using Compression.Calibration;
using Compression.Tensors;
using Compression.Testing;

namespace Compression.LowRank.Tests;

/// <summary>
/// The LowRank rows of the bad-input matrix (docs/reliability.md) that no other test covers: each bad input gives the
/// documented exception type, naming the parameter, with the numbers in the message; valid edge cases (all-zero
/// matrices, a singular Hessian under eigen whitening) give finite factors.
/// </summary>
public class BadInputTests
{
    private static readonly DenseTensor Good = RandomData.GaussianMatrix(6, 16, seed: 1);

    /// <summary>(what is wrong, the call, the exception type expected exactly, its ParamName or null, a fragment of its message).</summary>
    public static TheoryData<string, Action, Type, string?, string> Cases => new()
    {
        { "NaN weight", () => Fixed(2).Factorize(WithValue(float.NaN)), typeof(ArgumentException), "weight", "NaN at (2, 5)" },
        { "-Inf weight", () => Fixed(2).Factorize(WithValue(float.NegativeInfinity)), typeof(ArgumentException), "weight", "-Infinity at (2, 5)" },
        { "rank-3 weight", () => Fixed(2).Factorize(new DenseTensor(2, 3, 16)), typeof(ArgumentException), "weight", "[2, 3, 16]" },
        { "matrix with no rows", () => Fixed(2).Factorize(new DenseTensor(0, 16)), typeof(ArgumentException), "weight", "0×16" },
        { "null weight", () => Fixed(2).Factorize(null!), typeof(ArgumentNullException), "weight", "weight" },
        { "fixed rank above min(rows, columns)", () => Fixed(7).Factorize(Good), typeof(ArgumentException), "weight", "min(rows, columns) = 6" },
        { "whitening without a Hessian", () => Whitened(ActivationWhitening.Cholesky).Factorize(Good), typeof(ArgumentException), "context", "input Hessian" },
        { "whitening with a Hessian of the wrong size", () => Whitened(ActivationWhitening.Eigen).Factorize(Good, Hessian(15)), typeof(ArgumentException), "context", "16 columns" },
        { "whitening with a Hessian without samples", () => Whitened(ActivationWhitening.Cholesky).Factorize(Good, new CompressionContext { InputHessian = new HessianAccumulator(16) }), typeof(ArgumentException), "context", "no samples" },
        { "dampening NaN", () => _ = new LowRankOptions { Dampening = double.NaN }, typeof(ArgumentOutOfRangeException), "Dampening", "NaN" },
        { "undefined solver", () => _ = new LowRankOptions { Solver = (SvdSolver)9 }, typeof(ArgumentOutOfRangeException), "Solver", "9" },
        { "undefined whitening", () => _ = new LowRankOptions { Whitening = (ActivationWhitening)9 }, typeof(ArgumentOutOfRangeException), "Whitening", "9" },
        { "null rank rule", () => _ = new LowRankOptions { Rank = null! }, typeof(ArgumentNullException), "Rank", "Rank" },
        { "parameter ratio NaN", () => RankRule.ParameterRatio(double.NaN), typeof(ArgumentOutOfRangeException), "ratio", "NaN" },
        { "EoRA rank 0", () => Eora.Compensate(Fixed(2), 0), typeof(ArgumentOutOfRangeException), "rank", "0" },
        { "exact SVD of a NaN matrix", () => SingularValueDecomposition.Exact(WithValue(float.NaN)), typeof(ArgumentException), "matrix", "NaN" },
        { "randomized SVD rank above min(rows, columns)", () => SingularValueDecomposition.Randomized(Good, 7), typeof(ArgumentOutOfRangeException), "rank", "7" },
    };

    [Theory]
    [MemberData(nameof(Cases))]
    public void BadInput_IsRefused_WithTheDocumentedException(string why, Action call, Type expected, string? parameter, string detail) =>
        BadInput.AssertRefused(why, call, expected, parameter, detail);

    public static TheoryData<string> Rules => new(["fixed", "energy", "ratio"]);

    [Theory]
    [MemberData(nameof(Rules))]
    public void AllZeroMatrices_GiveFiniteFactors(string rule)
    {
        // An all-zero matrix has no energy to keep (0/0 for the energy rule): the factors must be finite and reproduce
        // zeros. (A matrix with no rows is refused: see Cases.)
        RankRule rank = rule switch { "fixed" => RankRule.Fixed(2), "energy" => RankRule.Energy(0.9), _ => RankRule.ParameterRatio(0.5) };
        LowRankCompressor compressor = new LowRankOptions { Rank = rank }.CreateCompressor();
        DenseTensor back = compressor.Factorize(new DenseTensor(6, 16)).Decompress();
        Assert.All(back.Span.ToArray(), v => Assert.Equal(0f, v));
    }

    [Fact]
    public void SingularHessian_UnderEigenWhitening_GivesFiniteFactors()
    {
        // Dead input features make H singular: eigen whitening floors the spectrum instead of failing.
        var hessian = new HessianAccumulator(16);
        DenseTensor x = RandomData.GaussianMatrix(64, 16, seed: 2);
        for (int r = 0; r < x.Rows; r++)
        {
            x[r, 3] = 0;
            x[r, 11] = 0;
        }

        hessian.Add(x);
        DenseTensor back = Whitened(ActivationWhitening.Eigen).Factorize(Good, new CompressionContext { InputHessian = hessian }).Decompress();
        Assert.All(back.Span.ToArray(), v => Assert.True(float.IsFinite(v)));
    }

    private static LowRankCompressor Fixed(int rank) => new LowRankOptions { Rank = RankRule.Fixed(rank) }.CreateCompressor();

    private static LowRankCompressor Whitened(ActivationWhitening whitening) =>
        new LowRankOptions { Rank = RankRule.Fixed(2), Whitening = whitening }.CreateCompressor();

    private static CompressionContext Hessian(int columns) => new() { InputHessian = RandomData.CorrelatedHessian(columns, 64, seed: 3) };

    private static DenseTensor WithValue(float value) => BadInput.WithValueAt25(Good, value);
}
