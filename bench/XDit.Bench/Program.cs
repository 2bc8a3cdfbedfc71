using BenchmarkDotNet.Running;

// Every benchmark of the assembly; BenchmarkDotNet's own arguments apply (--filter, --job short, ...).
BenchmarkSwitcher.FromAssembly(typeof(XDit.Bench.GemmBenchmarks).Assembly).Run(args);
