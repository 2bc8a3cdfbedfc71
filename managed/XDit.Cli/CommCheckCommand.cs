using XDit.Parallel;

namespace XDit.Cli;

/// <summary>
/// <c>xdit check --comm mpi</c> (under mpirun) or <c>xdit check --comm inproc --ranks N</c>: every
/// collective of the communicator against its sequential reference (<see cref="CollectiveCheck"/>), one
/// table from rank 0, exit code 1 when any rank saw a wrong result.
/// </summary>
public static class CommCheckCommand
{
    public static int Run(string comm, int ranks, TextWriter output)
    {
        List<CollectiveOutcome>[] outcomes;
        switch (comm)
        {
            case "inproc":
                outcomes = InProcessWorld.Run(ranks, world =>
                {
                    using var context = DeviceContext.Create(Device.Cpu, new ContextOptions { NumThreads = 1 });
                    return CollectiveCheck.Run(world, context);
                });
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
                throw new UsageException($"--comm must be inproc or mpi, got '{comm}'");
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
