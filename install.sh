#!/bin/sh
# install.sh — install harmony from its GitHub releases (or a mirror), verified.
#
#   curl -fsSL https://raw.githubusercontent.com/NationTech/harmony-agent/main/install.sh | sh
#   curl -fsSL …/install.sh | sh -s -- --version v1.2.3 --no-modify-path
#
# Flags:
#   --version V       install release V (e.g. v1.2.3) instead of the latest; also the only way to
#                     replace an installed harmony with an older one
#   --no-modify-path  leave PATH and every shell profile alone (see PATH below)
#   --modify-path     set up PATH: the default (accepted for older instructions)
#   --bootstrap       run 'harmony bootstrap' after installing
#   --uninstall       remove the harmony binary this script installed, and its PATH setup
#   --insecure-skip-signature
#                     when neither minisign nor ssh-keygen (OpenSSH 8.1 or newer) is installed,
#                     install with the SHA-256 checksum alone: NOT RECOMMENDED (whoever controls
#                     the server or the network path could hand you any program)
#   -h, --help        show this help
# Environment:
#   HARMONY_VERSION          same as --version
#   HARMONY_INSTALL_DIR      where to put the binary (default ~/.local/bin; /usr/local/bin as root);
#                            a relative folder is taken from the current one
#   HARMONY_MIRROR           base URL standing in for https://github.com (company mirror, air gap);
#                            https only, plain http only for a loopback address (127.0.0.0/8,
#                            localhost, [::1])
#   HARMONY_MINISIGN_PUBKEY  replaces the minisign release key below (tests pass a throwaway key)
#   HARMONY_SSH_PUBKEY       replaces the OpenSSH release key below ("ssh-ed25519 AAAA…", tests)
#   HARMONY_HOME, XDG_DATA_HOME, XDG_CONFIG_HOME, ZDOTDIR, SHELL
#                            where the PATH setup goes and which shells it is for (see PATH);
#                            root's goes in its HOME whatever they say
#
# PATH: when the install folder is not on PATH, install.sh sets it up as rustup does. It writes
# an env file, <data>/env (and env.fish for fish), that puts the folder on PATH unless it is
# there already, and has the shells read it, appending one line marked "# added by harmony
# install.sh" to: ~/.profile (created if missing); ~/.bash_profile, ~/.bash_login and ~/.bashrc
# when they exist; ~/.zshenv (and $ZDOTDIR/.zshenv) when zsh is installed; and
# ${XDG_CONFIG_HOME:-~/.config}/fish/conf.d/harmony.fish when fish is. A file that reads the env
# file already is left as it is, so installing again changes nothing. <data> is HARMONY_HOME,
# else $XDG_DATA_HOME/harmony or ~/.local/share/harmony (macOS too; root's is always that one,
# and root's zsh and fish files are in its HOME). New shells then find harmony; the current one
# does after the one command install.sh prints last, e.g.
#   . "$HOME/.local/share/harmony/env"
# Nothing is changed, and nothing said, when the folder is on PATH already, and nothing is
# changed for root's /usr/local/bin (a system folder) nor in a HOME owned by another user.
# Nor is anything changed, saying why and what to run, when a file or folder of the setup
# (the install folder too) is not the caller's alone: owned by another user, or writable by
# another (a group that is the user's own private group excepted), or in such a folder; nor
# when an env file there was not written by install.sh. --uninstall removes only the lines,
# and the env files, that install.sh wrote, in the same files and under the same conditions.
#
# What it does: downloads checksums.txt and its signature and checks the signature with minisign
# (checksums.txt.minisig, whose trusted comment must read "harmony <version> checksums") or, on a
# machine without minisign, with OpenSSH's ssh-keygen -Y verify (checksums.txt.sig, namespace
# harmony-release). The signed checksums.txt names one version in every archive name: it must be
# the version asked for, and an older version than the one installed is only taken when asked for
# by name. Then it downloads harmony_<version>_<os>_<arch>.tar.gz, checks its SHA-256 and installs
# the binary atomically. Downloads are https only and bounded in size and time (a server that
# stalls or drips is given up on, saying so). Nothing unverified is installed; without a
# verifier the script refuses (see --insecure-skip-signature).
set -eu

REPO="NationTech/harmony-agent"
# One Ed25519 release key in two encodings (release/minisign.pub, release/allowed_signers).
RELEASE_MINISIGN_PUBKEY="RWQny32cpOrd8quZpyFd6mOFNHAQ/NMT/gBXR4a2b8jk7bIpGzDJ3NCC"
RELEASE_SSH_PUBKEY="ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIKuZpyFd6mOFNHAQ/NMT/gBXR4a2b8jk7bIpGzDJ3NCC"
SSH_NAMESPACE="harmony-release"
SSH_PRINCIPAL="harmony-release"
MAX_ARCHIVE_BYTES=134217728 # 128 MiB: a harmony archive is far smaller
MAX_SMALL_BYTES=1048576     # 1 MiB: checksums.txt and signatures
# A download stops when it receives less than SPEED_LIMIT bytes a second over SPEED_TIME seconds
# (a mirror that stalls or drips: 30 s with under 30 KiB is a stuck server, not a slow network),
# or when it takes longer than its size cap at MIN_RATE plus ALLOWANCE seconds (the Go
# installer's budget). curl checks this itself; wget is watched (watch_speed).
SPEED_LIMIT=1024
SPEED_TIME=30
MIN_RATE=65536
ALLOWANCE=300
PROFILE_MARKER="# added by harmony install.sh"
BREAK_MARKER=" (and the line break before it)"
ENV_HEADER="# harmony's shell setup"

TMP_DIR=""

say() { printf 'harmony-install: %s\n' "$*" >&2; }
fail() {
	printf 'harmony-install: error: %s\n' "$1" >&2
	shift
	for h in "$@"; do printf 'harmony-install: hint: %s\n' "$h" >&2; done
	exit 1
}

usage() {
	# From a file, its whole header; piped (curl … | sh -s -- --help, where $0 is the shell), the
	# flags.
	if [ -f "$0" ] && head -n 2 "$0" 2>/dev/null | grep -q 'install.sh'; then
		sed -n '2,/^set -eu/p' "$0" | sed -e '/^set -eu/d' -e 's/^# \{0,1\}//'
		return
	fi
	cat <<'USAGE'
install.sh — install harmony from its GitHub releases (or a mirror), verified.

  curl -fsSL https://raw.githubusercontent.com/NationTech/harmony-agent/main/install.sh | sh
  curl -fsSL …/install.sh | sh -s -- --version v1.2.3 --no-modify-path

Flags:
  --version V       install release V (e.g. v1.2.3) instead of the latest
  --no-modify-path  leave PATH and every shell profile alone
  --bootstrap       run 'harmony bootstrap' after installing
  --uninstall       remove the harmony binary this script installed, and its PATH setup
  --insecure-skip-signature
                    install with the SHA-256 checksum alone when no verifier is installed
                    (NOT RECOMMENDED)
  -h, --help        show this help
Environment: HARMONY_VERSION, HARMONY_INSTALL_DIR, HARMONY_MIRROR, HARMONY_HOME
(download install.sh and run 'sh install.sh --help' for every detail)
USAGE
}

