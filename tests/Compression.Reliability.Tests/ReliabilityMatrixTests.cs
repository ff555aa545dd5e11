// Licensed under the MIT License. See LICENSE in the repository root.
// Part of the Compression library for .NET.

using System.Reflection;
using System.Text.RegularExpressions;
using Compression.Distillation;
using Compression.LowRank;
using Compression.Pruning;
using Compression.Quantization;

namespace Compression.Reliability.Tests;

/// <summary>
/// Keeps docs/reliability.md's bad-input matrix honest: every row cites a test that exists (a [Fact], [Theory] or
/// [Property] method of that name in a class of that name, in the test project of the row's package), every table has
/// rows, the count line matches the rows, and every public compressor of the TorchSharp-free packages has a row.
/// </summary>
public sealed partial class ReliabilityMatrixTests
{
    private static readonly string RepositoryRoot = FindRepositoryRoot();

    private static string Document => File.ReadAllText(Path.Combine(RepositoryRoot, "docs", "reliability.md"));

    [Fact]
    public void Matrix_EveryRowCitesAnExistingTest()
    {
        IReadOnlyList<MatrixTable> tables = MatrixTable.Parse(Document);
        Assert.NotEmpty(tables);
        IReadOnlyList<string> problems = MatrixTable.Check(tables, RepositoryRoot);
        Assert.True(problems.Count == 0, string.Join(Environment.NewLine, problems));
    }

    [Fact]
    public void Matrix_CoversEveryPackage_AndTheCountLineMatchesTheRows()
    {
        IReadOnlyList<MatrixTable> tables = MatrixTable.Parse(Document);
        Assert.Equal(["Core", "Quantization", "Pruning", "LowRank", "Distillation", "Gpu", "TorchSharp"], tables.Select(t => t.Package));
        Assert.All(tables, t => Assert.NotEmpty(t.Rows));
        Match count = CountLine().Match(Document);
        Assert.True(count.Success, "docs/reliability.md has no line 'N rows; M bad inputs tried'.");
        Assert.Equal(tables.Sum(t => t.Rows.Count), int.Parse(count.Groups["rows"].Value, System.Globalization.CultureInfo.InvariantCulture));
        Assert.True(int.Parse(count.Groups["tried"].Value, System.Globalization.CultureInfo.InvariantCulture) >= tables.Sum(t => t.Rows.Count));
    }

    [Fact]
    public void Matrix_NamesEveryPublicCompressor()
    {
        // A new ICompressor without bad-input coverage fails here. (Gpu and TorchSharp hold no ICompressor of their own;
        // the Gpu quantizers live in Compression.Quantization and are reflected over with it.)
        Assembly[] assemblies =
        [
            typeof(ICompressor).Assembly, typeof(RoundToNearestQuantizer).Assembly, typeof(MagnitudePruner).Assembly,
            typeof(LowRankCompressor).Assembly, typeof(ReconstructingCompressor).Assembly,
        ];
        string[] compressors = assemblies.SelectMany(a => a.GetExportedTypes())
            .Where(t => t is { IsClass: true, IsAbstract: false } && typeof(ICompressor).IsAssignableFrom(t))
            .Select(t => t.Name).Order(StringComparer.Ordinal).ToArray();
        Assert.True(compressors.Length >= 14, $"only {compressors.Length} compressors found: {string.Join(", ", compressors)}");
        string[] entryPoints = MatrixTable.Parse(Document).SelectMany(t => t.Rows).Select(r => r.EntryPoint).ToArray();
        string[] missing = compressors.Where(c => !entryPoints.Any(e => Regex.IsMatch(e, $@"\b{c}\b"))).ToArray();
        Assert.True(missing.Length == 0, $"No bad-input row for: {string.Join(", ", missing)}");
    }

