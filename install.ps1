# install.ps1 — install harmony on Windows from its GitHub releases (or a mirror), verified.
#
#   irm https://raw.githubusercontent.com/NationTech/harmony-agent/main/install.ps1 | iex
#   & ([scriptblock]::Create((irm …/install.ps1))) -Version v1.2.3
#
# Parameters (the same contract as install.sh):
#   -Version V     install release V (e.g. v1.2.3) instead of the latest   (install.sh: --version)
#   -ModifyPath    add the install directory to the user PATH (default on) (install.sh: --modify-path)
#   -Bootstrap     run 'harmony bootstrap' after installing                (install.sh: --bootstrap)
#   -Uninstall     remove the harmony binary this script installed         (install.sh: --uninstall)
# Environment:
#   HARMONY_VERSION          same as -Version
#   HARMONY_INSTALL_DIR      where to put harmony.exe (default %LOCALAPPDATA%\harmony\bin)
#   HARMONY_MIRROR           base URL standing in for https://github.com
#   HARMONY_MINISIGN_PUBKEY  minisign public key that signs checksums.txt (default: the release key)
#
# Checks the archive's SHA-256 (Get-FileHash) against checksums.txt and, when minisign.exe is on
# PATH, the signature of checksums.txt. Nothing unverified is installed. Works on Windows
# PowerShell 5.1 and PowerShell 7.
param(
    [string]$Version = $env:HARMONY_VERSION,
    [switch]$ModifyPath = $true,
    [switch]$Bootstrap,
    [switch]$Uninstall
)

$ErrorActionPreference = 'Stop'
Set-StrictMode -Version 2.0
$ProgressPreference = 'SilentlyContinue'
[Net.ServicePointManager]::SecurityProtocol = [Net.ServicePointManager]::SecurityProtocol -bor [Net.SecurityProtocolType]::Tls12

$Repo = 'NationTech/harmony-agent'
$ReleasePubkey = 'RWQny32cpOrd8quZpyFd6mOFNHAQ/NMT/gBXR4a2b8jk7bIpGzDJ3NCC'

function Say([string]$msg) { Write-Host "harmony-install: $msg" }
function Fail([string]$msg, [string]$hint) {
    Write-Host "harmony-install: error: $msg" -ForegroundColor Red
    if ($hint) { Write-Host "harmony-install: hint: $hint" }
    exit 1
}

function Get-Arch {
    $a = $env:PROCESSOR_ARCHITEW6432
    if (-not $a) { $a = $env:PROCESSOR_ARCHITECTURE }
    switch ($a) {
        'AMD64' { return 'amd64' }
        'ARM64' { return 'arm64' }
        default { Fail "unsupported CPU architecture: $a" 'harmony is built for amd64 and arm64' }
    }
}

function Get-ReleaseUrl([string]$Mirror, [string]$Tag, [string]$Asset) {
    if ($Tag -eq 'latest') { return "$Mirror/$Repo/releases/latest/download/$Asset" }
    return "$Mirror/$Repo/releases/download/$Tag/$Asset"
}

function Get-File([string]$Url, [string]$Out) {
    Invoke-WebRequest -Uri $Url -OutFile $Out -UseBasicParsing
}

$Mirror = if ($env:HARMONY_MIRROR) { $env:HARMONY_MIRROR.TrimEnd('/') } else { 'https://github.com' }
$Pubkey = if ($env:HARMONY_MINISIGN_PUBKEY) { $env:HARMONY_MINISIGN_PUBKEY } else { $ReleasePubkey }
$InstallDir = if ($env:HARMONY_INSTALL_DIR) { $env:HARMONY_INSTALL_DIR } else { Join-Path $env:LOCALAPPDATA 'harmony\bin' }
$Target = Join-Path $InstallDir 'harmony.exe'

if ($Uninstall) {
    if (Test-Path $Target) { Remove-Item -Force $Target; Say "removed $Target" } else { Say "no harmony in ${InstallDir}: nothing to remove" }
    $userPath = [Environment]::GetEnvironmentVariable('Path', 'User')
    if ($userPath -and ($userPath.Split(';') -contains $InstallDir)) {
        [Environment]::SetEnvironmentVariable('Path', (($userPath.Split(';') | Where-Object { $_ -ne $InstallDir }) -join ';'), 'User')
    }
    exit 0
}