cleanup() {
	if [ -n "$TMP_DIR" ]; then rm -rf "$TMP_DIR"; fi
}

detect_os() {
	case "$(uname -s)" in
	Linux) echo linux ;;
	Darwin) echo darwin ;;
	MINGW* | MSYS* | CYGWIN*) fail "this is Windows: use install.ps1" "irm https://raw.githubusercontent.com/$REPO/main/install.ps1 | iex" ;;
	*) fail "unsupported operating system: $(uname -s)" "harmony runs on Linux, macOS and Windows" ;;
	esac
}

detect_arch() {
	case "$(uname -m)" in
	x86_64 | amd64) echo amd64 ;;
	aarch64 | arm64) echo arm64 ;;
	*) fail "unsupported CPU architecture: $(uname -m)" "harmony is built for amd64 and arm64" ;;
	esac
}

# is_loopback_http URL: URL is plain http to a loopback address (127.0.0.0/8, localhost, [::1]).
is_loopback_http() {
	case "$1" in http://*) ;; *) return 1 ;; esac
	hostport=${1#http://}
	hostport=${hostport%%/*}
	case "$hostport" in
	*@*) return 1 ;;
	\[::1\] | \[::1\]:*) return 0 ;;
	esac
	host=${hostport%%:*}
	case "$host" in
	localhost) return 0 ;;
	*[!0-9.]* | *..* | .* | *.) return 1 ;;
	127.*.*.*) [ "$(printf '%s' "$host" | tr -cd . | wc -c | tr -d ' ')" = 3 ] ;;
	*) return 1 ;;
	esac
}

# check_mirror: HARMONY_MIRROR must be https, or plain http on a loopback address (the local
# release servers of tests and air-gapped setups), which sets LOOPBACK_HTTP=1.
check_mirror() {
	LOOPBACK_HTTP=0
	case "$MIRROR" in
	https://*) return ;;
	esac
	case "$MIRROR" in
	*://*) ;;
	*) fail "HARMONY_MIRROR has no scheme: $MIRROR" "add it: HARMONY_MIRROR=https://$MIRROR (plain http:// only for this machine's loopback address, e.g. http://127.0.0.1:8080)" ;;
	esac
	if ! is_loopback_http "$MIRROR"; then
		fail "HARMONY_MIRROR must be an https:// URL, got $MIRROR (plain http is accepted only for a loopback address)" \
			"use the mirror's https:// address, or unset HARMONY_MIRROR to download from https://github.com"
	fi
	LOOPBACK_HTTP=1
}

# pick_downloader: curl, or GNU wget (busybox's wget cannot refuse a redirect to plain http).
pick_downloader() {
	if command -v curl >/dev/null 2>&1; then
		DOWNLOADER=curl
	elif command -v wget >/dev/null 2>&1 && wget --version 2>/dev/null | head -n 1 | grep -q 'GNU Wget'; then
		DOWNLOADER=wget
	else
		fail "neither curl nor GNU wget is installed" "install curl and run this again"
	fi
}

# budget MAX: the seconds a download of at most MAX bytes may take.
budget() { echo $(($1 / MIN_RATE + ALLOWANCE)); }

# get URL MAX FILE: write URL's body to stdout over https (plain http only from a loopback
# mirror); FILE is where the caller stores it (wget's progress is read there). Returns 28 when
# the server stalled or was too slow, or never answered; the response headers received (none
# when it never answered) are in $TMP_DIR/.headers. curl retries a transient failure only
# within its first 15 s: a stall (30 s) is reported at once, not silently tried 3 times more
# (2 minutes in all); running the script again is the retry.
get() {
	if [ "$DOWNLOADER" = wget ]; then
		wget_get "$1" "$3" "$(budget "$2")"
	elif [ "$LOOPBACK_HTTP" = 1 ]; then
		curl -fsSL --proto '=http,https' --proto-redir '=http,https' --retry 3 --retry-max-time 15 --connect-timeout 20 \
			--speed-limit "$SPEED_LIMIT" --speed-time "$SPEED_TIME" --max-time "$(budget "$2")" --max-filesize "$2" \
			-D "$TMP_DIR/.headers" "$1"
	else
		curl -fsSL --proto '=https' --proto-redir '=https' --tlsv1.2 --retry 3 --retry-max-time 15 --connect-timeout 20 \
			--speed-limit "$SPEED_LIMIT" --speed-time "$SPEED_TIME" --max-time "$(budget "$2")" --max-filesize "$2" \
			-D "$TMP_DIR/.headers" "$1"
	fi
}

# watch_speed PID FILE SECONDS: curl's --speed-limit, --speed-time and --max-time for wget, whose
# -T is an idle timeout that a drip defeats. Once a second it reads FILE's size (written through
# head, a few KiB behind at most); when FILE grew by less than SPEED_LIMIT bytes a second over
# the last SPEED_TIME seconds, or SECONDS have passed, it leaves $TMP_DIR/.slow and kills PID.
# Runs in the background.
watch_speed() {
	trap - INT TERM
	pid=$1
	file=$2
	seconds=$3
	sizes=0 # FILE's size at each of the last SPEED_TIME seconds and the one before, oldest first
	t=0
	while sleep 1; do
		kill -0 "$pid" 2>/dev/null || return 0
		t=$((t + 1))
		size=$(wc -c <"$file" 2>/dev/null | tr -d ' ') || size=0
		size=${size:-0}
		sizes="$sizes $size"
		# shellcheck disable=SC2086 # a list of numbers
		set -- $sizes
		slow=0
		if [ $# -gt "$SPEED_TIME" ]; then
			if [ $((size - $1)) -lt $((SPEED_LIMIT * SPEED_TIME)) ]; then slow=1; fi
			shift
			sizes=$*
		fi
		if [ "$slow" = 1 ] || [ "$t" -ge "$seconds" ]; then
			: >"$TMP_DIR/.slow"
			kill "$pid" 2>/dev/null || :
			return 0
		fi
	done
}

# wget_get URL FILE SECONDS: GNU wget follows a redirect from https to plain http even with
# --https-only, so redirects are followed here, each one checked like the first URL. Each
# request is watched by watch_speed (FILE, SECONDS); returns 28 when it stopped one. Runs in
# fetch's pipeline, a subshell: its traps end with it.
wget_get() {
	url=$1
	hops=0
	while :; do
		case "$url" in
		https://*) https_only=--https-only ;;
		*) if [ "$LOOPBACK_HTTP" = 1 ] && is_loopback_http "$url"; then https_only=""; else
			printf 'harmony-install: refused a redirect to %s: downloads are https only\n' "$url" >&2
			return 1
		fi ;;
		esac
		rm -f "$TMP_DIR/.slow"
		# shellcheck disable=SC2086 # $https_only is one flag or none
		wget -q -S --max-redirect=0 $https_only -T 20 -t 3 -O - "$url" 2>"$TMP_DIR/.headers" &
		pid=$!
		watch_speed "$pid" "$2" "$3" </dev/null >/dev/null 2>&1 &
		watcher=$!
		# A background command ignores Ctrl-C: stop both here.
		trap 'kill "$pid" "$watcher" 2>/dev/null; exit 130' INT TERM
		rc=0
		wait "$pid" 2>/dev/null || rc=$? # (dash would print "Terminated")
		kill "$watcher" 2>/dev/null || :
		wait "$watcher" 2>/dev/null || :
		trap - INT TERM
		if [ -f "$TMP_DIR/.slow" ]; then return 28; fi
		location=$(sed -n 's/^  *[Ll]ocation: *//p' "$TMP_DIR/.headers" | tr -d '\r' | sed -n '$p')
		if [ -z "$location" ]; then return "$rc"; fi
		hops=$((hops + 1))
		if [ "$hops" -gt 5 ]; then return 1; fi
		case "$location" in
		http://* | https://*) url=$location ;;
		/*) url="$(printf '%s' "$url" | sed 's|^\([a-z]*://[^/]*\).*|\1|')$location" ;;
		*) return 1 ;;
		esac
	done
}

# fetch URL FILE MAX: download to FILE, at most MAX bytes; fails on any HTTP error, and on a
# larger file, a stalled, too slow or silent server (deleted) with an error.
fetch() {
	rm -f "$2" "$TMP_DIR/.rc" "$TMP_DIR/.headers"
	# shellcheck disable=SC2094 # get only watches FILE's size while head writes it
	{
		rc=0
		get "$1" "$3" "$2" || rc=$?
		echo "$rc" >"$TMP_DIR/.rc"
	} | head -c "$(($3 + 1))" >"$2"
	size=$(wc -c <"$2" | tr -d ' ')
	rc=$(cat "$TMP_DIR/.rc" 2>/dev/null || echo 1)
	if [ "$size" -gt "$3" ] || [ "$rc" = 63 ]; then # 63: curl refused an announced larger size
		rm -f "$2"
		fail "refused ${1##*/}: the server sent more than $3 bytes, more than any harmony release file" \
			"check HARMONY_MIRROR ($MIRROR); nothing was installed"
	fi
	if [ "$rc" = 28 ]; then # curl's timeouts, and watch_speed's
		rm -f "$2"
		# No response at all (curl's connect timeout has the same code): unreachable, not slow.
		if ! grep -q 'HTTP/' "$TMP_DIR/.headers" 2>/dev/null; then
			fail "stopped downloading ${1##*/}: the server did not answer ($1)" \
				"check that HARMONY_MIRROR ($MIRROR) is reachable from this machine (a firewall or a proxy may block it), then retry; nothing was installed"
		fi
		fail "stopped downloading ${1##*/}: the server stalled or was too slow ($size bytes received from $1)" \
			"a download must receive $SPEED_LIMIT bytes/s over any $SPEED_TIME s and finish within $(budget "$3") s; nothing was installed" \
			"retry (a stalled server often recovers), or set HARMONY_MIRROR to a faster mirror (now $MIRROR)"
	fi
	if [ "$rc" != 0 ]; then
		rm -f "$2"
		return 1
	fi
}

sha256_of() {
	if command -v sha256sum >/dev/null 2>&1; then
		sha256sum "$1" | cut -d' ' -f1
	elif command -v shasum >/dev/null 2>&1; then
		shasum -a 256 "$1" | cut -d' ' -f1
	elif command -v openssl >/dev/null 2>&1; then
		openssl dgst -sha256 "$1" | sed 's/^.*= *//'
	else
		fail "no SHA-256 tool found (sha256sum, shasum or openssl)" "install coreutils or openssl: harmony is never installed unverified"
	fi
}

release_url() { # release_url TAG ASSET
	if [ "$1" = latest ]; then
		echo "$MIRROR/$REPO/releases/latest/download/$2"
	else
		echo "$MIRROR/$REPO/releases/download/$1/$2"
	fi
}

# minisign_key_id KEY: the key id as minisign prints it (bytes 2..9 of the key, a little-endian
# number in hex, without leading zeros).
minisign_key_id() {
	id=$(printf '%s' "$1" | base64 -d 2>/dev/null | od -An -tx1 -j2 -N8 2>/dev/null | tr -d ' \n' | tr 'a-f' 'A-F') || id=""
	if [ "${#id}" != 16 ]; then
		echo "$1"
		return
	fi
	out=""
	while [ -n "$id" ]; do
		rest=${id#??}
		out="${id%"$rest"}$out"
		id=$rest
	done
	while :; do case "$out" in 0?*) out=${out#0} ;; *) break ;; esac; done
	echo "$out"
}

# ssh_key_id KEY: the key's SHA-256 fingerprint as ssh-keygen prints it (else the key itself).
ssh_key_id() {
	printf '%s\n' "$1" >"$TMP_DIR/hook.pub"
	fp=$(ssh-keygen -l -f "$TMP_DIR/hook.pub" 2>/dev/null | cut -d' ' -f2) || fp=""
	if [ -n "$fp" ]; then echo "$fp"; else echo "$1"; fi
}

announce_test_keys() {
	if [ -n "${HARMONY_MINISIGN_PUBKEY:-}" ]; then
		say "HARMONY_MINISIGN_PUBKEY replaces the release key: trusting key $(minisign_key_id "$MINISIGN_PUBKEY") instead of harmony's"
	fi
	if [ -n "${HARMONY_SSH_PUBKEY:-}" ]; then
		say "HARMONY_SSH_PUBKEY replaces the release key: trusting key $(ssh_key_id "$SSH_PUBKEY") instead of harmony's"
	fi
}

# pick_verifier: minisign, else ssh-keygen with -Y (OpenSSH 8.1 or newer), else "" (none).
pick_verifier() {
	VERIFIER=""
	SSH_TOO_OLD=0
	if command -v minisign >/dev/null 2>&1; then
		VERIFIER=minisign
	elif command -v ssh-keygen >/dev/null 2>&1; then
		# Older ssh-keygen has no -Y: its option parser rejects it ("unknown option -- Y").
		probe=$(ssh-keygen -Y check-novalidate -n "$SSH_NAMESPACE" -s "$TMP_DIR/none" </dev/null 2>&1 || true)
		case "$probe" in
		*option*) SSH_TOO_OLD=1 ;;
		*) VERIFIER=ssh-keygen ;;
		esac
	fi
}

