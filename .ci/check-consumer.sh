#!/usr/bin/env bash
# Proves that a separate project can consume the packages `dotnet pack` just wrote to nuget/out: restores
# tests/Compression.PackageConsumer (none of the repository's build settings apply to it) with Compression.* taken
# only from nuget/out, builds it (the Debian 12 libtorch fix must come from the Compression.TorchSharp package) and
# runs the README's quick start, which it carries verbatim.
set -euo pipefail
cd "$(dirname "$0")/.."
consumer=tests/Compression.PackageConsumer

# The README's quick start block must be the consumer's code, line for line.
python3 - <<'PY'
import re, sys
readme = open("README.md", encoding="utf-8").read()
program = open("tests/Compression.PackageConsumer/Program.cs", encoding="utf-8").read()
block = program.split("// README quick start begin\n")[1].split("// README quick start end")[0].strip("\n")
if block not in readme:
    sys.exit("FAIL: README.md does not carry the quick start of tests/Compression.PackageConsumer/Program.cs verbatim")
print("ok   README quick start = tests/Compression.PackageConsumer/Program.cs")
PY

# NuGet never re-extracts a version it already holds: drop this repository's own preview packages from the cache so
# the restore takes the ones just packed (nothing else in the cache is touched).
cache=$(dotnet nuget locals global-packages --list | sed 's/^global-packages: //')
version=$(sed -n 's:.*<VersionPrefix>\(.*\)</VersionPrefix>.*:\1:p' Directory.Build.props)-$(sed -n 's:.*<VersionSuffix>\(.*\)</VersionSuffix>.*:\1:p' Directory.Build.props)
for package in nuget/out/*.nupkg; do
  id=$(basename "$package" ".$version.nupkg")
  rm -rf "$cache/${id,,}/$version"
done

rm -rf "$consumer/bin" "$consumer/obj" "$consumer/out"
dotnet run --project "$consumer" -c Release -p:CompressionVersion="$version" -- "$(pwd)/../shared/data" "$consumer/out/tinystories-w4a16"
