using XDit.Native;
using XDit.Tensors;

namespace XDit.Ops;

/// <summary>Matrix products with fp32 accumulation on every backend.</summary>
public static class MatMul
{
    /// <summary>
    /// <c>epilogue(a · bᵀ + bias)</c> for a [..., M, K], b [N, K] (a weight shared by every batch item)
    /// or [..., N, K], bias [N] or null: the linear layer's product with PyTorch's weight layout.
    /// Inner dims of a and b may be row-major or transposed views; all operands share one float dtype.
    /// </summary>
    public static Tensor Gemm(Tensor a, Tensor b, Tensor? bias = null, Epilogue epilogue = Epilogue.None)
    {
        Operands.SameContext(a, b, bias);
        if (a.Rank < 2 || b.Rank < 2)
            throw new XDitException(XditStatus.InvalidArgument, $"Gemm needs a [..., M, K] and b [N, K]; got {a} and {b}");
        var shape = a.Shape.ToArray();
        shape[^1] = b.Size(-2);
        var output = Tensor.Empty(a.Context, a.DType, shape);
        try
        {
            Gemm(a, b, bias, output, epilogue);
            return output;
        }
        catch
        {
            output.Dispose();
            throw;
        }
    }

    /// <summary>As <see cref="Gemm(Tensor, Tensor, Tensor?, Epilogue)"/>, into <paramref name="output"/>
    /// [..., M, N] (row-major inner dims).</summary>
    public static void Gemm(Tensor a, Tensor b, Tensor? bias, Tensor output, Epilogue epilogue = Epilogue.None)
    {
        var context = Operands.SameContext(a, b, bias, output);
        FlopCounter.Add(2.0 * output.NumElements * a.Size(-1));
        var da = a.Descriptor;
        var db = b.Descriptor;
        var dout = output.Descriptor;
        if (bias is null)
        {
            NativeStatus.Check(NativeMethods.xdit_gemm(context.Handle, in da, in db,
                in System.Runtime.CompilerServices.Unsafe.NullRef<XditTensor>(), in dout, (int)epilogue));
            return;
        }
        var dbias = bias.Descriptor;
        NativeStatus.Check(NativeMethods.xdit_gemm(context.Handle, in da, in db, in dbias, in dout, (int)epilogue));
    }
}