refuse_without_verifier() {
	if [ "$SSH_TOO_OLD" = 1 ]; then
		what="ssh-keygen is too old to check signatures (it needs OpenSSH 8.1 or newer) and minisign is not installed"
	else
		what="neither minisign nor ssh-keygen (OpenSSH 8.1 or newer) is installed"
	fi
	fail "cannot check the release signature: $what" \
		"install OpenSSH's client (Debian/Ubuntu: openssh-client; Fedora: openssh; Alpine: openssh-keygen) or minisign, then run this again" \
		"or, knowingly, install with the SHA-256 checksum alone: --insecure-skip-signature (anyone who controls the server or the network could then hand you any program)"
}

# verify_signature SUMS TAG: checks the signature of checksums.txt; sets SIGNED_VERSION to the
# version named by minisign's trusted comment ("" on the ssh path, where the archive names in
# the signed file carry it).
verify_signature() {
	SIGNED_VERSION=""
	case "$VERIFIER" in
	minisign)
		fetch "$(release_url "$2" checksums.txt.minisig)" "$TMP_DIR/checksums.txt.minisig" "$MAX_SMALL_BYTES" ||
			fail "the signature checksums.txt.minisig is missing from the release" \
				"a release without its signature is refused; check HARMONY_MIRROR ($MIRROR)"
		if ! comment=$(minisign -V -Q -P "$MINISIGN_PUBKEY" -m "$1" -x "$TMP_DIR/checksums.txt.minisig" 2>/dev/null); then
			fail "the signature of checksums.txt does not verify with the release key" \
				"either the download was tampered with or the mirror is wrong; nothing was installed"
		fi
		case "$comment" in
		"harmony "*" checksums") SIGNED_VERSION=${comment#harmony } && SIGNED_VERSION=${SIGNED_VERSION% checksums} ;;
		*) fail "the signed trusted comment of checksums.txt does not name a harmony release: $comment" "nothing was installed" ;;
		esac
		say "signature of checksums.txt verified with minisign (trusted comment: $comment)"
		;;
	ssh-keygen)
		fetch "$(release_url "$2" checksums.txt.sig)" "$TMP_DIR/checksums.txt.sig" "$MAX_SMALL_BYTES" ||
			fail "the signature checksums.txt.sig is missing from the release" \
				"a release without its signature is refused; check HARMONY_MIRROR ($MIRROR)"
		printf '%s namespaces="%s" %s\n' "$SSH_PRINCIPAL" "$SSH_NAMESPACE" "$SSH_PUBKEY" >"$TMP_DIR/allowed_signers"
		if ! ssh-keygen -Y verify -f "$TMP_DIR/allowed_signers" -I "$SSH_PRINCIPAL" -n "$SSH_NAMESPACE" \
			-s "$TMP_DIR/checksums.txt.sig" <"$1" >/dev/null 2>&1; then
			fail "the signature of checksums.txt does not verify with the release key" \
				"either the download was tampered with or the mirror is wrong; nothing was installed"
		fi
		say "signature of checksums.txt verified with ssh-keygen (namespace $SSH_NAMESPACE)"
		;;
	*)
		say "WARNING: --insecure-skip-signature: the signature of checksums.txt was NOT verified;"
		say "WARNING: only the SHA-256 checksum from the same server protects this install"
		;;
	esac
}

