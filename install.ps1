# install.ps1 — install harmony on Windows from its GitHub releases (or a mirror), verified.
#
#   irm https://raw.githubusercontent.com/NationTech/harmony-agent/main/install.ps1 | iex
#   & ([scriptblock]::Create((irm …/install.ps1))) -Version v1.2.3 -NoModifyPath
#
# Parameters (the same contract as install.sh):
#   -Version V     install release V (e.g. v1.2.3) instead of the latest; also the only way to
#                  replace an installed harmony with an older one           (install.sh: --version)
#   -NoModifyPath  leave PATH alone (see PATH below)                     (install.sh: --no-modify-path)
#   -ModifyPath    set up PATH: the default (-ModifyPath:$false is -NoModifyPath) (--modify-path)
#   -Bootstrap     run 'harmony bootstrap' after installing                (install.sh: --bootstrap)
#   -Uninstall     remove the harmony binary this script installed, and   (install.sh: --uninstall)
#                  its folder from the user PATH
#   -InsecureSkipSignature
#                  when neither minisign nor ssh-keygen (OpenSSH 8.1 or newer) is available, install
#                  with the SHA-256 checksum alone: NOT RECOMMENDED  (install.sh: --insecure-skip-signature)
# Environment:
#   HARMONY_VERSION          same as -Version
#   HARMONY_INSTALL_DIR      where to put harmony.exe (default %LOCALAPPDATA%\harmony\bin); a
#                            relative folder is taken from the current location
#   HARMONY_MIRROR           base URL standing in for https://github.com; https only, plain http
#                            only for a loopback address
#   HARMONY_MINISIGN_PUBKEY  replaces the minisign release key (tests)
#   HARMONY_SSH_PUBKEY       replaces the OpenSSH release key ("ssh-ed25519 AAAA…", tests)
#
# Checks the signature of checksums.txt with minisign.exe when it is on PATH (its trusted comment
# must read "harmony <version> checksums"), else with Windows' own OpenSSH client (ssh-keygen -Y
# verify, checksums.txt.sig); the version in the signed file must be the one asked for, and an
# older harmony never replaces a newer one unless asked for by name. Then checks the archive's
# SHA-256 (Get-FileHash). Downloads are https only and bounded in size and time (a server that
# stalls or drips is given up on, saying so). Nothing unverified is installed. Errors end the
# script with `throw`, never `exit`, so `irm … | iex` keeps the window.
# PATH: when the install folder is not on the user PATH, it is added there (the registry value
# HKCU\Environment\Path, keeping its kind and unexpanded entries), for new terminals, and to this
# session's PATH, so harmony works at once in the window that ran the installer; the output says
# so. When the folder is on PATH already nothing is changed or said; -NoModifyPath changes
# nothing and prints the command that makes this window find harmony.
# Works on Windows PowerShell 5.1 and PowerShell 7.
param(
    [string]$Version = $env:HARMONY_VERSION,
    [switch]$ModifyPath = $true,
    [switch]$NoModifyPath,
    [switch]$Bootstrap,
    [switch]$Uninstall,
    [switch]$InsecureSkipSignature
)

