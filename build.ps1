<#
.SYNOPSIS
  Builds, tests and benchmarks XDitNative. Run with the pinned PowerShell from the tool manifest:
    dotnet tool restore && dotnet pwsh -NoProfile -File build.ps1 <task> [options]

.DESCRIPTION
  Tasks:
    build     native library (CMake) + managed solution
    test      build with CUDA ON and warnings as errors, publish and check the GPU kit (see gpukit),
              then every test group; prints a closing line "N passed, N failed, N skipped"
    demo      build, then generate an image with the built-in tiny PixArt model (random weights made
              from a seed, written as a diffusers folder and loaded back) on two in-process ranks (CFG
              parallel), print each stage's time, and check the image against the single-rank run
    bench     build, then the BenchmarkDotNet kernel benchmarks; BenchmarkDotNet's arguments go in one
              string: -BenchArgs '--filter *Gemm* --job short'
    bench-peers  the peers of the kernel benchmarks in the same shapes: PyTorch on the CPU (installs
              Debian's python3-torch and libopenblas0-pthread when root; never a CI dependency)
    gpukit    the GPU check kit: xdit published self-contained and trimmed (no ASP.NET, no
              BenchmarkDotNet, under 40 MB) into artifacts/gpukit, checked by running its CPU op check;
              carry artifacts/gpukit to a GPU machine and run bench/gpu/run.sh there
    bindings  regenerate managed/XDit.Native/NativeMethods.g.cs from native/include/xdit/xdit.h
    clean     remove every build output

  Missing Debian packages are installed when running as root (the CUDA toolkit needs the
  'contrib non-free' components, which are enabled for it); otherwise the script stops and prints
  the exact apt-get command to run.

.PARAMETER Cuda
  AUTO (build the CUDA backend when nvcc is found), ON (required), OFF. Default: ON for test, AUTO
  otherwise.
#>
[CmdletBinding()]
param(
    [Parameter(Position = 0)]
    [ValidateSet('build', 'test', 'demo', 'bench', 'bench-peers', 'gpukit', 'bindings', 'clean')]
    [string]$Task = 'build',
    [ValidateSet('AUTO', 'ON', 'OFF')]
    [string]$Cuda,
    [ValidateSet('Release', 'Debug')]
    [string]$Configuration = 'Release',
    [switch]$NoInstall,
    [string]$BenchArgs = ''
)

$ErrorActionPreference = 'Stop'
$PSNativeCommandUseErrorActionPreference = $true
$PSStyle.OutputRendering = 'PlainText'
Set-StrictMode -Version Latest

$Root = $PSScriptRoot
$NativeBuild = Join-Path $Root 'build/native'
$NativeOut = Join-Path $Root 'artifacts/native/linux-x64'
$Solution = Join-Path $Root 'XDitNative.sln'
if (-not $Cuda) { $Cuda = if ($Task -eq 'test') { 'ON' } else { 'AUTO' } }
$Timings = [System.Collections.Generic.List[object]]::new()

function Invoke-Step([string]$Name, [scriptblock]$Body) {
    Write-Host "==> $Name"
    $watch = [System.Diagnostics.Stopwatch]::StartNew()
    try { & $Body | Out-Host }
    finally {
        $Timings.Add([pscustomobject]@{ Step = $Name; Seconds = [math]::Round($watch.Elapsed.TotalSeconds, 1) })
        Write-Host ("<== {0}: {1:N1} s" -f $Name, $watch.Elapsed.TotalSeconds)
    }
}

function Write-Timings {
    Write-Host ''
    Write-Host 'Stage timings:'
    foreach ($t in $Timings) { Write-Host ("  {0,-40} {1,8:N1} s" -f $t.Step, $t.Seconds) }
}

# ---- prerequisites --------------------------------------------------------------------------------

function Test-DebianPackage([string]$Name) {
    $PSNativeCommandUseErrorActionPreference = $false
    $status = & dpkg-query -W -f='${Status}' $Name 2>$null
    return $LASTEXITCODE -eq 0 -and $status -eq 'install ok installed'
}

function Enable-NonFreeComponents {
    $deb822 = '/etc/apt/sources.list.d/debian.sources'
    if (Test-Path $deb822) {
        $text = Get-Content -Raw $deb822
        $updated = $text -replace '(?m)^Components: main\s*$', 'Components: main contrib non-free non-free-firmware'
        if ($updated -ne $text) { Set-Content -NoNewline -Path $deb822 -Value $updated }
    }
    elseif (Test-Path '/etc/apt/sources.list') {
        $text = Get-Content -Raw '/etc/apt/sources.list'
        $updated = $text -replace '(?m)^(deb\s+\S+\s+\S+\s+main)\s*$', '$1 contrib non-free non-free-firmware'
        if ($updated -ne $text) { Set-Content -NoNewline -Path '/etc/apt/sources.list' -Value $updated }
    }
}

# Installs what is missing (as root) or stops with the command that would.
function Install-Packages([string[]]$Packages, [bool]$NeedsNonFree) {
    $missing = @($Packages | Where-Object { -not (Test-DebianPackage $_) })
    if ($missing.Count -eq 0) { return }
    $command = "apt-get install -y --no-install-recommends $($missing -join ' ')"
    $isRoot = (& id -u) -eq '0'
    if ($NoInstall -or -not $isRoot) {
        $hint = if ($NeedsNonFree) { " (the CUDA toolkit needs 'contrib non-free' enabled in /etc/apt/sources.list.d/debian.sources)" } else { '' }
        throw "Missing Debian packages: $($missing -join ', '). Install them with: sudo apt-get update && sudo $command$hint"
    }
    Invoke-Step "install $($missing -join ' ')" {
        if ($NeedsNonFree) { Enable-NonFreeComponents }
        $env:DEBIAN_FRONTEND = 'noninteractive'
        & apt-get update -qq
        & apt-get install -y -qq --no-install-recommends @missing
    }
}

function Install-Prerequisites([bool]$ForTests) {
    $packages = @('cmake', 'g++')
    $nonFree = $false
    if ($Cuda -eq 'ON') { $packages += @('nvidia-cuda-toolkit', 'g++-11'); $nonFree = $true }
    if ($ForTests) { $packages += @('libopenblas-dev', 'python3-clang-14', 'libclang-14-dev', 'libopenmpi-dev', 'openmpi-bin') }
    Install-Packages $packages $nonFree
}

# ---- build ----------------------------------------------------------------------------------------

function Build-Native([bool]$WarningsAsErrors) {
    Invoke-Step 'native build (CMake)' {
        $werror = if ($WarningsAsErrors) { 'ON' } else { 'OFF' }
        & cmake -S $Root -B $NativeBuild -DCMAKE_BUILD_TYPE=Release "-DXDIT_CUDA=$Cuda" "-DXDIT_WARNINGS_AS_ERRORS=$werror"
        & cmake --build $NativeBuild --parallel ([Environment]::ProcessorCount)
        New-Item -ItemType Directory -Force -Path $NativeOut | Out-Null
        Copy-Item (Join-Path $NativeBuild 'libxdit_native.so') $NativeOut -Force
    }
    if ($Cuda -eq 'ON') {
        Invoke-Step 'check CUDA architectures (cuobjdump)' {
            $elves = & cuobjdump --list-elf (Join-Path $NativeOut 'libxdit_native.so')
            foreach ($arch in 'sm_80', 'sm_90') {
                if (-not ($elves -match "\.$arch\.cubin")) { throw "libxdit_native.so carries no $arch kernels:`n$($elves -join "`n")" }
            }
            Write-Host "   kernels for sm_80 and sm_90: $(@($elves).Count) cubins"
        }
    }
}

function Build-Managed {
    Invoke-Step 'managed build (dotnet)' {
        & dotnet build $Solution -c $Configuration --nologo -v quiet
    }
}

# ---- tests ----------------------------------------------------------------------------------------

# Runs one test project, returns its pass/fail/skip counts from the TRX file.
function Invoke-TestGroup([string]$Name, [string]$Project, [string]$Filter) {
    $resultsDir = Join-Path $Root "TestResults/$Name"
    if (Test-Path $resultsDir) { Remove-Item -Recurse -Force $resultsDir }
    $arguments = @('test', $Project, '-c', $Configuration, '--no-build', '--nologo',
        '--logger', "trx;LogFileName=$Name.trx", '--results-directory', $resultsDir)
    if ($Filter) { $arguments += @('--filter', $Filter) }
    Invoke-Step "tests: $Name" {
        $PSNativeCommandUseErrorActionPreference = $false
        & dotnet @arguments
        $script:LastTestExit = $LASTEXITCODE
    }
    $exitCode = $script:LastTestExit
    $trx = Get-ChildItem -Path $resultsDir -Filter '*.trx' -Recurse | Select-Object -First 1
    if (-not $trx) { throw "tests: $Name produced no results file (dotnet test exit code $exitCode)" }
    $counters = ([xml](Get-Content -Raw $trx.FullName)).TestRun.ResultSummary.Counters
    $result = [pscustomobject]@{
        Group   = $Name
        Passed  = [int]$counters.passed
        Failed  = [int]$counters.failed + [int]$counters.error + [int]$counters.timeout + [int]$counters.aborted
        Skipped = [int]$counters.total - [int]$counters.executed  # NUnit skips are "not executed"
    }
    if ($exitCode -ne 0 -and $result.Failed -eq 0) { $result.Failed = 1 } # a crash is a failure
    return $result
}

# The CPU tests again, against a build of the native library with AddressSanitizer and
# UndefinedBehaviorSanitizer: libasan is preloaded into the test host, and handle_segv=0 leaves SIGSEGV
# to .NET, which uses it for null references. Any report aborts the host, which counts as a failure.
function Invoke-SanitizerTests([string]$Project) {
    $build = Join-Path $Root 'build/native-asan'
    Invoke-Step 'native build with ASan + UBSan (CPU)' {
        & cmake -S $Root -B $build -DCMAKE_BUILD_TYPE=RelWithDebInfo -DXDIT_CUDA=OFF -DXDIT_SANITIZE=ON -DXDIT_WARNINGS_AS_ERRORS=ON
        & cmake --build $build --parallel ([Environment]::ProcessorCount)
    }
    $saved = @{}
    $variables = @{
        XDIT_NATIVE_LIB = (Join-Path $build 'libxdit_native.so')
        LD_PRELOAD      = (& gcc '-print-file-name=libasan.so')
        ASAN_OPTIONS    = 'handle_segv=0:allow_user_segv_handler=1:use_sigaltstack=0:detect_leaks=0'
        UBSAN_OPTIONS   = 'print_stacktrace=1:halt_on_error=1'
    }
    foreach ($name in $variables.Keys) {
        $saved[$name] = [Environment]::GetEnvironmentVariable($name)
        [Environment]::SetEnvironmentVariable($name, $variables[$name])
    }
    try {
        # mpirun's processes and the CUDA tests are outside what this build covers.
        # The stale PipeFusion runs (12 steps each) add no native code path that the full-warmup ones miss.
        return Invoke-TestGroup 'sanitizers' $Project 'FullyQualifiedName!~MpiTests&FullyQualifiedName!~CudaTests&FullyQualifiedName!~StaleKeysAndValuesFollowTheAlgorithm'
    }
    finally {
        foreach ($name in $saved.Keys) { [Environment]::SetEnvironmentVariable($name, $saved[$name]) }
    }
}

function Invoke-Tests {
    $project = Join-Path $Root 'tests/XDit.Tests/XDit.Tests.csproj'
    $groups = @(
        Invoke-TestGroup 'unit' $project $null
        Invoke-SanitizerTests $project
    )
    Write-Timings
    Write-Host ''
    foreach ($g in $groups) { Write-Host ("  {0,-12} {1} passed, {2} failed, {3} skipped" -f $g.Group, $g.Passed, $g.Failed, $g.Skipped) }
    $passed = ($groups | Measure-Object -Property Passed -Sum).Sum
    $failed = ($groups | Measure-Object -Property Failed -Sum).Sum
    $skipped = ($groups | Measure-Object -Property Skipped -Sum).Sum
    Write-Host "$passed passed, $failed failed, $skipped skipped"
    if ($failed -gt 0) { exit 1 }
}

# ---- the GPU check kit ---------------------------------------------------------------------------

# Publishes xdit self-contained and trimmed into artifacts/gpukit and runs the trimmed binary's CPU op
# check, so that a trimming or packaging mistake shows here and not on a lent GPU machine.
function Publish-GpuKit {
    $kit = Join-Path $Root 'artifacts/gpukit'
    Invoke-Step 'publish xdit for the GPU kit (self-contained, trimmed, without the HTTP service)' {
        if (Test-Path $kit) { Remove-Item -Recurse -Force $kit }
        & dotnet publish (Join-Path $Root 'managed/XDit.Cli/XDit.Cli.csproj') -c Release -p:XDitGpuKit=true -o $kit --nologo -v quiet
    }
    Invoke-Step 'check the GPU kit' {
        $files = Get-ChildItem -Recurse -File $kit
        $bytes = ($files | Measure-Object -Sum Length).Sum
        Write-Host ('   {0:N1} MB, {1} files in {2}' -f ($bytes / 1MB), $files.Count, $kit)
        if ($bytes -gt 40MB) { throw ('the kit holds {0:N1} MB; it must stay under 40 MB' -f ($bytes / 1MB)) }
        $unwanted = $files | Where-Object { $_.Name -like 'Microsoft.AspNetCore*' -or $_.Name -like 'BenchmarkDotNet*' }
        if ($unwanted) { throw "the kit must not carry $($unwanted.Name -join ', ')" }
        $env:XDIT_NATIVE_LIB = Join-Path $NativeOut 'libxdit_native.so'
        & (Join-Path $kit 'xdit') check --ops --device cpu --dtype f32,bf16 --filter '[2,67,96]'
        Remove-Item Env:XDIT_NATIVE_LIB
    }
}

# ---- tasks ----------------------------------------------------------------------------------------

switch ($Task) {
    'build' {
        Install-Prerequisites $false
        Build-Native $false
        Build-Managed
        Write-Timings
    }
    'test' {
        Install-Prerequisites $true
        Build-Native $true
        Build-Managed
        Publish-GpuKit
        Invoke-Tests
    }
    'demo' {
        Install-Prerequisites $false
        Build-Native $false
        Build-Managed
        $xdit = Join-Path $Root "managed/XDit.Cli/bin/$Configuration/net10.0/xdit"
        $image = Join-Path $Root 'demo.png'
        Invoke-Step 'xdit generate (tiny-pixart)' {
            & $xdit generate --arch tiny-pixart --random_weights --prompt 'A small cactus with a happy face in the Sahara desert.' `
                --num_inference_steps 8 --seed 42 --use_cfg_parallel --ulysses_degree 2 --use_parallel_vae --check_single_rank --output $image
        }
        Write-Timings
        Write-Host "image: $image"
    }
    'bench' {
        Install-Prerequisites $false
        Build-Native $false
        Invoke-Step 'benchmarks' {
            $arguments = @($BenchArgs -split '\s+' | Where-Object { $_ })
            & dotnet run -c Release --project (Join-Path $Root 'bench/XDit.Bench/XDit.Bench.csproj') -- @arguments
        }
        Write-Timings
    }
    'gpukit' {
        Install-Prerequisites $false
        Build-Native $false
        Publish-GpuKit
        Write-Host 'carry artifacts/gpukit to the GPU machine and run bench/gpu/run.sh there'
        Write-Timings
    }
    'bench-peers' {
        Install-Packages @('python3-torch', 'libopenblas0-pthread') $false
        $out = Join-Path $Root 'BenchmarkDotNet.Artifacts/peers'
        New-Item -ItemType Directory -Force -Path $out | Out-Null
        Invoke-Step 'PyTorch CPU attention' {
            & /usr/bin/python3 (Join-Path $Root 'bench/peers/torch_cpu_attention.py') (Join-Path $out 'torch_cpu_attention.json')
        }
        if (Test-Path (Join-Path $Root 'BenchmarkDotNet.Artifacts/peers/blocks')) {
            Invoke-Step 'PyTorch CPU blocks' {
                & /usr/bin/python3 (Join-Path $Root 'bench/peers/torch_cpu_blocks.py') (Join-Path $out 'torch_cpu_blocks.json')
            }
        }
        else { Write-Host "(no block cases yet: run 'build.ps1 bench -BenchArgs "--filter *Block*"' first for the block peer)" }
        Write-Timings
    }
    'bindings' {
        & /usr/bin/python3 (Join-Path $Root 'bindings/generate.py')
    }
    'clean' {
        foreach ($path in 'build', 'artifacts', 'TestResults', 'BenchmarkDotNet.Artifacts') {
            $full = Join-Path $Root $path
            if (Test-Path $full) { Remove-Item -Recurse -Force $full }
        }
        Get-ChildItem -Path (Join-Path $Root 'managed'), (Join-Path $Root 'tests'), (Join-Path $Root 'bench') -Directory -Recurse -Include 'bin', 'obj' |
            Remove-Item -Recurse -Force
    }
}