# archive_name CHECKSUMS OS ARCH: the archive listed for this platform.
archive_name() {
	name=$(sed -n "s/^[0-9a-fA-F]\{64\} [ *]\{0,1\}\(harmony_.*_$2_$3\.tar\.gz\)$/\1/p" "$1" | head -n 1)
	if [ -z "$name" ]; then
		fail "this release has no harmony archive for $2/$3" "pick another version with --version, or build from source"
	fi
	echo "$name"
}

# check_one_version CHECKSUMS VERSION: every harmony archive listed names VERSION.
check_one_version() {
	while read -r _ name; do
		name=${name#\*}
		case "$name" in
		harmony_"$2"_*) ;;
		harmony_*) fail "the signed checksums.txt lists more than one version ($2 and $name)" "nothing was installed" ;;
		esac
	done <"$1"
}

# warn_if_stale CHECKSUMS VERSION: a mirror frozen on an old release serves it as "latest" for
# ever, so a release lists in its signed checksums.txt an empty file named
# harmony-current-until-YYYYMMDDTHHMMSSZ (UTC): until then it vouches for being the newest (the
# latest such time counts). Past that time, without one, or with one over a year ahead (which
# would hide a frozen mirror for good), say so; the install goes on: the release is genuine.
warn_if_stale() {
	signed_until=""
	for t in $(tr -d '\r' <"$1" | sed -n 's/^[0-9a-fA-F]\{64\}  *[*]\{0,1\}harmony-current-until-\([0-9]\{8\}T[0-9]\{6\}Z\)$/\1/p'); do
		if [ -z "$signed_until" ] || LC_ALL=C expr "x$t" \> "x$signed_until" >/dev/null; then
			signed_until=$t
		fi
	done
	now=$(date -u +%Y%m%dT%H%M%SZ 2>/dev/null) || now=""
	if [ -z "$signed_until" ]; then
		say "WARNING: the newest release this mirror offers, $2, does not say until when it is current,"
		say "WARNING: so a mirror frozen on an old release cannot be told apart; check HARMONY_MIRROR ($MIRROR)"
	elif [ -z "$now" ]; then
		:
	elif LC_ALL=C expr "x$now" \> "x$signed_until" >/dev/null; then
		say "WARNING: the newest release this mirror offers, $2, was signed as current only until $signed_until (UTC):"
		say "WARNING: newer releases may exist and the mirror may be stale or frozen; check HARMONY_MIRROR ($MIRROR)"
	elif LC_ALL=C expr "x$signed_until" \> "x$((${now%????????????} + 1))${now#????}" >/dev/null; then
		say "WARNING: the newest release this mirror offers, $2, claims to be current until $signed_until, more than a year ahead,"
		say "WARNING: so a mirror frozen on an old release cannot be told apart; check HARMONY_MIRROR ($MIRROR)"
	fi
}

# semver_cmp A B: prints -1, 0 or 1 as version A is older than, the same as or newer than B;
# prints "?" when either is not a version (e.g. "dev", a build from source).
semver_cmp() {
	a=${1%%+*}
	b=${2%%+*}
	a_core=${a%%-*}
	b_core=${b%%-*}
	a_pre=""
	b_pre=""
	case "$a" in *-*) a_pre=${a#*-} ;; esac
	case "$b" in *-*) b_pre=${b#*-} ;; esac
	for core in "$a_core" "$b_core"; do
		case "$core" in
		*[!0-9.]* | .* | *. | *..*) echo "?" && return ;;
		*.*.*.*) echo "?" && return ;;
		*.*.*) ;;
		*) echo "?" && return ;;
		esac
	done
	for i in 1 2 3; do
		x=$(echo "$a_core" | cut -d. -f"$i")
		y=$(echo "$b_core" | cut -d. -f"$i")
		if [ "$x" -lt "$y" ]; then echo -1 && return; fi
		if [ "$x" -gt "$y" ]; then echo 1 && return; fi
	done
	if [ -z "$a_pre" ] && [ -z "$b_pre" ]; then echo 0 && return; fi
	if [ -z "$a_pre" ]; then echo 1 && return; fi
	if [ -z "$b_pre" ]; then echo -1 && return; fi
	while :; do
		if [ -z "$a_pre" ] && [ -z "$b_pre" ]; then echo 0 && return; fi
		if [ -z "$a_pre" ]; then echo -1 && return; fi
		if [ -z "$b_pre" ]; then echo 1 && return; fi
		x=${a_pre%%.*}
		y=${b_pre%%.*}
		case "$a_pre" in *.*) a_pre=${a_pre#*.} ;; *) a_pre="" ;; esac
		case "$b_pre" in *.*) b_pre=${b_pre#*.} ;; *) b_pre="" ;; esac
		[ "$x" = "$y" ] && continue
		case "$x" in "" | *[!0-9]*) x_num=0 ;; *) x_num=1 ;; esac
		case "$y" in "" | *[!0-9]*) y_num=0 ;; *) y_num=1 ;; esac
		if [ "$x_num" = 1 ] && [ "$y_num" = 1 ]; then
			if [ "$x" -lt "$y" ]; then echo -1; else echo 1; fi
			return
		fi
		if [ "$x_num" = 1 ]; then echo -1 && return; fi
		if [ "$y_num" = 1 ]; then echo 1 && return; fi
		if LC_ALL=C expr "x$x" \< "x$y" >/dev/null; then echo -1; else echo 1; fi
		return
	done
}