function Install-Harmony {
    param([string]$Version, [switch]$ModifyPath, [switch]$NoModifyPath, [switch]$Bootstrap, [switch]$Uninstall, [switch]$InsecureSkipSignature)
    if (-not $ModifyPath) { $NoModifyPath = $true }

    $ErrorActionPreference = 'Stop'
    Set-StrictMode -Version 2.0
    $ProgressPreference = 'SilentlyContinue'
    [Net.ServicePointManager]::SecurityProtocol = [Net.ServicePointManager]::SecurityProtocol -bor [Net.SecurityProtocolType]::Tls12
    Add-Type -AssemblyName System.Net.Http

    $Repo = 'NationTech/harmony-agent'
    # One Ed25519 release key in two encodings (release/minisign.pub, release/allowed_signers).
    $ReleaseMinisignPubkey = 'RWQny32cpOrd8quZpyFd6mOFNHAQ/NMT/gBXR4a2b8jk7bIpGzDJ3NCC'
    $ReleaseSshPubkey = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIKuZpyFd6mOFNHAQ/NMT/gBXR4a2b8jk7bIpGzDJ3NCC'
    $SshNamespace = 'harmony-release'
    $SshPrincipal = 'harmony-release'
    $MaxArchiveBytes = 128MB  # a harmony archive is far smaller
    $MaxSmallBytes = 1MB      # checksums.txt and signatures
    # As in install.sh: a download stops when it receives less than $SpeedLimit bytes a second
    # over $SpeedTime seconds (a server that stalls or drips), or when it takes longer than its
    # size cap at $MinRate plus $Allowance seconds; the server must answer within
    # $ConnectTimeout + $SpeedTime seconds. (HttpClient.Timeout ends at the response headers.)
    $SpeedLimit = 1024
    $SpeedTime = 30
    $MinRate = 65536
    $Allowance = 300
    $ConnectTimeout = 20

    function Say([string]$Message) { Write-Host "harmony-install: $Message" }
    function Fail([string]$Message, [string[]]$Hints = @()) {
        Write-Host "harmony-install: error: $Message" -ForegroundColor Red
        foreach ($h in $Hints) { Write-Host "harmony-install: hint: $h" }
        throw "harmony-install: $Message"
    }

    function Get-Arch {
        $a = $env:PROCESSOR_ARCHITEW6432
        if (-not $a) { $a = $env:PROCESSOR_ARCHITECTURE }
        switch ($a) {
            'AMD64' { return 'amd64' }
            'ARM64' { return 'arm64' }
            default { Fail "unsupported CPU architecture: $a" @('harmony is built for amd64 and arm64') }
        }
    }

    function Get-ReleaseUrl([string]$Tag, [string]$Asset) {
        if ($Tag -eq 'latest') { return "$Mirror/$Repo/releases/latest/download/$Asset" }
        return "$Mirror/$Repo/releases/download/$Tag/$Asset"
    }

    # https, or plain http to a loopback address when HARMONY_MIRROR itself is one.
    function Test-AllowedUrl([string]$Url) {
        $u = [Uri]$Url
        if ($u.Scheme -eq 'https') { return $true }
        return ($LoopbackHttp -and $u.Scheme -eq 'http' -and $u.IsLoopback)
    }

    # Test-TimedOut ERROR: the error (or one it wraps) is a timeout or a cancellation.
    function Test-TimedOut($Err) {
        for ($e = $Err.Exception; $null -ne $e; $e = $e.InnerException) {
            if ($e -is [System.OperationCanceledException] -or $e -is [System.TimeoutException]) { return $true }
        }
        return $false
    }

    function Stop-Slow([string]$Url, [long]$Received, [long]$Max) {
        Fail "stopped downloading $(Split-Path -Leaf $Url): the server stalled or was too slow ($Received bytes received from $Url)" @(
            "a download must receive $SpeedLimit bytes/s over any $SpeedTime s and finish within $([Math]::Floor($Max / $MinRate) + $Allowance) s; nothing was installed",
            "retry (a stalled server often recovers), or set HARMONY_MIRROR to a faster mirror (now $Mirror)")
    }

    # Get-File URL OUT MAX: $true once OUT holds the body; $false on an HTTP or network error.
    # Redirects are followed here (at most 5), each checked like the first URL; a body larger
    # than MAX is refused, and so is a server that stalls or is too slow (see $SpeedLimit).
    function Get-File([string]$Url, [string]$Out, [long]$Max) {
        $handler = New-Object System.Net.Http.HttpClientHandler
        $handler.AllowAutoRedirect = $false
        $client = New-Object System.Net.Http.HttpClient($handler)
        $client.Timeout = [TimeSpan]::FromSeconds($ConnectTimeout + $SpeedTime)
        $budget = [Math]::Floor($Max / $MinRate) + $Allowance
        try {
            for ($hop = 0; $hop -le 5; $hop++) {
                if (-not (Test-AllowedUrl $Url)) {
                    Fail "refused to download ${Url}: downloads are https only" @("check HARMONY_MIRROR ($Mirror); nothing was installed")
                }
                try {
                    $resp = $client.GetAsync($Url, [System.Net.Http.HttpCompletionOption]::ResponseHeadersRead).GetAwaiter().GetResult()
                } catch {
                    if (Test-TimedOut $_) { Stop-Slow $Url 0 $Max }
                    return $false
                }
                $code = [int]$resp.StatusCode
                if ($code -ge 300 -and $code -lt 400 -and $null -ne $resp.Headers.Location) {
                    $next = $resp.Headers.Location
                    if (-not $next.IsAbsoluteUri) { $next = New-Object Uri ([Uri]$Url), $next }
                    $Url = $next.AbsoluteUri
                    $resp.Dispose()
                    continue
                }
                if (-not $resp.IsSuccessStatusCode) { $resp.Dispose(); return $false }
                $length = $resp.Content.Headers.ContentLength
                $tooLarge = ($null -ne $length -and $length -gt $Max)
                $complete = $false
                $slow = $false
                $total = 0
                if (-not $tooLarge) {
                    $in = $null
                    $file = $null
                    try {
                        $in = $resp.Content.ReadAsStreamAsync().GetAwaiter().GetResult()
                        $file = [IO.File]::Create($Out)
                        $buf = New-Object byte[] 65536
                        # A read of the body has no timeout of its own: each waits at most
                        # $SpeedTime, and every $SpeedTime the bytes received are counted.
                        $clock = [Diagnostics.Stopwatch]::StartNew()
                        $markBytes = 0
                        $markTime = 0.0
                        while ($true) {
                            $read = $in.ReadAsync($buf, 0, $buf.Length)
                            if (-not $read.Wait([TimeSpan]::FromSeconds($SpeedTime))) { $slow = $true; break }
                            $n = $read.Result
                            if ($n -le 0) { break }
                            $total += $n
                            if ($total -gt $Max) { $tooLarge = $true; break }
                            $file.Write($buf, 0, $n)
                            $now = $clock.Elapsed.TotalSeconds
                            if ($now -gt $budget) { $slow = $true; break }
                            if ($now - $markTime -ge $SpeedTime) {
                                if (($total - $markBytes) -lt $SpeedLimit * ($now - $markTime)) { $slow = $true; break }
                                $markBytes = $total
                                $markTime = $now
                            }
                        }
                        $complete = -not $tooLarge -and -not $slow
                    } catch {
                        $complete = $false
                    } finally {
                        if ($file) { $file.Dispose() }
                        if ($in) { $in.Dispose() }
                    }
                }
                $resp.Dispose()
                if (-not $complete) { Remove-Item -Force $Out -ErrorAction SilentlyContinue }
                if ($tooLarge) {
                    Fail "refused $(Split-Path -Leaf $Url): the server sent more than $Max bytes, more than any harmony release file" @("check HARMONY_MIRROR ($Mirror); nothing was installed")
                }
                if ($slow) { Stop-Slow $Url $total $Max }
                return $complete
            }
            return $false
        } finally {
            $client.Dispose()
        }
    }

    # Invoke-Native EXE ARGS [STDIN_FILE]: runs a program with the file's exact bytes on its
    # standard input (PowerShell's own pipe would re-encode them) and returns its exit code and
    # output; its stderr never becomes a PowerShell error (Windows PowerShell 5.1 turns a native
    # program's redirected stderr into a terminating error under ErrorActionPreference Stop).
    function Invoke-Native([string]$Exe, [string[]]$Arguments, [string]$StdinFile) {
        $psi = New-Object System.Diagnostics.ProcessStartInfo
        $psi.FileName = $Exe
        $psi.Arguments = ($Arguments | ForEach-Object { '"' + $_ + '"' }) -join ' '
        $psi.UseShellExecute = $false
        $psi.RedirectStandardInput = $true
        $psi.RedirectStandardOutput = $true
        $psi.RedirectStandardError = $true
        $p = [Diagnostics.Process]::Start($psi)
        if ($StdinFile) {
            $bytes = [IO.File]::ReadAllBytes($StdinFile)
            $p.StandardInput.BaseStream.Write($bytes, 0, $bytes.Length)
        }
        $p.StandardInput.Close()
        $stderr = $p.StandardError.ReadToEndAsync()
        $stdout = $p.StandardOutput.ReadToEnd()
        $p.WaitForExit()
        return @{ Code = $p.ExitCode; Stdout = $stdout; Output = $stdout + $stderr.Result }
    }

    # Compare-SemVer A B: -1, 0 or 1 as A is older than, the same as or newer than B; $null when
    # either is not a version (e.g. "dev", a build from source).
    function Compare-SemVer([string]$A, [string]$B) {
        $re = '^(\d+)\.(\d+)\.(\d+)(?:-([0-9A-Za-z.-]+))?(?:\+.*)?$'
        if ($A -notmatch $re) { return $null }
        $x = $Matches.Clone()
        if ($B -notmatch $re) { return $null }
        $y = $Matches.Clone()
        foreach ($i in 1, 2, 3) {
            if ([long]$x[$i] -lt [long]$y[$i]) { return -1 }
            if ([long]$x[$i] -gt [long]$y[$i]) { return 1 }
        }
        $xp = $x[4]; $yp = $y[4]
        if (-not $xp -and -not $yp) { return 0 }
        if (-not $xp) { return 1 }
        if (-not $yp) { return -1 }
        $xs = $xp.Split('.'); $ys = $yp.Split('.')
        for ($i = 0; $i -lt [Math]::Max($xs.Length, $ys.Length); $i++) {
            if ($i -ge $xs.Length) { return -1 }
            if ($i -ge $ys.Length) { return 1 }
            $xi = $xs[$i]; $yi = $ys[$i]
            if ($xi -eq $yi) { continue }
            $xn = $xi -match '^\d+$'; $yn = $yi -match '^\d+$'
            if ($xn -and $yn) { if ([long]$xi -lt [long]$yi) { return -1 } else { return 1 } }
            if ($xn) { return -1 }
            if ($yn) { return 1 }
            if ([string]::CompareOrdinal($xi, $yi) -lt 0) { return -1 } else { return 1 }
        }
        return 0
    }

    # The user PATH as stored: unexpanded (%USERPROFILE%\…) and with its registry kind, usually
    # REG_EXPAND_SZ, which [Environment]::SetEnvironmentVariable would turn into REG_SZ.
    function Get-UserPath {
        $key = [Microsoft.Win32.Registry]::CurrentUser.OpenSubKey('Environment')
        $value = ''
        $kind = [Microsoft.Win32.RegistryValueKind]::ExpandString
        if ($key) {
            try {
                if ($key.GetValueNames() -contains 'Path') {
                    $value = [string]$key.GetValue('Path', '', [Microsoft.Win32.RegistryValueOptions]::DoNotExpandEnvironmentNames)
                    $kind = $key.GetValueKind('Path')
                }
            } finally { $key.Close() }
        }
        return @{ Value = $value; Kind = $kind }
    }

    function Set-UserPath([string]$Value, [Microsoft.Win32.RegistryValueKind]$Kind) {
        $key = [Microsoft.Win32.Registry]::CurrentUser.CreateSubKey('Environment')
        try { $key.SetValue('Path', $Value, $Kind) } finally { $key.Close() }
        # Setting any user variable through .NET broadcasts WM_SETTINGCHANGE, so new terminals
        # see the new PATH; this one is set and removed again for that purpose only.
        [Environment]::SetEnvironmentVariable('HARMONY_INSTALL_PATH_CHANGED', '1', 'User')
        [Environment]::SetEnvironmentVariable('HARMONY_INSTALL_PATH_CHANGED', $null, 'User')
    }

    function Test-SameDir([string]$Entry, [string]$Dir) {
        return ([Environment]::ExpandEnvironmentVariables($Entry).TrimEnd('\') -eq $Dir.TrimEnd('\'))
    }

    $Mirror = if ($env:HARMONY_MIRROR) { $env:HARMONY_MIRROR.TrimEnd('/') } else { 'https://github.com' }
    $MinisignPubkey = if ($env:HARMONY_MINISIGN_PUBKEY) { $env:HARMONY_MINISIGN_PUBKEY } else { $ReleaseMinisignPubkey }
    $SshPubkey = if ($env:HARMONY_SSH_PUBKEY) { $env:HARMONY_SSH_PUBKEY } else { $ReleaseSshPubkey }
    $InstallDir = if ($env:HARMONY_INSTALL_DIR) { $env:HARMONY_INSTALL_DIR } else { Join-Path $env:LOCALAPPDATA 'harmony\bin' }
    # An absolute folder, a relative one taken from this session's location (not the process's
    # current directory, which [IO.Path]::GetFullPath would use): on PATH, a relative folder would
    # name another folder in every other working directory.
    $InstallDir = $ExecutionContext.SessionState.Path.GetUnresolvedProviderPathFromPSPath($InstallDir)
    $Target = Join-Path $InstallDir 'harmony.exe'

    if ($Uninstall) {
        if (Test-Path $Target) { Remove-Item -Force $Target; Say "removed $Target" } else { Say "no harmony in ${InstallDir}: nothing to remove" }
        $userPath = Get-UserPath
        $entries = @($userPath.Value.Split(';') | Where-Object { $_ })
        $kept = @($entries | Where-Object { -not (Test-SameDir $_ $InstallDir) })
        if ($kept.Count -ne $entries.Count) { Set-UserPath ($kept -join ';') $userPath.Kind }
        return
    }

    $LoopbackHttp = $false
    $mirrorUri = $null
    if (-not [Uri]::TryCreate($Mirror, [UriKind]::Absolute, [ref]$mirrorUri)) {
        Fail "HARMONY_MIRROR must be an https:// URL, got $Mirror" @('unset HARMONY_MIRROR to download from https://github.com')
    }
    if ($mirrorUri.Scheme -ne 'https') {
        if ($mirrorUri.Scheme -ne 'http' -or -not $mirrorUri.IsLoopback) {
            Fail "HARMONY_MIRROR must be an https:// URL, got $Mirror (plain http is accepted only for a loopback address)" @("use the mirror's https:// address")
        }
        $LoopbackHttp = $true
    }

    $arch = Get-Arch
    $tag = 'latest'
    if ($Version) {
        $tag = if ($Version.StartsWith('v')) { $Version } else { "v$Version" }
        if ($tag.Substring(1) -notmatch '^[0-9A-Za-z.+-]+$') { Fail "not a version: $Version" @('e.g. -Version v1.2.3') }
    }

    if ($env:HARMONY_MINISIGN_PUBKEY) {
        $id = $MinisignPubkey
        try {
            $raw = [Convert]::FromBase64String($MinisignPubkey)
            $id = (($raw[9..2] | ForEach-Object { $_.ToString('X2') }) -join '').TrimStart('0')
        } catch { }
        Say "HARMONY_MINISIGN_PUBKEY replaces the release key: trusting key $id instead of harmony's"
    }
    if ($env:HARMONY_SSH_PUBKEY) {
        $id = $SshPubkey
        try {
            $raw = [Convert]::FromBase64String($SshPubkey.Split(' ')[1])
            $sha = [Security.Cryptography.SHA256]::Create()
            $id = 'SHA256:' + [Convert]::ToBase64String($sha.ComputeHash($raw)).TrimEnd('=')
        } catch { }
        Say "HARMONY_SSH_PUBKEY replaces the release key: trusting key $id instead of harmony's"
    }

    # The verifier: minisign, else OpenSSH's ssh-keygen with -Y (8.1 or newer), else none.
    $verifier = $null
    $sshTooOld = $false
    $sshKeygen = $null
    $minisign = $null
    if ($cmd = Get-Command minisign -CommandType Application -ErrorAction SilentlyContinue | Select-Object -First 1) {
        $minisign = $cmd.Path
        $verifier = 'minisign'
    } elseif ($cmd = Get-Command ssh-keygen -CommandType Application -ErrorAction SilentlyContinue | Select-Object -First 1) {
        $sshKeygen = $cmd.Path
        $probe = Invoke-Native $sshKeygen @('-Y', 'check-novalidate', '-n', $SshNamespace, '-s', 'harmony-install-probe.none') $null
        if ($probe.Output -match 'option') { $sshTooOld = $true } else { $verifier = 'ssh-keygen' }
    }
    if (-not $verifier -and -not $InsecureSkipSignature) {
        $what = if ($sshTooOld) { 'ssh-keygen is too old to check signatures (it needs OpenSSH 8.1 or newer) and minisign is not installed' } else { 'neither minisign nor ssh-keygen (OpenSSH 8.1 or newer) is available' }
        Fail "cannot check the release signature: $what" @(
            "add Windows' OpenSSH client (Settings > System > Optional features > OpenSSH Client, or: Add-WindowsCapability -Online -Name OpenSSH.Client~~~~0.0.1.0) or install minisign, then run this again",
            'or, knowingly, install with the SHA-256 checksum alone: -InsecureSkipSignature (anyone who controls the server or the network could then hand you any program)')
    }

    $tmp = Join-Path ([IO.Path]::GetTempPath()) ("harmony-install-" + [Guid]::NewGuid())
    New-Item -ItemType Directory -Path $tmp | Out-Null
    try {
        Say "fetching checksums.txt for $tag from $Mirror"
        $sums = Join-Path $tmp 'checksums.txt'
        if (-not (Get-File (Get-ReleaseUrl $tag 'checksums.txt') $sums $MaxSmallBytes)) {
            Fail "cannot download release $tag from $Mirror (unreachable mirror or unknown version)" @("check that the version exists and that HARMONY_MIRROR ($Mirror) is reachable")
        }

        $signedComment = $null
        if ($verifier -eq 'minisign') {
            $sig = Join-Path $tmp 'checksums.txt.minisig'
            if (-not (Get-File (Get-ReleaseUrl $tag 'checksums.txt.minisig') $sig $MaxSmallBytes)) {
                Fail 'the signature checksums.txt.minisig is missing from the release' @("a release without its signature is refused; check HARMONY_MIRROR ($Mirror)")
            }
            $check = Invoke-Native $minisign @('-V', '-Q', '-P', $MinisignPubkey, '-m', $sums, '-x', $sig) $null
            if ($check.Code -ne 0) { Fail 'the signature of checksums.txt does not verify with the release key' @('either the download was tampered with or the mirror is wrong; nothing was installed') }
            $comment = $check.Stdout.Trim()
            if ($comment -notmatch '^harmony \S+ checksums$') { Fail "the signed trusted comment of checksums.txt does not name a harmony release: $comment" @('nothing was installed') }
            $signedComment = $comment
            Say "signature of checksums.txt verified with minisign (trusted comment: $comment)"
        } elseif ($verifier -eq 'ssh-keygen') {
            $sig = Join-Path $tmp 'checksums.txt.sig'
            if (-not (Get-File (Get-ReleaseUrl $tag 'checksums.txt.sig') $sig $MaxSmallBytes)) {
                Fail 'the signature checksums.txt.sig is missing from the release' @("a release without its signature is refused; check HARMONY_MIRROR ($Mirror)")
            }
            $signers = Join-Path $tmp 'allowed_signers'
            [IO.File]::WriteAllText($signers, "$SshPrincipal namespaces=`"$SshNamespace`" $SshPubkey`n")
            $check = Invoke-Native $sshKeygen @('-Y', 'verify', '-f', $signers, '-I', $SshPrincipal, '-n', $SshNamespace, '-s', $sig) $sums
            if ($check.Code -ne 0) { Fail 'the signature of checksums.txt does not verify with the release key' @('either the download was tampered with or the mirror is wrong; nothing was installed') }
            Say "signature of checksums.txt verified with ssh-keygen (namespace $SshNamespace)"
        } else {
            Write-Host 'harmony-install: WARNING: -InsecureSkipSignature: the signature of checksums.txt was NOT verified;' -ForegroundColor Yellow
            Write-Host 'harmony-install: WARNING: only the SHA-256 checksum from the same server protects this install' -ForegroundColor Yellow
        }

        # The version is bound by the signed checksums.txt: minisign's trusted comment and, on
        # every path, the archive names (harmony_<version>_<os>_<arch>), which must all agree.
        $pattern = "^([0-9a-fA-F]{64}) [ *]?(harmony_([0-9A-Za-z.+-]+)_windows_$arch\.zip)$"
        $line = Get-Content $sums | Where-Object { $_ -match $pattern } | Select-Object -First 1
        if (-not $line) { Fail "this release has no harmony archive for windows/$arch" @('pick another version with -Version') }
        $null = $line -match $pattern
        $want = $Matches[1].ToLower()
        $archive = $Matches[2]
        $targetVersion = $Matches[3]
        foreach ($l in Get-Content $sums) {
            if ($l -match '^[0-9a-fA-F]{64} [ *]?(harmony_.*)$' -and -not $Matches[1].StartsWith("harmony_$($targetVersion)_")) {
                Fail "the signed checksums.txt lists more than one version ($targetVersion and $($Matches[1]))" @('nothing was installed')
            }
        }
        if ($signedComment -and $signedComment -ne "harmony $targetVersion checksums") {
            Fail "the signed trusted comment reads '$signedComment' but checksums.txt lists harmony $targetVersion" @("mixed release files: check HARMONY_MIRROR ($Mirror); nothing was installed")
        }
        if ($tag -ne 'latest' -and $targetVersion -ne $tag.Substring(1)) {
            Fail "the release server answered $tag with the signed files of harmony ${targetVersion}: refused (rollback or mixed release)" @("check HARMONY_MIRROR ($Mirror); nothing was installed")
        }
        # A mirror frozen on an old release serves it as "latest" for ever, so a release lists in
        # its signed checksums.txt an empty file harmony-current-until-YYYYMMDDTHHMMSSZ (UTC):
        # until then it vouches for being the newest (the latest such time counts). Past that
        # time, without one, or with one over a year ahead, say so.
        if ($tag -eq 'latest') {
            $until = $null
            foreach ($l in Get-Content $sums) {
                if ($l.TrimEnd("`r") -match '^[0-9a-fA-F]{64} +\*?harmony-current-until-([0-9]{8}T[0-9]{6}Z)$') {
                    if (-not $until -or [string]::CompareOrdinal($Matches[1], $until) -gt 0) { $until = $Matches[1] }
                }
            }
            $utc = [DateTime]::UtcNow
            $now = $utc.ToString('yyyyMMdd\THHmmss\Z', [Globalization.CultureInfo]::InvariantCulture)
            if (-not $until) {
                Write-Host "harmony-install: WARNING: the newest release this mirror offers, $targetVersion, does not say until when it is current;" -ForegroundColor Yellow
                Write-Host "harmony-install: WARNING: a mirror frozen on an old release cannot be told apart; check HARMONY_MIRROR ($Mirror)" -ForegroundColor Yellow
            } elseif ([string]::CompareOrdinal($now, $until) -gt 0) {
                Write-Host "harmony-install: WARNING: the newest release this mirror offers, $targetVersion, was signed as current only until $until (UTC):" -ForegroundColor Yellow
                Write-Host "harmony-install: WARNING: newer releases may exist and the mirror may be stale or frozen; check HARMONY_MIRROR ($Mirror)" -ForegroundColor Yellow
            } elseif ([string]::CompareOrdinal($until, $utc.AddYears(1).ToString('yyyyMMdd\THHmmss\Z', [Globalization.CultureInfo]::InvariantCulture)) -gt 0) {
                Write-Host "harmony-install: WARNING: the newest release this mirror offers, $targetVersion, claims to be current until $until, more than a year ahead;" -ForegroundColor Yellow
                Write-Host "harmony-install: WARNING: a mirror frozen on an old release cannot be told apart; check HARMONY_MIRROR ($Mirror)" -ForegroundColor Yellow
            }
        }

        $current = $null
        if (Test-Path $Target) { try { $current = (& $Target version --json | ConvertFrom-Json).version } catch { } }
        if ($current -eq $targetVersion) {
            Say "harmony $targetVersion is already installed in ${InstallDir}: nothing to do"
        } else {
            if ($current -and (Compare-SemVer $targetVersion $current) -eq -1) {
                if ($tag -eq 'latest') {
                    Fail "the release server offers harmony $targetVersion as the latest release: refusing to replace the newer harmony $current with $targetVersion" @(
                        "a stale mirror or a rollback attack serves old files; check HARMONY_MIRROR ($Mirror)",
                        "to install $targetVersion anyway, ask for it by name: -Version v$targetVersion")
                }
                Say "replacing the newer harmony $current with $targetVersion, as asked"
            }
            Say "downloading $archive"
            $zip = Join-Path $tmp $archive
            if (-not (Get-File (Get-ReleaseUrl $tag $archive) $zip $MaxArchiveBytes)) {
                Fail "cannot download $archive from $Mirror" @('check your network and HARMONY_MIRROR, then retry')
            }
            $got = (Get-FileHash -Algorithm SHA256 -Path $zip).Hash.ToLower()
            if ($got -ne $want) { Fail "checksum mismatch for ${archive}: expected $want, got $got; the file was discarded" @("check HARMONY_MIRROR ($Mirror) or retry; nothing was installed") }
            $x = Join-Path $tmp 'x'
            Expand-Archive -Path $zip -DestinationPath $x
            New-Item -ItemType Directory -Force -Path $InstallDir | Out-Null
            $staged = Join-Path $InstallDir '.harmony.tmp.exe'
            Copy-Item (Join-Path $x 'harmony.exe') $staged -Force
            Move-Item $staged $Target -Force
            Say "installed harmony $targetVersion to $Target"
        }

        # PATH: the user PATH (new terminals) and this session's (this window).
        $userPath = Get-UserPath
        $entries = @($userPath.Value.Split(';') | Where-Object { $_ })
        $onUserPath = [bool]($entries | Where-Object { Test-SameDir $_ $InstallDir })
        $onSessionPath = [bool](@("$env:Path".Split(';')) | Where-Object { $_ -and (Test-SameDir $_ $InstallDir) })
        if ($onUserPath -and $onSessionPath) {
            # on PATH already: nothing to change or say
        } elseif ($NoModifyPath) {
            Say "$InstallDir is not on your PATH (-NoModifyPath); to use harmony in this window, run: `$env:Path = `"$InstallDir;`$env:Path`""
            Say "to set PATH up for new terminals too, install without -NoModifyPath: irm https://raw.githubusercontent.com/$Repo/main/install.ps1 | iex"
        } else {
            if (-not $onUserPath) {
                Set-UserPath ((@($entries) + $InstallDir) -join ';') $userPath.Kind
                Say "added $InstallDir to your user PATH (HKCU\Environment): new terminals find harmony"
            }
            if (-not $onSessionPath) {
                $env:Path = "$InstallDir;$env:Path"
                Say "added $InstallDir to this window's PATH too: harmony works here now"
            }
        }
        if ($Bootstrap) { & $Target bootstrap }
    } finally {
        Remove-Item -Recurse -Force $tmp -ErrorAction SilentlyContinue
    }
}

Install-Harmony -Version $Version -ModifyPath:$ModifyPath -NoModifyPath:$NoModifyPath -Bootstrap:$Bootstrap -Uninstall:$Uninstall -InsecureSkipSignature:$InsecureSkipSignature