    [Fact]
    public void Check_ReportsMissingTests_NonTestMethods_BadCells_AndEmptyTables()
    {
        const string markdown = """
            ## Bad-input matrix

            ### Core

            | Entry point | Bad input | Behaviour | Test |
            | --- | --- | --- | --- |
            | `A.B` | NaN | `ArgumentException` | `BadInputTests.BadInput_IsRefused_WithTheDocumentedException` |
            | `A.B` | NaN | `ArgumentException` | `BadInputTests.NoSuchTestAnywhere` |
            | `A.B` | NaN | `ArgumentException` | `NoSuchClass.BadInput_IsRefused_WithTheDocumentedException` |
            | `A.B` | NaN | `ArgumentException` | `BadInputTests.WithValue` |
            | `A.B` | NaN | `ArgumentException` | no test |

            ### Pruning

            | Entry point | Bad input | Behaviour | Test |
            | --- | --- | --- | --- |

            ## Fuzzing

            | Entry point | Bad input | Behaviour | Test |
            | --- | --- | --- | --- |
            | `A.B` | NaN | `ArgumentException` | `Nowhere.AtAll` |
            """;
        IReadOnlyList<MatrixTable> tables = MatrixTable.Parse(markdown);
        Assert.Equal(["Core", "Pruning"], tables.Select(t => t.Package));   // tables after the section are not the matrix's
        Assert.Equal(5, tables[0].Rows.Count);
        IReadOnlyList<string> problems = MatrixTable.Check(tables, RepositoryRoot);
        Assert.Equal(5, problems.Count);
        Assert.Contains(problems, p => p.Contains("BadInputTests.NoSuchTestAnywhere", StringComparison.Ordinal));
        Assert.Contains(problems, p => p.Contains("NoSuchClass.BadInput_IsRefused_WithTheDocumentedException", StringComparison.Ordinal));
        Assert.Contains(problems, p => p.Contains("BadInputTests.WithValue", StringComparison.Ordinal));   // a helper, not a test
        Assert.Contains(problems, p => p.Contains("'no test'", StringComparison.Ordinal));
        Assert.Contains(problems, p => p.Contains("Pruning", StringComparison.Ordinal) && p.Contains("no rows", StringComparison.Ordinal));
    }

    [Fact]
    public void Check_LooksInThePackagesOwnTestProject()
    {
        // The Pruning project has BadInputMatrixTests; the Core project does not, so the same cell fails under Core.
        const string row = "| `A.B` | NaN | `ArgumentException` | `BadInputMatrixTests.BadInput_IsRefused_WithTheDocumentedException` |";
        string Table(string package) => $"## Bad-input matrix\n\n### {package}\n\n| a | b | c | d |\n| --- | --- | --- | --- |\n{row}\n";
        Assert.Empty(MatrixTable.Check(MatrixTable.Parse(Table("Pruning")), RepositoryRoot));
        Assert.Single(MatrixTable.Check(MatrixTable.Parse(Table("Core")), RepositoryRoot));
    }

    private static string FindRepositoryRoot()
    {
        for (DirectoryInfo? folder = new(AppContext.BaseDirectory); folder is not null; folder = folder.Parent)
        {
            if (File.Exists(Path.Combine(folder.FullName, "Compression.sln")))
            {
                return folder.FullName;
            }
        }

        throw new DirectoryNotFoundException($"No Compression.sln above {AppContext.BaseDirectory}.");
    }

    [GeneratedRegex(@"(?<rows>\d+) rows; (?<tried>\d+) bad inputs tried")]
    private static partial Regex CountLine();
}