installed_version() {
	if [ -x "$1" ]; then "$1" version --json 2>/dev/null | sed -n 's/.*"version": *"\([^"]*\)".*/\1/p' | head -n 1; fi
}

install_binary() { # install_binary SRC DEST_DIR
	mkdir -p "$2" || fail "cannot create $2" "set HARMONY_INSTALL_DIR to a directory you can write"
	tmp=$(mktemp "$2/.harmony.XXXXXX") || fail "cannot write in $2" "set HARMONY_INSTALL_DIR to a directory you can write"
	if ! { cat "$1" >"$tmp" && chmod 0755 "$tmp" && mv -f "$tmp" "$2/harmony"; }; then
		rm -f "$tmp"
		fail "cannot write $2/harmony" "set HARMONY_INSTALL_DIR to a directory you can write"
	fi
}

# data_dir: where the env files live: HARMONY_HOME, else $XDG_DATA_HOME/harmony (when absolute)
# or ~/.local/share/harmony, on macOS too (beside ~/.local/bin, and the README's one line fits
# every Unix; harmony's own data there is in ~/Library/Application Support/harmony). Root's is
# always ~/.local/share/harmony: plain su keeps the user's HARMONY_HOME and XDG_* variables, and
# root's shells must not read a file in a folder of the user's (they are read by root's shells,
# never by harmony, which keeps root's data in /var/lib/harmony).
data_dir() {
	if [ "$MY_UID" != 0 ] && [ -n "${HARMONY_HOME:-}" ]; then
		case "$HARMONY_HOME" in /*) dir=$HARMONY_HOME ;; *) dir="$(pwd)/$HARMONY_HOME" ;; esac
		echo "${dir%/}"
	elif [ "$MY_UID" != 0 ]; then
		case "${XDG_DATA_HOME:-}" in /*) echo "${XDG_DATA_HOME%/}/harmony" ;; *) echo "$HOME/.local/share/harmony" ;; esac
	else
		echo "$HOME/.local/share/harmony"
	fi
}

# fish_conf_dir: fish's conf.d folder ($XDG_CONFIG_HOME/fish/conf.d; root's in its HOME).
fish_conf_dir() {
	case "$MY_UID:${XDG_CONFIG_HOME:-}" in 0:*) echo "$HOME/.config/fish/conf.d" ;; *:/*) echo "${XDG_CONFIG_HOME%/}/fish/conf.d" ;; *) echo "$HOME/.config/fish/conf.d" ;; esac
}

# zdotdir: ZDOTDIR when zsh reads its .zshenv there rather than in HOME (never for root).
zdotdir() {
	case "$MY_UID:${ZDOTDIR:-}" in 0:*) ;; *:/*) if [ "${ZDOTDIR%/}" != "$HOME" ]; then echo "${ZDOTDIR%/}"; fi ;; esac
}

# file_info [-L] PATH: sets F_MODE (as ls prints it, e.g. drwxr-xr-x), F_UID and F_GID of PATH
# (of what a link points to with -L); fails when PATH does not exist.
file_info() {
	if [ "$1" = -L ]; then info=$(LC_ALL=C ls -ldnL "$2" 2>/dev/null) || return 1; else info=$(LC_ALL=C ls -ldn "$1" 2>/dev/null) || return 1; fi
	F_GID=""
	read -r F_MODE _ F_UID F_GID _ <<INFO
$info
INFO
	[ -n "$F_GID" ]
}

# others_can_write: the file file_info described can be written by another user: by others,
# or by its group unless that is the caller's own private group (named as the user, as
# pam_umask's usergroups has it: such users' umask is 002).
others_can_write() {
	case "$F_MODE" in
	??????????+*) return 0 ;; # an ACL: the group bits are its mask, and anyone may be in it
	????????w*) return 0 ;;
	?????w*) [ "$F_GID" != "$MY_PRIVATE_GID" ] ;;
	*) return 1 ;;
	esac
}

# alone [-L] PATH: PATH is the caller's alone (owned by the caller, writable by no other user);
# else WHY says what it is.
alone() {
	p=$1
	if [ "$1" = -L ]; then p=$2; fi
	if ! file_info "$@"; then
		WHY="$p cannot be read"
	elif [ "$F_UID" != "$MY_UID" ]; then
		WHY="$p is not yours"
	elif others_can_write; then
		WHY="other users can write $p"
	else
		return 0
	fi
	return 1
}

# safe_dir DIR: no other user can change what DIR holds: DIR is the caller's alone (or does not
# exist yet and would be made in such a folder, or in a sticky one like /tmp), and each folder
# above it is the caller's or root's and writable by no other user unless sticky; else WHY says
# what is wrong.
safe_dir() {
	# The path as written (the profile names it so): a link on the way that another user owns
	# could be pointed elsewhere later, whatever it leads to now.
	d=$1
	while [ "$d" != / ] && [ "$d" != . ]; do
		if [ -L "$d" ] && file_info "$d" && [ "$F_UID" != "$MY_UID" ] && [ "$F_UID" != 0 ]; then
			WHY="$d (on the way to $1) is a link another user owns"
			return 1
		fi
		d=$(dirname "$d")
	done
	d=$1
	made=0
	while [ ! -d "$d" ]; do
		if [ -e "$d" ] || [ -L "$d" ]; then
			WHY="$d is not a folder"
			return 1
		fi
		made=1
		d=$(dirname "$d")
	done
	if ! d=$(cd -P "$d" 2>/dev/null && pwd -P); then
		WHY="$1 cannot be read"
		return 1
	fi
	if ! alone "$d"; then
		case "$made:$F_MODE" in
		1:?????????[tT]*) if [ "$F_UID" != "$MY_UID" ] && [ "$F_UID" != 0 ]; then return 1; fi ;;
		*) return 1 ;;
		esac
	fi
	while [ "$d" != / ]; do
		d=$(dirname "$d")
		if ! file_info "$d"; then
			WHY="$d cannot be read"
			return 1
		fi
		if [ "$F_UID" != "$MY_UID" ] && [ "$F_UID" != 0 ]; then
			WHY="$d (above $1) is not yours"
			return 1
		fi
		if others_can_write; then
			case "$F_MODE" in ?????????[tT]*) ;; *)
				WHY="other users can write $d (above $1)"
				return 1
				;;
			esac
		fi
	done
}

# safe_file FILE: no other user can change FILE: its folder is safe (safe_dir) and FILE, when it
# exists, is the caller's alone, as is what it links to; else WHY says what is wrong.
safe_file() {
	safe_dir "$(dirname "$1")" || return 1
	if [ -L "$1" ]; then
		if ! file_info -L "$1"; then
			WHY="$1 is a link to nothing"
			return 1
		fi
		if ! alone -L "$1"; then
			WHY="$1 links to a file that is not yours alone ($WHY)"
			return 1
		fi
	elif [ -e "$1" ]; then
		alone "$1"
	fi
}

# quoted PATH: PATH as a double-quoted word of sh and fish, "$HOME/…" when it is in HOME.
# Fails when the word cannot hold it as it is (", \, $, ` or a newline).
quoted() {
	rest=$1
	home_prefix=""
	if [ -n "${HOME:-}" ] && [ "$HOME" != / ]; then
		case "$1" in "$HOME"/*)
			rest=${1#"$HOME"/}
			# shellcheck disable=SC2016 # expanded by the shell that reads the word
			home_prefix='$HOME/'
			;;
		esac
	fi
	case "$rest" in *'"'* | *\\* | *'$'* | *'`'* | *"
"*) return 1 ;; esac
	printf '"%s%s"' "$home_prefix" "$rest"
}

# has_shell NAME: NAME is the user's shell or installed.
has_shell() {
	case "${SHELL:-}" in */"$1") return 0 ;; esac
	command -v "$1" >/dev/null 2>&1
}

