#!/usr/bin/env bash
# Installs the freshly packed compress tool from nuget/out into a temporary --tool-path (a clean NuGet cache, only
# nuget/out as the source, so nothing stale or remote is picked up) and runs it on the real TinyStories-656K
# checkpoint: --help, inspect, and eval (which loads libtorch: on Debian 12 that only works because the linux-x64
# package carries the patched libLibTorchSharp.so, see docs/torchsharp-native.md). Run after `dotnet pack`.
set -euo pipefail
cd "$(dirname "$0")/.."
root="$(pwd)"
data="$root/../shared/data"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

shopt -s nullglob
pointer=("$root"/nuget/out/Compression.Tool.[0-9]*.nupkg)
if [ ${#pointer[@]} -ne 1 ]; then
  echo "check-tool: expected one Compression.Tool.<version>.nupkg in nuget/out, found ${#pointer[@]}" >&2
  exit 1
fi
version="$(basename "${pointer[0]}" .nupkg)"
version="${version#Compression.Tool.}"

cat > "$work/nuget.config" <<CONFIG
<?xml version="1.0" encoding="utf-8"?>
<configuration>
  <packageSources>
    <clear />
    <add key="local" value="$root/nuget/out" />
  </packageSources>
</configuration>
CONFIG

echo "== install Compression.Tool $version into a temporary tool path =="
start=$(date +%s)
NUGET_PACKAGES="$work/packages" dotnet tool install Compression.Tool --version "$version" \
  --tool-path "$work/tools" --configfile "$work/nuget.config"
echo "installed in $(( $(date +%s) - start )) s; $(du -sh "$work/tools" | cut -f1) on disk"
compress="$work/tools/compress"

echo "== compress --help =="
"$compress" --help

echo "== compress inspect =="
"$compress" inspect "$data/tinystories-656k" > "$work/inspect.txt"
head -8 "$work/inspect.txt"

echo "== compress eval (loads libtorch from the installed package) =="
"$compress" eval "$data/tinystories-656k" --data "$data/tinystories/val-sample.txt" --max-tokens 1020 --json > "$work/eval.json"
cat "$work/eval.json"
grep -q '"perplexity"' "$work/eval.json"

echo "== a usage error exits 2 =="
set +e
"$compress" quantize "$data/tinystories-656k" --scheme no-such-scheme --out "$work/never" 2> "$work/error.txt"
code=$?
set -e
cat "$work/error.txt"
if [ "$code" -ne 2 ]; then
  echo "check-tool: expected exit code 2, got $code" >&2
  exit 1
fi

echo "check-tool: ok"
