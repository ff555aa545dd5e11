// Checks that `dotnet pack` produced a package and a symbol package for every library under src/, and that each
// package carries its README (the NuGet readme), icon, licence and XML docs, and that its symbols carry SourceLink to
// the published repository. Run: dotnet run .ci/check-packages.cs
using System.IO.Compression;
using System.Reflection.Metadata;
using System.Text;
using System.Xml.Linq;

string root = AppContext.GetData("EntryPointFileDirectoryPath") is string scriptDirectory
    ? Path.GetFullPath(Path.Combine(scriptDirectory, ".."))
    : Directory.GetCurrentDirectory();
string output = Path.Combine(root, "nuget", "out");
string[] libraries = Directory.GetDirectories(Path.Combine(root, "src")).Select(Path.GetFileName).Order().ToArray()!;
int failures = 0;
foreach (string library in libraries)
{
    string? package = Directory.Exists(output)
        ? Directory.GetFiles(output, $"{library}.*.nupkg").FirstOrDefault(p => IsPackageOf(p, library))
        : null;
    if (package is null)
    {
        Console.Error.WriteLine($"FAIL {library}: no {library}.*.nupkg in {output}");
        failures++;
        continue;
    }

    string symbols = Path.ChangeExtension(package, ".snupkg");
    using ZipArchive zip = ZipFile.OpenRead(package);
    string[] entries = zip.Entries.Select(e => e.FullName).ToArray();
    XDocument nuspec = XDocument.Load(zip.Entries.Single(e => e.FullName.EndsWith(".nuspec", StringComparison.Ordinal)).Open());
    string? readme = nuspec.Descendants().FirstOrDefault(e => e.Name.LocalName == "readme")?.Value;
    string? license = nuspec.Descendants().FirstOrDefault(e => e.Name.LocalName == "license")?.Value;
    var problems = new List<string>();
    if (readme != "README.md" || !entries.Contains("README.md"))
    {
        problems.Add("README.md missing or not declared as the package readme");
    }

    string? icon = nuspec.Descendants().FirstOrDefault(e => e.Name.LocalName == "icon")?.Value;
    if (icon != "icon.png" || !entries.Contains("icon.png"))
    {
        problems.Add("icon.png missing or not declared as the package icon");
    }

    if (license != "MIT")
    {
        problems.Add($"licence is '{license}', not MIT");
    }

    if (!entries.Contains($"lib/net10.0/{library}.dll") || !entries.Contains($"lib/net10.0/{library}.xml"))
    {
        problems.Add("lib/net10.0 assembly or XML docs missing");
    }

    if (!File.Exists(symbols))
    {
        problems.Add($"symbol package {Path.GetFileName(symbols)} missing");
    }
    else if (SourceLinkOf(symbols, library) is not { } sourceLink || !sourceLink.Contains("https://raw.githubusercontent.com/", StringComparison.Ordinal))
    {
        problems.Add("the symbol package's PDB has no SourceLink to the repository");
    }

    Console.WriteLine(problems.Count == 0
        ? $"ok   {Path.GetFileName(package)} (+ .snupkg with SourceLink, README.md, icon, MIT, XML docs)"
        : $"FAIL {Path.GetFileName(package)}: {string.Join("; ", problems)}");
    failures += problems.Count == 0 ? 0 : 1;
}

return failures == 0 ? 0 : 1;

// "Compression.Core.0.1.0-preview.nupkg" belongs to Compression.Core, not to "Compression" or "Compression.Core.X".
static bool IsPackageOf(string path, string id)
{
    string rest = Path.GetFileName(path)[(id.Length + 1)..];
    return rest.Length > 0 && char.IsDigit(rest[0]);
}

// The SourceLink JSON that the compiler embedded in the portable PDB of the symbol package, or null.
static string? SourceLinkOf(string symbolPackage, string id)
{
    var sourceLinkKind = new Guid("CC110556-A091-4D38-9FEC-25AB9A351A6A");
    using ZipArchive zip = ZipFile.OpenRead(symbolPackage);
    ZipArchiveEntry? entry = zip.Entries.FirstOrDefault(e => e.FullName.EndsWith($"/{id}.pdb", StringComparison.Ordinal));
    if (entry is null)
    {
        return null;
    }

    using var pdb = new MemoryStream();
    using (Stream stream = entry.Open())
    {
        stream.CopyTo(pdb);
    }

    pdb.Position = 0;
    using MetadataReaderProvider provider = MetadataReaderProvider.FromPortablePdbStream(pdb);
    MetadataReader reader = provider.GetMetadataReader();
    foreach (CustomDebugInformationHandle handle in reader.CustomDebugInformation)
    {
        CustomDebugInformation information = reader.GetCustomDebugInformation(handle);
        if (reader.GetGuid(information.Kind) == sourceLinkKind)
        {
            return Encoding.UTF8.GetString(reader.GetBlobBytes(information.Value));
        }
    }

    return null;
}
