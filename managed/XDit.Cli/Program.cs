using XDit.Cli;

// xdit <command> [options]: one clear line and exit code 2 for user mistakes, 1 for failures.
try
{
    if (args.Length == 0 || args[0] is "-h" or "--help" or "help")
    {
        Console.WriteLine("usage: xdit generate (--model DIR | --arch NAME --random_weights) [--prompt TEXT]... [options]");
        Console.WriteLine("       xdit serve (--model DIR | --arch NAME --random_weights) [--host 127.0.0.1] [--port 6000] [--token T] [--queue_size 16] [--output_folder results]");
        Console.WriteLine("       xdit bench (--model DIR | --arch NAME --random_weights) [--num_inference_steps 4] [--runs 3] [--warmup 1] [--height H --width W] [--use_cuda_graph] [--json FILE]");
        Console.WriteLine("       xdit bench --blocks [--device cuda:N|cpu] [--dtype bf16] [--block pixart-sigma,sd3-medium,flux-dev] [--tokens 1024,4096] [--runs 5] [--write_cases DIR] [--json FILE]");
        Console.WriteLine("                  [--compare \"1;cfg2;ulysses2;pp2xpatch4\"] [--link nvlink|pcie|ethernet|GBps]");
        Console.WriteLine("                  [--http [--concurrency 1,2,4] [--requests 8] [--max_seconds 300]]   (the HTTP service's throughput)");
        Console.WriteLine("       xdit check [--golden DIR]   (environment report, or run golden case folders)");
        Console.WriteLine("       xdit check --comm inproc|mpi|nccl [--ranks N] [--device cuda:N]   (every collective against its reference; mpi under mpirun)");
        Console.WriteLine("       xdit check --ops [--device cuda:N|cpu] [--dtype f32,bf16] [--filter TEXT] [--bench] [--json FILE]   (every operator against the CPU)");
        Console.WriteLine("       xdit check --meshes [--device cpu|cuda:N] [--dtype f32|bf16] [--arch tiny-pixart,...] [--max_ranks 8] [--filter TEXT] [--json FILE]   (every parallel method against one rank)");
        Console.WriteLine("       xdit check --graph [--device cpu|cuda:N] [--dtype f32|bf16] [--arch tiny-pixart,...] [--json FILE]   (captured steps against eager ones, bit for bit)");
        Console.WriteLine("architectures: " + string.Join(", ", XDit.Pipelines.Architectures.Names));
        Console.WriteLine("options of generate (xDiT's names; dashes or underscores): --negative_prompt --height --width --num_inference_steps");
        Console.WriteLine("  --guidance_scale --seed --num_images_per_prompt --max_sequence_length --output_type pil|latent --output PATH");
        Console.WriteLine("  --save_model DIR --device cpu|cuda:N --dtype f32|bf16|f16 --use_cuda_graph (one step captured, replayed for the rest)");
        Console.WriteLine("  --use_cfg_parallel --data_parallel_degree N --ulysses_degree N --ring_degree N --comm inproc|mpi|nccl --check_single_rank");
        Console.WriteLine("  --pipefusion_parallel_degree N --num_pipeline_patch N --warmup_steps N --attn_layer_num_for_pp a,b,... --use_parallel_vae");
        return args.Length == 0 ? 2 : 0;
    }
    var options = new CommandLine(args.Skip(1));
    switch (args[0])
    {
        case "generate":
            return GenerateCommand.Run(options, Console.Out);
        case "bench":
            return BenchCommand.Run(options, Console.Out);
        case "serve":
#if XDIT_GPU_KIT
            throw new UsageException("this xdit is the GPU check kit's, built without the HTTP service");
#else
            return ServeCommand.Run(options, args, Console.Out);
#endif
        case "check":
            var golden = options.String("golden");
            var comm = options.String("comm");
            var ranks = options.Int("ranks", comm == "nccl" ? 1 : 4, min: 1, max: 64);
            var ops = options.Flag("ops");
            var meshes = options.Flag("meshes");
            var graphs = options.Flag("graph");
            var device = options.String("device", ops || comm == "nccl" ? "cuda:0" : "cpu")!;
            var dtypes = options.String("dtype", meshes || graphs ? "f32" : "f32,bf16")!.Split(',', StringSplitOptions.RemoveEmptyEntries).Select(ModelSource.ParseDType).ToList();
            var benchOps = options.Flag("bench");
            var json = options.String("json");
            var filter = options.String("filter");
            var architectures = options.String("arch", string.Join(",", MeshCheckCommand.TinyArchitectures))!.Split(',', StringSplitOptions.RemoveEmptyEntries);
            var maxRanks = options.Int("max_ranks", 8, min: 2, max: 64);
            options.RejectUnknown("check");
            if (!meshes && !graphs && options.Has("arch")) throw new UsageException("--arch is an option of 'xdit check --meshes' and '--graph'");
            if (!meshes && options.Has("max_ranks")) throw new UsageException("--max_ranks is an option of 'xdit check --meshes'");
            if (!ops && !meshes && !graphs && (options.Has("dtype") || json is not null))
                throw new UsageException("--dtype and --json are options of 'xdit check --ops', '--meshes' and '--graph'");
            if (!ops && !meshes && filter is not null) throw new UsageException("--filter is an option of 'xdit check --ops' and '--meshes'");
            if (!ops && benchOps) throw new UsageException("--bench is an option of 'xdit check --ops'");
            if (!ops && !meshes && !graphs && comm is null && options.Has("device"))
                throw new UsageException("--device is an option of 'xdit check --ops', '--meshes', '--graph' and '--comm inproc|nccl'");
            if (ops) return OpCheckCommand.Run(device, dtypes, benchOps, filter, json, Console.Out);
            if (graphs)
            {
                if (dtypes.Count != 1) throw new UsageException("xdit check --graph takes one --dtype");
                return GraphCheckCommand.Run(ModelSource.ParseDevice(device), dtypes[0], architectures, json, Console.Out);
            }
            if (meshes)
            {
                if (dtypes.Count != 1) throw new UsageException("xdit check --meshes takes one --dtype");
                return MeshCheckCommand.Run(ModelSource.ParseDevice(device), dtypes[0], architectures, maxRanks, filter, json, Console.Out);
            }
            if (comm is not null) return CommCheckCommand.Run(comm, ranks, ModelSource.ParseDevice(device), Console.Out);
            return golden is null ? EnvironmentReport.Run(Console.Out) : XDit.Cli.Golden.GoldenRunner.Run(golden, Console.Out);
        default:
            throw new UsageException($"unknown command '{args[0]}' (commands: generate, serve, bench, check)");
    }
}
catch (UsageException e)
{
    Console.Error.WriteLine($"xdit: {e.Message}");
    return 2;
}
catch (XDit.XDitException e)
{
    Console.Error.WriteLine($"xdit: {e.Message}");
    return 1;
}
catch (DllNotFoundException e)
{
    Console.Error.WriteLine($"xdit: {e.Message}");
    return 1;
}
