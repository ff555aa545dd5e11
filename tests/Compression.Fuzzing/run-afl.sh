#!/usr/bin/env bash
# Long fuzzing run of one target under AFL++ (see /work/notes/doc/reliability-fuzzing.md, or docs/reliability.md).
#   tests/Compression.Fuzzing/run-afl.sh <target> <duration-seconds> [output-dir]
# Publishes the harness (Release) to a temporary folder, instruments the library assemblies with SharpFuzz, runs
# afl-fuzz on corpus/<target> for the given time, then prints execs_done, corpus size, crashes and hangs. Crashing
# inputs are left in <output-dir>/default/crashes; replay one with
#   dotnet <publish>/Compression.Fuzzing.dll <target> --replay <file>
# Needs afl-fuzz (apt-get install afl++) and the sharpfuzz tool:
#   dotnet tool install SharpFuzz.CommandLine --version 2.3.0 --tool-path <dir>   (then SHARPFUZZ=<dir>/sharpfuzz, or put it on PATH)
set -euo pipefail

target=${1:?usage: run-afl.sh <target> <duration-seconds> [output-dir]}
duration=${2:?usage: run-afl.sh <target> <duration-seconds> [output-dir]}
here=$(cd "$(dirname "$0")" && pwd)
output=${3:-$(mktemp -d "${TMPDIR:-/tmp}/afl-$target-XXXX")}
log="$output.log"
sharpfuzz=${SHARPFUZZ:-$(command -v sharpfuzz || echo "$HOME/.dotnet/tools/sharpfuzz")}
corpus="$here/corpus/$target"
[ -d "$corpus" ] || { echo "no corpus folder $corpus" >&2; exit 2; }

publish=$(mktemp -d "${TMPDIR:-/tmp}/compression-fuzzing-publish-XXXX")
dotnet publish "$here/Compression.Fuzzing.csproj" -c Release -o "$publish" --nologo -v quiet

# Instrument every library assembly whose parsers the targets reach (SharpFuzz rewrites them in place).
for assembly in Compression.Core Compression.Quantization Compression.Pruning Compression.LowRank Compression.TorchSharp; do
  "$sharpfuzz" "$publish/$assembly.dll"
done

# AFL's seeds must be below its 1 MB limit; keep only the seed files (no sub-folders).
export AFL_SKIP_CPUFREQ=1 AFL_I_DONT_CARE_ABOUT_MISSING_CRASHES=1 AFL_NO_UI=1 AFL_SKIP_BIN_CHECK=1
export DOTNET_TieredPGO=0 DOTNET_gcServer=0
timeout --signal=INT "$((duration + 30))" \
  afl-fuzz -V "$duration" -i "$corpus" -o "$output" -t 10000 -m none -- dotnet "$publish/Compression.Fuzzing.dll" "$target" \
  > "$log" 2>&1 || true

stats="$output/default/fuzzer_stats"
if [ ! -f "$stats" ]; then
  echo "afl-fuzz wrote no fuzzer_stats; see $log" >&2
  tail -30 "$log" >&2
  exit 1
fi

echo "target=$target duration_s=$duration output=$output publish=$publish"
grep -E '^(run_time|execs_done|execs_per_sec|corpus_count|paths_total|saved_crashes|unique_crashes|saved_hangs|unique_hangs|bitmap_cvg|stability)\b' "$stats"
echo "crashes: $(find "$output/default/crashes" -type f ! -name README.txt 2>/dev/null | wc -l)  hangs: $(find "$output/default/hangs" -type f 2>/dev/null | wc -l)"
