using XDit.Cli;

// xdit <command> [options]: one clear line and exit code 2 for user mistakes, 1 for failures.
try
{
    if (args.Length == 0 || args[0] is "-h" or "--help" or "help")
    {
        Console.WriteLine("usage: xdit check [--golden DIR]");
        return args.Length == 0 ? 2 : 0;
    }
    var options = new CommandLine(args.Skip(1));
    switch (args[0])
    {
        case "check":
            options.RejectUnknown("check");
            return EnvironmentReport.Run(Console.Out);
        default:
            throw new UsageException($"unknown command '{args[0]}' (commands: check)");
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