# ours FILE: FILE is an env file install.sh wrote (its first line is ENV_HEADER's), or is not
# there; a link is never one.
ours() {
	if [ -L "$1" ]; then return 1; fi
	if [ ! -e "$1" ]; then return 0; fi
	[ -f "$1" ] || return 1
	first=$(head -n 1 "$1" 2>/dev/null) || return 1
	case "$first" in "$ENV_HEADER"*"(written by install.sh"*) return 0 ;; esac
	return 1
}

# replace FILE TMP: moves TMP (a file of the caller's in FILE's folder) over FILE.
replace() {
	if [ -d "$1" ] || ! mv -f "$2" "$1" 2>/dev/null; then
		rm -f "$2"
		return 1
	fi
}

# write_file FILE CONTENT: FILE, an env file of install.sh's, holds CONTENT (and a newline),
# written atomically (mode 644) through a file made by mktemp; a FILE that holds it already is
# not touched.
write_file() {
	if [ -f "$1" ] && [ ! -L "$1" ] && [ "$(cat "$1" 2>/dev/null)" = "$2" ]; then return 0; fi
	(umask 022 && mkdir -p "$(dirname "$1")") 2>/dev/null || return 1
	tmp=$(mktemp "$1.XXXXXX" 2>/dev/null) || return 1
	if ! { printf '%s\n' "$2" >"$tmp" && chmod 644 "$tmp"; } 2>/dev/null; then
		rm -f "$tmp"
		return 1
	fi
	replace "$1" "$tmp"
}

# add_line FILE LINE READS: appends LINE, marked, to FILE (created if missing) unless FILE holds
# READS already; adds FILE to CHANGED, or to FAILED when it cannot be written. Appends only, so
# the user's lines, the file's mode and a symbolic link stay as they are. A file whose last line
# lacks its line break gets one first, and the marked line says so (BREAK_MARKER), so that
# --uninstall takes both away.
add_line() {
	if [ -f "$1" ] && grep -qF "$3" "$1" 2>/dev/null; then return 0; fi
	sep=""
	marker=$PROFILE_MARKER
	if [ -s "$1" ] && [ "$(wc -l <"$1" | tr -d ' ')" != "$(grep -c '' "$1")" ]; then
		sep=$(printf '\n.') && sep=${sep%.}
		marker="$PROFILE_MARKER$BREAK_MARKER"
	fi
	if { (umask 022 && mkdir -p "$(dirname "$1")") && [ ! -d "$1" ] && (umask 022 && printf '%s%s %s\n' "$sep" "$2" "$marker" >>"$1"); } 2>/dev/null; then
		CHANGED="${CHANGED:+$CHANGED, }$1"
	else
		FAILED="${FAILED:+$FAILED, }$1"
	fi
}

# refuse_path DIR WHY: says that PATH was not set up for new shells, and why, and how to use
# harmony anyway.
refuse_path() {
	say "$1 is not on your PATH, and $2: shell profiles left alone (another user could change what your shells run)"
	say "to use harmony in this shell, run: export PATH=$(sq "$1"):\"\$PATH\""
	say "to find it in new shells too, add that line to your shell's profile yourself"
}

# sq WORD: WORD single-quoted for sh, safe to paste whatever it holds.
sq() {
	printf "'%s'" "$(printf '%s' "$1" | sed "s/'/'\\\\''/g")"
}

# ensure_path DIR MODIFY: when DIR is not on PATH, sets up the shells to put it there (MODIFY=1)
# and prints the command that makes this shell find harmony; or says how to (MODIFY=0). Only
# files and folders that are the caller's alone are read or written (safe_dir, safe_file):
# another user able to change one could change what the caller's shells run.
ensure_path() {
	case ":$PATH:" in *":$1:"*) return ;; esac
	now="export PATH=$(sq "$1"):\"\$PATH\""
	if [ "$2" != 1 ]; then
		say "$1 is not on your PATH (--no-modify-path); to use harmony in this shell, run: $now"
		say "to set PATH up for new shells too, install without --no-modify-path: curl -fsSL https://raw.githubusercontent.com/$REPO/main/install.sh | sh"
		return
	fi
	case "$1" in *:*)
		say "$1 is not on your PATH, and PATH cannot hold a folder whose name has ':': run harmony as $1/harmony, or install it elsewhere (HARMONY_INSTALL_DIR)"
		return
		;;
	esac
	if [ "$MY_UID" = 0 ] && [ "$1" = /usr/local/bin ]; then
		say "$1 is not on this shell's PATH; it is a system folder, so nothing was set up: to use harmony here, run: $now"
		return
	fi
	if [ -z "${HOME:-}" ] || [ ! -O "$HOME" ]; then
		say "$1 is not on your PATH, and HOME (${HOME:-unset}) is not yours: its shell profiles are left alone"
		say "to use harmony in this shell, run: $now"
		return
	fi
	data=$(data_dir)
	if ! dir_word=$(quoted "$1") || ! env_word=$(quoted "$data/env"); then
		say "$1 is not on your PATH, and its name (or $data's) holds a character a shell profile line cannot quote: shell profiles left alone"
		say "to use harmony in this shell, run: $now"
		return
	fi
	# Every file to be written, and every folder, is checked before any is written.
	profiles="$HOME/.profile"
	for name in .bash_profile .bash_login .bashrc; do
		if [ -f "$HOME/$name" ] || [ -L "$HOME/$name" ]; then profiles="$profiles
$HOME/$name"; fi
	done
	if has_shell zsh; then
		zdot=$(zdotdir)
		if [ -n "$zdot" ]; then profiles="$profiles
$zdot/.zshenv"; fi
		profiles="$profiles
$HOME/.zshenv"
	fi
	fish=0
	conf=$(fish_conf_dir)
	if has_shell fish; then fish=1; fi
	if ! safe_dir "$1" || ! safe_dir "$data"; then
		refuse_path "$1" "$WHY"
		return
	fi
	for f in "$data/env" "$data/env.fish"; do
		if ! ours "$f"; then
			refuse_path "$1" "$f was not written by install.sh (it is in the way)"
			return
		fi
	done
	if [ "$fish" = 1 ] && ! safe_file "$conf/harmony.fish"; then
		refuse_path "$1" "$WHY"
		return
	fi
	old_ifs=$IFS
	IFS='
'
	set -f # the names are paths, never patterns
	for f in $profiles; do
		IFS=$old_ifs
		if ! safe_file "$f"; then
			set +f
			refuse_path "$1" "$WHY"
			return
		fi
	done
	set +f
	IFS=$old_ifs
	env_sh="$ENV_HEADER (written by install.sh, read by your shell's profile): puts
