using XDit.Native;

namespace XDit.Parallel;

/// <summary>
/// A communicator over Open MPI (the native library loads <c>libmpi.so.40</c> at run time): one rank per
/// process, launched by <c>mpirun</c>, moving host memory (tensors of CPU contexts). MPI runs with
/// MPI_ERRORS_RETURN, never its abort handler.
/// </summary>
public sealed class MpiCommunicator : NativeCommunicator
{
    MpiCommunicator(CommHandle handle, TimeSpan timeout) : base(handle, timeout, "MPI", DeviceKind.Cpu, context: null) { }

    /// <summary>True when this process was started by Open MPI's launcher (<c>mpirun</c>).</summary>
    public static bool LaunchedByMpirun => Environment.GetEnvironmentVariable("OMPI_COMM_WORLD_SIZE") is not null;

    /// <summary>Every process of the job (MPI_COMM_WORLD, duplicated); initialises MPI on first use.
    /// Fails with <see cref="XditStatus.Unavailable"/> where Open MPI is not installed.</summary>
    public static MpiCommunicator World(TimeSpan? timeout = null)
    {
        XDitLibrary.EnsureLoaded();
        var wait = timeout ?? InProcessWorld.DefaultTimeout;
        NativeStatus.Check(NativeMethods.xdit_comm_mpi_world(wait.TotalSeconds, out var handle));
        return new MpiCommunicator(handle, wait);
    }

    /// <summary>Finalises MPI (after every communicator is disposed): the process's last MPI call.</summary>
    public static void FinalizeMpi() => NativeStatus.Check(NativeMethods.xdit_comm_mpi_finalize());
}
