namespace XDit.Native;

/// <summary>Names the C struct a blittable struct mirrors, so layout tests can ask the native library for its size and field offsets.</summary>
[AttributeUsage(AttributeTargets.Struct)]
public sealed class NativeStructAttribute(string name) : Attribute
{
    /// <summary>The C struct's name, as in xdit.h.</summary>
    public string Name { get; } = name;
}