# harmony's install folder on PATH unless it is there already.
case \":\${PATH:-}:\" in
*:$dir_word:*) ;;
*) export PATH=${dir_word%\"}\${PATH:+:\$PATH}\" ;;
esac"
	if ! write_file "$data/env" "$env_sh"; then
		say "$1 is not on your PATH, and $data/env cannot be written: shell profiles left alone"
		say "to use harmony in this shell, run: $now"
		return
	fi
	# The folder it is in: made by this install, unless another user made it first.
	if ! safe_dir "$data"; then
		refuse_path "$1" "$WHY"
		return
	fi
	CHANGED=""
	FAILED=""
	reads=". $env_word"
	line="if [ -f $env_word ]; then $reads; fi"
	IFS='
'
	set -f
	for f in $profiles; do
		IFS=$old_ifs
		add_line "$f" "$line" "$reads"
	done
	set +f
	IFS=$old_ifs
	if [ "$fish" = 1 ]; then
		fish_word="${env_word%\"}.fish\""
		env_fish="$ENV_HEADER for fish (written by install.sh, read from fish's conf.d): puts
# harmony's install folder on PATH unless it is there already.
if not contains $dir_word \$PATH
    set -gx PATH $dir_word \$PATH
end"
		if write_file "$data/env.fish" "$env_fish"; then
			add_line "$conf/harmony.fish" "test -f $fish_word; and source $fish_word" "source $fish_word"
		else
			fish=0
			FAILED="${FAILED:+$FAILED, }$data/env.fish"
		fi
	fi
	env_files="$data/env"
	if [ "$fish" = 1 ]; then env_files="$env_files (fish: env.fish)"; fi
	if [ -n "$CHANGED" ]; then
		say "set up PATH for new shells: added a line reading $env_files, which puts $1 on PATH, to $CHANGED"
	elif [ -z "$FAILED" ]; then
		say "your shell profiles already read $env_files, which puts $1 on PATH in new shells"
	fi
	if [ -n "$FAILED" ]; then
		say "could not write $FAILED: add this line to it yourself: $line"
	fi
	case "${SHELL:-}" in
	*/fish) if [ "$fish" = 1 ]; then say "to use harmony in this shell, run: source $fish_word"; else say "to use harmony in this shell, run: set -gx PATH $dir_word \$PATH"; fi ;;
	*)
		say "to use harmony in this shell, run: $reads"
		if [ "$fish" = 1 ]; then say "(in fish: source $fish_word)"; fi
		;;
	esac
}

# mode_of FILE: FILE's permissions (file_info) as chmod's symbolic mode, e.g. u=rw,g=r,o=r.
mode_of() {
	file_info "$1" || return 1
	m=${F_MODE#?}
	out=""
	for who in u g o; do
		rest=${m#???}
		bits=${m%"$rest"}
		m=$rest
		perm=""
		case "$bits" in r*) perm=r ;; esac
		case "$bits" in ?w*) perm="${perm}w" ;; esac
		case "$bits" in ??[xst]*) perm="${perm}x" ;; esac
		out="${out:+$out,}$who=$perm"
	done
	echo "$out"
}

# drop_lines FILE [OWN]: removes the lines install.sh added to FILE (they carry PROFILE_MARKER),
# and the line break it added before one (BREAK_MARKER) when that line is still the last,
# keeping the others, the file's mode and a symbolic link; a file of install.sh's own (OWN=own)
# left empty goes. A file another user could change is left alone, saying so. The new content
# goes to a file made by mktemp in FILE's folder, then is moved over FILE (or, for a link,
# copied into the file it links to).
drop_lines() {
	if [ ! -f "$1" ] || ! grep -qF "$PROFILE_MARKER" "$1" 2>/dev/null; then return 0; fi
	if ! safe_file "$1"; then
		say "left $1 alone ($WHY): remove the lines ending with \"$PROFILE_MARKER\" from it yourself"
		return 0
	fi
	rc=0
	strip=0
	if sed -n '$p' "$1" 2>/dev/null | grep -qF "$PROFILE_MARKER$BREAK_MARKER"; then strip=1; fi
	tmp=$(mktemp "$1.XXXXXX" 2>/dev/null) || tmp=""
	if [ -z "$tmp" ]; then
		rc=1
	elif [ "$strip" = 1 ]; then
		{ kept=$(grep -vF "$PROFILE_MARKER" "$1") && printf '%s' "$kept" >"$tmp"; } 2>/dev/null || rc=1
	else
		{ grep -vF "$PROFILE_MARKER" "$1" >"$tmp" || [ $? = 1 ]; } 2>/dev/null || rc=1
	fi
	if [ "$rc" = 0 ] && [ "${2:-}" = own ] && ! grep -q '[^[:space:]]' "$tmp"; then
		rm -f "$1"
	elif [ "$rc" = 0 ] && [ -L "$1" ]; then
		{ cat "$tmp" >"$1"; } 2>/dev/null || rc=1
	elif [ "$rc" = 0 ]; then
		if mode=$(mode_of "$1") && chmod "$mode" "$tmp" 2>/dev/null && replace "$1" "$tmp"; then tmp=""; else rc=1; fi
	fi
	if [ -n "$tmp" ]; then rm -f "$tmp"; fi
	if [ "$rc" = 0 ]; then
		DROPPED="${DROPPED:+$DROPPED, }$1"
	else
		say "could not remove harmony's lines from $1 (they end with \"$PROFILE_MARKER\"): remove them yourself"
	fi
}

uninstall() { # uninstall DIR
	if [ ! -e "$1/harmony" ]; then
		say "no harmony in $1: nothing to remove"
	else
		# What the binary installed stays unless it removes it first: say so while it can.
		say "a runtime harmony installed (k3s, or k3d's containers) stays: remove it first with: $1/harmony runtime uninstall --purge"
		rm -f "$1/harmony"
		say "removed $1/harmony"
	fi
	# The PATH setup: every file install.sh writes, and the one profile per shell (.zshrc,
	# config.fish, …) that --modify-path wrote before it was the default; the caller's only.
	if [ -z "${HOME:-}" ] || [ ! -O "$HOME" ]; then
		say "HOME (${HOME:-unset}) is not yours: its shell profiles are left alone"
		return
	fi
	DROPPED=""
	for name in .profile .bash_profile .bash_login .bashrc .zshenv .zshrc .config/fish/config.fish; do
		drop_lines "$HOME/$name"
	done
	zdot=$(zdotdir)
	if [ -n "$zdot" ]; then drop_lines "$zdot/.zshenv"; fi
	drop_lines "$(fish_conf_dir)/harmony.fish" own
	data=$(data_dir)
	for f in "$data/env" "$data/env.fish"; do
		if [ ! -e "$f" ] && [ ! -L "$f" ]; then continue; fi
		if ! ours "$f"; then
			say "kept $f: it was not written by install.sh"
		elif ! safe_dir "$data"; then
			say "left $f alone ($WHY): remove it yourself"
		else
			rm -f "$f"
		fi
	done
	if [ -n "$DROPPED" ]; then say "removed harmony's PATH setup from $DROPPED"; fi
	if [ -d "$data" ]; then say "kept harmony's data and download cache in $data: remove that folder to drop them"; fi
}

