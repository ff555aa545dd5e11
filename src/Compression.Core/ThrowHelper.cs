// Licensed under the MIT License. See LICENSE in the repository root.
// Part of the Compression library for .NET.

using System;
using System.Diagnostics;
using System.Diagnostics.CodeAnalysis;
using System.IO;

namespace Compression;

/// <summary>Throw sites kept out of hot methods so those stay small enough to inline.</summary>
[StackTraceHidden]
internal static class ThrowHelper
{
    [DoesNotReturn]
    public static void ThrowArgument(string paramName, string message) => throw new ArgumentException(message, paramName);

    [DoesNotReturn]
    public static void ThrowArgumentOutOfRange(string paramName, object? actual, string message) =>
        throw new ArgumentOutOfRangeException(paramName, actual, message);

    [DoesNotReturn]
    public static void ThrowDestinationTooShort(string paramName, long needed, long actual) =>
        throw new ArgumentException($"Destination is too short: {needed} elements needed, {actual} given.", paramName);

    [DoesNotReturn]
    public static void ThrowInvalidData(string file, string reason) =>
        throw new InvalidDataException($"'{file}' is not a valid safetensors file: {reason}");

    [DoesNotReturn]
    public static T ThrowInvalidData<T>(string file, string reason) =>
        throw new InvalidDataException($"'{file}' is not a valid safetensors file: {reason}");
}