/// <summary>One package's table of the bad-input matrix.</summary>
internal sealed partial record MatrixTable(string Package, IReadOnlyList<MatrixRow> Rows)
{
    /// <summary>The tables under "## Bad-input matrix", one per "### Package" heading, up to the next "## " section.</summary>
    public static IReadOnlyList<MatrixTable> Parse(string markdown)
    {
        var tables = new List<MatrixTable>();
        bool inMatrix = false, pastHeader = false;
        string? package = null;
        List<MatrixRow>? rows = null;
        foreach (string raw in markdown.Split('\n'))
        {
            string line = raw.TrimEnd('\r').Trim();
            if (line.StartsWith("## ", StringComparison.Ordinal))
            {
                inMatrix = line == "## Bad-input matrix";
                package = null;
                continue;
            }

            if (!inMatrix)
            {
                continue;
            }

            if (line.StartsWith("### ", StringComparison.Ordinal))
            {
                package = line[4..].Trim();
                rows = [];
                tables.Add(new MatrixTable(package, rows));
                continue;
            }

            if (package is null || !line.StartsWith('|'))
            {
                pastHeader = false;   // a table ends at the first line that is not a row
                continue;
            }

            string[] cells = line.Trim('|').Split('|').Select(c => c.Trim()).ToArray();
            if (cells.All(c => c.Length > 0 && c.Trim('-', ':').Length == 0))
            {
                pastHeader = true;    // the separator: what follows are rows, what preceded was the header
                continue;
            }

            if (pastHeader)
            {
                rows!.Add(cells.Length == 4
                    ? new MatrixRow(cells[0], cells[1], cells[2], cells[3])
                    : new MatrixRow(cells[0], "", "", $"{cells.Length} cells"));
            }
        }

        return tables;
    }

    /// <summary>Every problem: an empty table, a test cell that is not `Class.Method`, or a method that is not a test
    /// of that class in tests/Compression.{Package}.Tests.</summary>
    public static IReadOnlyList<string> Check(IReadOnlyList<MatrixTable> tables, string repositoryRoot)
    {
        var problems = new List<string>();
        foreach (MatrixTable table in tables)
        {
            if (table.Rows.Count == 0)
            {
                problems.Add($"The {table.Package} table has no rows.");
                continue;
            }

            string project = Path.Combine(repositoryRoot, "tests", $"Compression.{table.Package}.Tests");
            string[] sources = Directory.Exists(project)
                ? Directory.EnumerateFiles(project, "*.cs", SearchOption.AllDirectories)
                    .Where(f => !f.Contains($"{Path.DirectorySeparatorChar}obj{Path.DirectorySeparatorChar}", StringComparison.Ordinal) &&
                                !f.Contains($"{Path.DirectorySeparatorChar}bin{Path.DirectorySeparatorChar}", StringComparison.Ordinal))
                    .Select(File.ReadAllText).ToArray()
                : [];
            foreach (MatrixRow row in table.Rows)
            {
                Match cell = TestCell().Match(row.Test);
                if (!cell.Success)
                {
                    problems.Add($"{table.Package}: '{row.Test}' (row '{row.EntryPoint} | {row.BadInput}') is not `Class.Method`.");
                    continue;
                }

                string type = cell.Groups["class"].Value, method = cell.Groups["method"].Value;
                // The test attribute, then (other attributes, data lines, comments: anything but another member's
                // "public") up to this method's declaration.
                var test = new Regex(
                    $@"\[(?:Fact|Theory|Property)\b(?:(?!\bpublic\b)[\s\S])*?\bpublic\s+(?:async\s+)?[\w<>\[\],.? ]+?\s+{Regex.Escape(method)}\s*\(");
                bool found = sources.Any(s => Regex.IsMatch(s, $@"\bclass\s+{Regex.Escape(type)}\b") && test.IsMatch(s));
                if (!found)
                {
                    problems.Add($"{table.Package}: no test method {type}.{method} in tests/Compression.{table.Package}.Tests (row '{row.EntryPoint} | {row.BadInput}').");
                }
            }
        }

        return problems;
    }

    [GeneratedRegex(@"^`(?<class>\w+)\.(?<method>\w+)`$")]
    private static partial Regex TestCell();
}

/// <summary>A row of the matrix: the four cells.</summary>
internal sealed record MatrixRow(string EntryPoint, string BadInput, string Behaviour, string Test);
