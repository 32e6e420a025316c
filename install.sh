#!/bin/sh
# install.sh — install harmony from its GitHub releases (or a mirror), verified.
#
#   curl -fsSL https://raw.githubusercontent.com/NationTech/harmony-agent/main/install.sh | sh
#   curl -fsSL …/install.sh | sh -s -- --version v1.2.3 --modify-path
#
# Flags:
#   --version V     install release V (e.g. v1.2.3) instead of the latest
#   --modify-path   add the install directory to your shell profile (once)
#   --bootstrap     run 'harmony bootstrap' after installing
#   --uninstall     remove the harmony binary this script installed
#   -h, --help      show this help
# Environment:
#   HARMONY_VERSION          same as --version
#   HARMONY_INSTALL_DIR      where to put the binary (default ~/.local/bin; /usr/local/bin as root)
#   HARMONY_MIRROR           base URL standing in for https://github.com (company mirror, air gap)
#   HARMONY_MINISIGN_PUBKEY  minisign public key that signs checksums.txt (default: the project's
#                            release key below; tests pass a throwaway key)
#
# What it does: downloads harmony_<version>_<os>_<arch>.tar.gz and checksums.txt, checks the
# archive's SHA-256 against checksums.txt and, when minisign is installed, the signature of
# checksums.txt; then installs the binary atomically. Nothing unverified is installed.
set -eu

REPO="NationTech/harmony-agent"
RELEASE_PUBKEY="RWQny32cpOrd8quZpyFd6mOFNHAQ/NMT/gBXR4a2b8jk7bIpGzDJ3NCC"
PROFILE_MARKER="# added by harmony install.sh"

TMP_DIR=""

say() { printf 'harmony-install: %s\n' "$*" >&2; }
fail() {
	printf 'harmony-install: error: %s\n' "$1" >&2
	shift
	for h in "$@"; do printf 'harmony-install: hint: %s\n' "$h" >&2; done
	exit 1
}

usage() {
	sed -n '2,/^set -eu/p' "$0" 2>/dev/null | sed -e '/^set -eu/d' -e 's/^# \{0,1\}//' || true
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

# fetch URL FILE: download to FILE; fails on any HTTP error.
fetch() {
	if command -v curl >/dev/null 2>&1; then
		curl -fsSL --retry 3 --connect-timeout 20 -o "$2" "$1"
	elif command -v wget >/dev/null 2>&1; then
		wget -q -T 20 -t 3 -O "$2" "$1"
	else
		fail "neither curl nor wget is installed" "install curl and run this again"
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

verify_signature() { # verify_signature CHECKSUMS TAG
	if ! command -v minisign >/dev/null 2>&1; then
		say "minisign is not installed: only the SHA-256 checksum was checked, not the release signature"
		return
	fi
	if ! fetch "$(release_url "$2" checksums.txt.minisig)" "$TMP_DIR/checksums.txt.minisig"; then
		fail "the signature checksums.txt.minisig is missing from the release" \
			"a release without its signature is refused; check HARMONY_MIRROR ($MIRROR)"
	fi
	if ! minisign -Vq -P "$PUBKEY" -m "$1" -x "$TMP_DIR/checksums.txt.minisig" >/dev/null 2>&1; then
		fail "the signature of checksums.txt does not verify with the release key" \
			"either the download was tampered with or the mirror is wrong; nothing was installed"
	fi
	say "signature of checksums.txt verified"
}

# archive_name CHECKSUMS OS ARCH: the archive listed for this platform.
archive_name() {
	name=$(sed -n "s/^[0-9a-fA-F]\{64\} [ *]\{0,1\}\(harmony_.*_$2_$3\.tar\.gz\)$/\1/p" "$1" | head -n 1)
	if [ -z "$name" ]; then
		fail "this release has no harmony archive for $2/$3" "pick another version with --version, or build from source"
	fi
	echo "$name"
}

installed_version() {
	if [ -x "$1" ]; then "$1" version --json 2>/dev/null | sed -n 's/.*"version": *"\([^"]*\)".*/\1/p'; fi
}

install_binary() { # install_binary SRC DEST_DIR
	mkdir -p "$2" || fail "cannot create $2" "set HARMONY_INSTALL_DIR to a directory you can write"
	tmp="$2/.harmony.tmp.$$"
	if ! { cp "$1" "$tmp" && chmod 0755 "$tmp" && mv -f "$tmp" "$2/harmony"; }; then
		rm -f "$tmp"
		fail "cannot write $2/harmony" "set HARMONY_INSTALL_DIR to a directory you can write"
	fi
}

profile_file() {
	case "${SHELL:-}" in
	*/zsh) echo "$HOME/.zshrc" ;;
	*/bash) if [ -f "$HOME/.bashrc" ]; then echo "$HOME/.bashrc"; else echo "$HOME/.bash_profile"; fi ;;
	*/fish) echo "$HOME/.config/fish/config.fish" ;;
	*) echo "$HOME/.profile" ;;
	esac
}

