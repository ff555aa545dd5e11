// Checks that `dotnet pack` produced a package and a symbol package for every library under src/, and that each
// package carries its README (the NuGet readme), icon, licence and XML docs, and that its symbols carry SourceLink to
// the published repository. A .NET tool (package type DotnetTool: the compress
// tool) is checked in its own layout instead: a small top-level package whose tools/any/any/DotnetToolSettings.xml
// lists one package per runtime identifier, and each of those with tools/net10.0/<rid>/ holding the tool's assembly,
// XML docs, settings and that platform's libtorch, under NuGet.org's 250 MB limit; the linux-x64 one must carry the
// libLibTorchSharp.so patched for libstdc++ older than GCC 13 (docs/torchsharp-native.md).
// Run: dotnet run .ci/check-packages.cs
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

    bool isTool = nuspec.Descendants().Any(e => e.Name.LocalName == "packageType" && (string?)e.Attribute("name") == "DotnetTool");
    string details;
    if (isTool)
    {
        details = CheckTool(zip, entries, library, package, problems);
    }
    else
    {
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

        details = "(+ .snupkg with SourceLink, README.md, icon, MIT, XML docs)";
    }

    Console.WriteLine(problems.Count == 0
        ? $"ok   {Path.GetFileName(package)} {details}"
        : $"FAIL {Path.GetFileName(package)}: {string.Join("; ", problems)}");
    failures += problems.Count == 0 ? 0 : 1;
}

return failures == 0 ? 0 : 1;

// A tool's top-level package and its per-RID packages; returns the summary printed after "ok".
static string CheckTool(ZipArchive zip, string[] entries, string id, string package, List<string> problems)
{
    const long NuGetOrgLimit = 250L * 1024 * 1024;
    ZipArchiveEntry? settings = zip.GetEntry("tools/any/any/DotnetToolSettings.xml");
    if (settings is null)
    {
        problems.Add("tools/any/any/DotnetToolSettings.xml missing (not a RID-specific tool package)");
        return "";
    }

    string[] rids = XDocument.Load(settings.Open()).Descendants().Where(e => e.Name.LocalName == "RuntimeIdentifierPackage")
        .Select(e => (string?)e.Attribute("RuntimeIdentifier") ?? "").ToArray();
    if (rids.Length == 0)
    {
        problems.Add("DotnetToolSettings.xml lists no RuntimeIdentifierPackage");
    }

    string version = Path.GetFileNameWithoutExtension(package)[(id.Length + 1)..];
    var sizes = new List<string> { $"{new FileInfo(package).Length / 1024.0:F0} KB" };
    foreach (string rid in rids)
    {
        string ridPackage = Path.Combine(Path.GetDirectoryName(package)!, $"{id}.{rid}.{version}.nupkg");
        if (!File.Exists(ridPackage))
        {
            problems.Add($"{Path.GetFileName(ridPackage)} missing");
            continue;
        }

        long length = new FileInfo(ridPackage).Length;
        sizes.Add($"{rid} {length / (1024.0 * 1024):F1} MB");
        if (length >= NuGetOrgLimit)
        {
            problems.Add($"{Path.GetFileName(ridPackage)} is {length / (1024.0 * 1024):F1} MB, over NuGet.org's 250 MB");
        }

        using ZipArchive ridZip = ZipFile.OpenRead(ridPackage);
        var ridEntries = ridZip.Entries.ToDictionary(e => e.FullName, StringComparer.Ordinal);
        string root = $"tools/net10.0/{rid}/";
        foreach (string file in new[] { $"{id}.dll", $"{id}.xml", "DotnetToolSettings.xml" })
        {
            if (!ridEntries.ContainsKey(root + file))
            {
                problems.Add($"{rid}: {root}{file} missing");
            }
        }

        string libtorch = rid.StartsWith("win", StringComparison.Ordinal) ? "torch_cpu.dll"
            : rid.StartsWith("osx", StringComparison.Ordinal) ? "libtorch_cpu.dylib" : "libtorch_cpu.so";
        if (!ridEntries.ContainsKey(root + libtorch))
        {
            problems.Add($"{rid}: {root}{libtorch} (libtorch) missing");
        }

        if (rid.StartsWith("linux", StringComparison.Ordinal))
        {
            // The patch renames the one GCC 13 symbol the shim imports: its dynamic-symbol name (NUL-terminated in .dynstr)
            // must be gone from the packaged copy (.strtab still names it with its @GLIBCXX_3.4.32 suffix).
            if (!ridEntries.TryGetValue(root + "libLibTorchSharp.so", out ZipArchiveEntry? shim))
            {
                problems.Add($"{rid}: {root}libLibTorchSharp.so missing");
            }
            else
            {
                using var bytes = new MemoryStream();
                using (Stream stream = shim.Open())
                {
                    stream.CopyTo(bytes);
                }

                if (bytes.ToArray().AsSpan().IndexOf("_ZSt21ios_base_library_initv\0"u8) >= 0)
                {
                    problems.Add($"{rid}: libLibTorchSharp.so is not patched for libstdc++ older than GCC 13");
                }
            }
        }
    }

    return $"(tool: {string.Join(", ", sizes)}; README.md, XML docs, libtorch per RID)";
}

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
