// Licensed under the MIT License. See LICENSE in the repository root.
// Part of the Compression library for .NET.

namespace Compression.Fuzzing;

/// <summary>
/// One fuzz target: feeds <paramref name="input"/> to a parser and returns normally when the parser accepted it or
/// rejected it with its documented exception. Any other exception escapes, and the fuzzer counts it as a crash.
/// </summary>
public delegate void FuzzTarget(ReadOnlySpan<byte> input);