ensure_path() { # ensure_path DIR MODIFY
	case ":$PATH:" in *":$1:"*) return ;; esac
	if [ "$2" = 1 ]; then
		profile=$(profile_file)
		if [ -f "$profile" ] && grep -qF "$PROFILE_MARKER" "$profile"; then
			say "$profile already adds $1 to PATH; open a new shell"
			return
		fi
		mkdir -p "$(dirname "$profile")"
		case "$profile" in
		*.fish) printf '\nfish_add_path "%s" %s\n' "$1" "$PROFILE_MARKER" >>"$profile" ;;
		*) # shellcheck disable=SC2016 # $PATH is expanded by the profile, not here
			printf '\nexport PATH="%s:$PATH" %s\n' "$1" "$PROFILE_MARKER" >>"$profile" ;;
		esac
		say "added $1 to PATH in $profile; open a new shell or run: export PATH=\"$1:\$PATH\""
	else
		say "$1 is not on your PATH; add it with: export PATH=\"$1:\$PATH\" (or re-run with --modify-path)"
	fi
}

uninstall() { # uninstall DIR
	if [ ! -e "$1/harmony" ]; then
		say "no harmony in $1: nothing to remove"
		return
	fi
	rm -f "$1/harmony"
	profile=$(profile_file)
	if [ -f "$profile" ] && grep -qF "$PROFILE_MARKER" "$profile"; then
		grep -vF "$PROFILE_MARKER" "$profile" >"$profile.harmony-tmp" && mv "$profile.harmony-tmp" "$profile"
	fi
	say "removed $1/harmony"
}

main() {
	version="${HARMONY_VERSION:-}"
	modify_path=0
	bootstrap=0
	do_uninstall=0
	while [ $# -gt 0 ]; do
		case "$1" in
		--version) [ $# -ge 2 ] || fail "--version needs a value, e.g. --version v1.2.3"; version="$2"; shift ;;
		--version=*) version="${1#--version=}" ;;
		--modify-path) modify_path=1 ;;
		--bootstrap) bootstrap=1 ;;
		--uninstall) do_uninstall=1 ;;
		-h | --help) usage; exit 0 ;;
		*) fail "unknown argument: $1" "run with --help for usage" ;;
		esac
		shift
	done

	MIRROR="${HARMONY_MIRROR:-https://github.com}"
	MIRROR="${MIRROR%/}"
	PUBKEY="${HARMONY_MINISIGN_PUBKEY:-$RELEASE_PUBKEY}"
	if [ "$(id -u)" = 0 ]; then default_dir=/usr/local/bin; else default_dir="$HOME/.local/bin"; fi
	install_dir="${HARMONY_INSTALL_DIR:-$default_dir}"

	if [ "$do_uninstall" = 1 ]; then
		uninstall "$install_dir"
		return
	fi

	os=$(detect_os)
	arch=$(detect_arch)
	tag=latest
	if [ -n "$version" ]; then
		case "$version" in v*) tag="$version" ;; *) tag="v$version" ;; esac
	fi

	TMP_DIR=$(mktemp -d 2>/dev/null || mktemp -d -t harmony)
	trap cleanup EXIT
	trap 'cleanup; exit 130' INT TERM

	say "fetching checksums.txt for $tag from $MIRROR"
	if ! fetch "$(release_url "$tag" checksums.txt)" "$TMP_DIR/checksums.txt"; then
		fail "cannot download release $tag from $MIRROR (unreachable mirror or unknown version)" \
			"check that the version exists and that HARMONY_MIRROR ($MIRROR) is reachable"
	fi
	verify_signature "$TMP_DIR/checksums.txt" "$tag"
	archive=$(archive_name "$TMP_DIR/checksums.txt" "$os" "$arch")
	want=$(sed -n "s/^\([0-9a-fA-F]\{64\}\) [ *]\{0,1\}$archive$/\1/p" "$TMP_DIR/checksums.txt" | tr 'A-F' 'a-f')
	target_version=${archive#harmony_}
	target_version=${target_version%_"${os}"_"${arch}".tar.gz}

	if [ "$(installed_version "$install_dir/harmony")" = "$target_version" ]; then
		say "harmony $target_version is already installed in $install_dir: nothing to do"
	else
		say "downloading $archive"
		fetch "$(release_url "$tag" "$archive")" "$TMP_DIR/$archive" ||
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
