using XDit.Parallel;

namespace XDit.Cli;

/// <summary>
/// <c>xdit check --comm mpi</c> (under mpirun), <c>xdit check --comm inproc --ranks N [--device cuda:N]</c> or
/// <c>xdit check --comm nccl --device cuda:N [--ranks N]</c>: every collective of the communicator against its
/// sequential reference (<see cref="CollectiveCheck"/>), one table from rank 0, exit code 1 when any rank saw
/// a wrong result. In-process ranks on a GPU share it, each with its own context and stream; NCCL ranks
/// have a GPU each (by default one rank).
/// </summary>
public static class CommCheckCommand
{
    public static int Run(string comm, int ranks, Device device, TextWriter output)
    {
        if (comm == "mpi" && device.Kind != DeviceKind.Cpu)
            throw new UsageException($"--device {device} is for --comm inproc or nccl; --comm mpi moves host memory");
        List<CollectiveOutcome>[] outcomes;
        switch (comm)
        {
            case "inproc":
                outcomes = InProcessWorld.Run(ranks, world =>
                {
                    using var context = DeviceContext.Create(device, new ContextOptions { NumThreads = 1 });
                    return CollectiveCheck.Run(world, context);
                });
                output.WriteLine($"{ranks} in-process ranks on {device}");
                break;
            case "nccl":
                if (device.Kind != DeviceKind.Cuda) throw new UsageException("--comm nccl runs on GPUs: add --device cuda:N (the first rank's GPU)");
                var version = NcclCommunicator.Version;
                // One GPU per rank (NCCL's rule): rank r on cuda:N+r; the in-process world bootstraps the unique id.
                outcomes = InProcessWorld.Run(ranks, bootstrap =>
                {
                    using var context = DeviceContext.Create(Device.Cuda(device.Index + bootstrap.Rank));
                    using var nccl = NcclCommunicator.Create(bootstrap, context);
                    return CollectiveCheck.Run(nccl, context);
                });
                output.WriteLine($"NCCL {version / 10000}.{version / 100 % 100}.{version % 100}: {ranks} in-process rank(s) on " +
                                 string.Join(", ", Enumerable.Range(device.Index, ranks).Select(i => $"cuda:{i}")));
                break;
            case "mpi":
                if (!MpiCommunicator.LaunchedByMpirun) throw new UsageException("--comm mpi: start the ranks with mpirun (mpirun -np 4 xdit check --comm mpi)");
                var world = MpiCommunicator.World();
                List<CollectiveOutcome> mine;
                using (var context = DeviceContext.Create(Device.Cpu, new ContextOptions { NumThreads = 1 }))
                    mine = CollectiveCheck.Run(world, context);
                // Every rank's failures, so that rank 0's table covers the whole job.
                var failures = mine.Count(o => !o.Passed);
                foreach (var failure in mine.Where(o => !o.Passed)) Console.Error.WriteLine($"xdit: {failure.Collective}: {failure.Detail}");
                var rank = world.Rank;
                var size = world.Size;
                world.Dispose();
                MpiCommunicator.FinalizeMpi();
                if (rank != 0) return failures == 0 ? 0 : 1;
                outcomes = [mine];
                output.WriteLine($"MPI world of {size} ranks (rank 0's results; every rank checks its own and exits 1 on a failure)");
                break;
            default:
                throw new UsageException($"--comm must be inproc, mpi or nccl, got '{comm}'");
        }
        output.WriteLine("| collective | result | detail |");
        output.WriteLine("|---|---|---|");
        var rows = outcomes[0].Select((o, i) => (o.Collective, Passed: outcomes.All(r => r[i].Passed),
            Detail: outcomes.Select(r => r[i]).FirstOrDefault(x => !x.Passed)?.Detail ?? o.Detail)).ToList();
        foreach (var row in rows) output.WriteLine($"| {row.Collective} | {(row.Passed ? "pass" : "FAIL")} | {row.Detail} |");
        var failed = rows.Count(r => !r.Passed);
        output.WriteLine($"{rows.Count - failed} passed, {failed} failed");
        return failed == 0 ? 0 : 1;
    }
}
