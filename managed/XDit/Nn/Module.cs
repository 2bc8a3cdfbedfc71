namespace XDit.Nn;

/// <summary>
/// A node of a model tree whose parameter paths equal the checkpoint's tensor names
/// (<c>transformer_blocks.0.attn1.to_q.weight</c>): children and parameters are registered under the
/// names diffusers gives them, so loading is a walk and every mismatch is named precisely. Disposing a
/// module frees its parameters and its children's.
/// </summary>
public abstract class Module : IDisposable
{
    readonly List<(string Name, Module Module)> _children = new();
    readonly List<Parameter> _parameters = new();

    /// <summary>Registers a child under <paramref name="name"/> (dots allowed, e.g. <c>to_out.0</c>). An
    /// empty name puts the child's parameters directly into this module's namespace (a component whose
    /// checkpoint names have no level of their own).</summary>
    protected T Child<T>(string name, T module) where T : Module
    {
        _children.Add((name, module));
        return module;
    }

    protected Parameter Param(string name, params long[] shape)
    {
        var parameter = new Parameter(name, shape);
        _parameters.Add(parameter);
        return parameter;
    }

    /// <summary>Every parameter of the tree with its full dotted path.</summary>
    public IEnumerable<(string Path, Parameter Parameter)> NamedParameters(string prefix = "")
    {
        foreach (var p in _parameters) yield return (prefix + p.Name, p);
        foreach (var (name, child) in _children)
            foreach (var entry in child.NamedParameters(name.Length == 0 ? prefix : prefix + name + "."))
                yield return entry;
    }

    public void Dispose()
    {
        foreach (var p in _parameters) p.Dispose();
        foreach (var (_, child) in _children) child.Dispose();
        GC.SuppressFinalize(this);
    }
}