main() {
	version="${HARMONY_VERSION:-}"
	modify_path=1
	bootstrap=0
	do_uninstall=0
	skip_signature=0
	while [ $# -gt 0 ]; do
		case "$1" in
		--version) [ $# -ge 2 ] || fail "--version needs a value, e.g. --version v1.2.3"; version="$2"; shift ;;
		--version=*) version="${1#--version=}" ;;
		--modify-path) modify_path=1 ;;
		--no-modify-path) modify_path=0 ;;
		--bootstrap) bootstrap=1 ;;
		--uninstall) do_uninstall=1 ;;
		--insecure-skip-signature) skip_signature=1 ;;
		-h | --help) usage; exit 0 ;;
		*) fail "unknown argument: $1" "run with --help for usage" ;;
		esac
		shift
	done

	MIRROR="${HARMONY_MIRROR:-https://github.com}"
	MIRROR="${MIRROR%/}"
	MINISIGN_PUBKEY="${HARMONY_MINISIGN_PUBKEY:-$RELEASE_MINISIGN_PUBKEY}"
	SSH_PUBKEY="${HARMONY_SSH_PUBKEY:-$RELEASE_SSH_PUBKEY}"
	MY_UID=$(id -u)
	# The caller's private group (named as the user), whose write bit does not let others in.
	# Never root's (group 0 is often shared), and only a group that names no other member.
	MY_PRIVATE_GID=""
	if [ "$MY_UID" != 0 ] && user=$(id -un 2>/dev/null) && [ -n "$user" ] && [ "$user" = "$(id -gn 2>/dev/null)" ] &&
		members=$(getent group "$user" 2>/dev/null) && [ -z "${members##*:}" ]; then
		MY_PRIVATE_GID=$(id -g)
	fi
	if [ "$MY_UID" = 0 ]; then default_dir=/usr/local/bin; else default_dir="$HOME/.local/bin"; fi
	install_dir="${HARMONY_INSTALL_DIR:-$default_dir}"
	# An absolute folder: a relative one on PATH would name another folder in every other one.
	case "$install_dir" in /*) ;; *) install_dir="$(pwd)/$install_dir" ;; esac
	case "$install_dir" in /) ;; */) install_dir=${install_dir%/} ;; esac

	if [ "$do_uninstall" = 1 ]; then
		uninstall "$install_dir"
		return
	fi

	os=$(detect_os)
	arch=$(detect_arch)
	tag=latest
	if [ -n "$version" ]; then
		case "$version" in v*) tag="$version" ;; *) tag="v$version" ;; esac
		case "${tag#v}" in "" | *[!0-9A-Za-z.+-]*) fail "not a version: $version" "e.g. --version v1.2.3" ;; esac
	fi
	check_mirror
	pick_downloader

	TMP_DIR=$(mktemp -d 2>/dev/null || mktemp -d -t harmony)
	trap cleanup EXIT
	trap 'cleanup; exit 130' INT TERM

	announce_test_keys
	# The folder harmony goes into, and is run from to learn its version: another user able to
	# change it could swap the binary this script runs or installs.
	if ! safe_dir "$install_dir"; then
		fail "not installing into $install_dir: $WHY" "pick a folder only you (or root) can change: HARMONY_INSTALL_DIR=…"
	fi
	pick_verifier
	if [ -z "$VERIFIER" ] && [ "$skip_signature" != 1 ]; then
		refuse_without_verifier
	fi

	say "fetching checksums.txt for $tag from $MIRROR"
	if ! fetch "$(release_url "$tag" checksums.txt)" "$TMP_DIR/checksums.txt" "$MAX_SMALL_BYTES"; then
		fail "cannot download release $tag from $MIRROR (unreachable mirror or unknown version)" \
			"check that the version exists and that HARMONY_MIRROR ($MIRROR) is reachable"
	fi
	verify_signature "$TMP_DIR/checksums.txt" "$tag"

	# The version is bound by the signed checksums.txt: by minisign's trusted comment and, on
	# every path, by the archive names (harmony_<version>_<os>_<arch>), which must all agree.
	archive=$(archive_name "$TMP_DIR/checksums.txt" "$os" "$arch")
	want=$(sed -n "s/^\([0-9a-fA-F]\{64\}\) [ *]\{0,1\}$archive$/\1/p" "$TMP_DIR/checksums.txt" | head -n 1 | tr 'A-F' 'a-f')
	target_version=${archive#harmony_}
	target_version=${target_version%_"${os}"_"${arch}".tar.gz}
	case "$target_version" in "" | *[!0-9A-Za-z.+-]*) fail "the release names an invalid version: $target_version" "nothing was installed" ;; esac
	check_one_version "$TMP_DIR/checksums.txt" "$target_version"
	if [ -n "$SIGNED_VERSION" ] && [ "$SIGNED_VERSION" != "$target_version" ]; then
		fail "the signed trusted comment names harmony $SIGNED_VERSION but checksums.txt lists harmony $target_version" \
			"mixed release files: check HARMONY_MIRROR ($MIRROR); nothing was installed"
	fi
	if [ "$tag" != latest ] && [ "$target_version" != "${tag#v}" ]; then
		fail "the release server answered $tag with the signed files of harmony $target_version: refused (rollback or mixed release)" \
			"check HARMONY_MIRROR ($MIRROR); nothing was installed"
	fi
	if [ "$tag" = latest ]; then
		warn_if_stale "$TMP_DIR/checksums.txt" "$target_version"
	fi

	current=$(installed_version "$install_dir/harmony")
	if [ "$current" = "$target_version" ]; then
		say "harmony $target_version is already installed in $install_dir: nothing to do"
	else
		if [ -n "$current" ] && [ "$(semver_cmp "$target_version" "$current")" = -1 ]; then
			if [ "$tag" = latest ]; then
				fail "the release server offers harmony $target_version as the latest release: refusing to replace the newer harmony $current with $target_version" \
					"a stale mirror or a rollback attack serves old files; check HARMONY_MIRROR ($MIRROR)" \
					"to install $target_version anyway, ask for it by name: --version v$target_version"
			fi
			say "replacing the newer harmony $current with $target_version, as asked"
		fi
		say "downloading $archive"
		fetch "$(release_url "$tag" "$archive")" "$TMP_DIR/$archive" "$MAX_ARCHIVE_BYTES" ||
			fail "cannot download $archive from $MIRROR" "check your network and HARMONY_MIRROR, then retry"
		got=$(sha256_of "$TMP_DIR/$archive")
		if [ "$got" != "$want" ]; then
			fail "checksum mismatch for $archive: expected $want, got $got; the file was discarded" \
				"check HARMONY_MIRROR ($MIRROR) or retry; nothing was installed"
		fi
		mkdir "$TMP_DIR/x"
		tar -xzf "$TMP_DIR/$archive" -C "$TMP_DIR/x" harmony || fail "cannot unpack $archive" "retry; nothing was installed"
		install_binary "$TMP_DIR/x/harmony" "$install_dir"
		say "installed harmony $target_version to $install_dir/harmony"
	fi
	ensure_path "$install_dir" "$modify_path"
	if [ "$bootstrap" = 1 ]; then
		"$install_dir/harmony" bootstrap
	fi
}

main "$@"