$arch = Get-Arch
$tag = 'latest'
if ($Version) { $tag = if ($Version.StartsWith('v')) { $Version } else { "v$Version" } }

$tmp = Join-Path ([IO.Path]::GetTempPath()) ("harmony-install-" + [Guid]::NewGuid())
New-Item -ItemType Directory -Path $tmp | Out-Null
try {
    Say "fetching checksums.txt for $tag from $Mirror"
    $sums = Join-Path $tmp 'checksums.txt'
    try { Get-File (Get-ReleaseUrl $Mirror $tag 'checksums.txt') $sums }
    catch { Fail "cannot download release $tag from $Mirror (unknown version or unreachable mirror)" 'check the version and HARMONY_MIRROR' }

    if (Get-Command minisign -ErrorAction SilentlyContinue) {
        $sig = Join-Path $tmp 'checksums.txt.minisig'
        try { Get-File (Get-ReleaseUrl $Mirror $tag 'checksums.txt.minisig') $sig }
        catch { Fail 'the signature checksums.txt.minisig is missing from the release' 'a release without its signature is refused' }
        & minisign -Vq -P $Pubkey -m $sums -x $sig | Out-Null
        if ($LASTEXITCODE -ne 0) { Fail 'the signature of checksums.txt does not verify with the release key' 'nothing was installed' }
        Say 'signature of checksums.txt verified'
    } else {
        Say 'minisign is not installed: only the SHA-256 checksum was checked, not the release signature'
    }

    $line = Get-Content $sums | Where-Object { $_ -match "^([0-9a-fA-F]{64}) [ *]?(harmony_.*_windows_$arch\.zip)$" } | Select-Object -First 1
    if (-not $line) { Fail "this release has no harmony archive for windows/$arch" 'pick another version with -Version' }
    $null = $line -match "^([0-9a-fA-F]{64}) [ *]?(harmony_.*_windows_$arch\.zip)$"
    $want = $Matches[1].ToLower()
    $archive = $Matches[2]
    $targetVersion = $archive -replace '^harmony_', '' -replace "_windows_$arch\.zip$", ''

    $current = $null
    if (Test-Path $Target) { try { $current = (& $Target version --json | ConvertFrom-Json).version } catch { } }
    if ($current -eq $targetVersion) {
        Say "harmony $targetVersion is already installed in ${InstallDir}: nothing to do"
    } else {
        Say "downloading $archive"
        $zip = Join-Path $tmp $archive
        Get-File (Get-ReleaseUrl $Mirror $tag $archive) $zip
        $got = (Get-FileHash -Algorithm SHA256 -Path $zip).Hash.ToLower()
        if ($got -ne $want) { Fail "checksum mismatch for ${archive}: expected $want, got $got; the file was discarded" 'check HARMONY_MIRROR or retry; nothing was installed' }
        $x = Join-Path $tmp 'x'
        Expand-Archive -Path $zip -DestinationPath $x
        New-Item -ItemType Directory -Force -Path $InstallDir | Out-Null
        $staged = Join-Path $InstallDir '.harmony.tmp.exe'
        Copy-Item (Join-Path $x 'harmony.exe') $staged -Force
        Move-Item $staged $Target -Force
        Say "installed harmony $targetVersion to $Target"
    }

    $userPath = [Environment]::GetEnvironmentVariable('Path', 'User')
    if (-not $userPath -or -not ($userPath.Split(';') -contains $InstallDir)) {
        if ($ModifyPath) {
            [Environment]::SetEnvironmentVariable('Path', (@($userPath, $InstallDir) | Where-Object { $_ }) -join ';', 'User')
            Say "added $InstallDir to your user PATH; open a new terminal"
        } else {
            Say "$InstallDir is not on your PATH"
        }
    }
    if ($Bootstrap) { & $Target bootstrap }
} finally {
    Remove-Item -Recurse -Force $tmp -ErrorAction SilentlyContinue
}
