#!/usr/bin/env bash
# Fetch Debian's Xen xenstore client tools (xenstore-read/-write/-ls/..., and
# test-xenstore) WITHOUT installing them system-wide: the .debs are fetched
# with `apt-get download` and unpacked with `dpkg-deb -x` under TARGET.
# (Installing xen-utils-4.NN would pull in a hypervisor/bootloader; unpacking
# does not, and nothing here needs root, /dev/xen or /proc/xen.)
#
# Usage: scripts/xen-tools.sh [TARGET]      (default: <repo>/.cache/xen-tools)
#
# On success prints, on stdout, shell assignments (use: eval "$(scripts/xen-tools.sh)"):
#   XEN_BIN=<dir with xenstore, xenstore-read, xenstore-write, ...>
#   XEN_LIBEXEC=<dir with test-xenstore>
#   XEN_TEST_XENSTORE=<path of test-xenstore>
#   XEN_LD_LIBRARY_PATH=<dir with libxenstore.so.4, libxentoolcore.so.1>
# Run a tool with:
#   LD_LIBRARY_PATH=$XEN_LD_LIBRARY_PATH XENSTORED_PATH=/path/to/socket $XEN_BIN/xenstore-read /foo
# Idempotent: a later run re-uses what is there and downloads nothing.
# Exits non-zero with a message on stderr if the packages cannot be fetched.
# Env: XEN_UTILS_PKG=xen-utils-4.NN to force a version (default: newest offered).
set -euo pipefail

log() { echo "xen-tools: $*" >&2; }
die() {
  echo "xen-tools: ERROR: $*" >&2
  exit 1
}

script_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo_dir=$(cd "$script_dir/.." && pwd)
target=${1:-"$repo_dir/.cache/xen-tools"}
mkdir -p "$target" || die "cannot create $target"
target=$(cd "$target" && pwd)
root="$target/root"
debs="$target/debs"
stamp="$target/.complete"

for tool in apt-get apt-cache dpkg-deb flock ldd; do
  command -v "$tool" >/dev/null 2>&1 ||
    die "'$tool' not found: this script needs a Debian/Ubuntu system with apt"
done

# Serialise concurrent runs (e.g. several test files preparing the tools at once).
exec 9>"$target/.lock"
flock 9

find_test_xenstore() { find "$root/usr/lib" -path '*/xen-*/bin/test-xenstore' -type f 2>/dev/null | sort -V | tail -n1; }
find_libxenstore() { find "$root/usr/lib" -name 'libxenstore.so.4' 2>/dev/null | head -n1; }

print_paths() {
  local libexec
  libexec=$(dirname "$(find_test_xenstore)")
  echo "XEN_BIN=$root/usr/bin"
  echo "XEN_LIBEXEC=$libexec"
  echo "XEN_TEST_XENSTORE=$libexec/test-xenstore"
  echo "XEN_LD_LIBRARY_PATH=$(dirname "$(find_libxenstore)")"
}

verify() {
  local tx lib
  [ -x "$root/usr/bin/xenstore" ] && [ -x "$root/usr/bin/xenstore-read" ] || return 1
  tx=$(find_test_xenstore)
  lib=$(find_libxenstore)
  [ -n "$tx" ] && [ -n "$lib" ] || return 1
  # All shared-library dependencies must resolve with only our lib dir added.
  local out
  out=$(LD_LIBRARY_PATH=$(dirname "$lib") ldd "$root/usr/bin/xenstore" "$tx" 2>&1) || return 1
  [[ $out != *"not found"* ]]
}

if [ -f "$stamp" ] && verify; then
  log "already present in $target (nothing downloaded)"
  print_paths
  exit 0
fi

as_root() {
  if [ "$(id -u)" -eq 0 ]; then
    "$@"
  elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
    sudo -n "$@"
  else
    return 1
  fi
}

# Newest xen-utils-4.NN the archive offers (bookworm: xen-utils-4.17).
pick_xen_utils() {
  apt-cache search --names-only '^xen-utils-4\.[0-9]+$' 2>/dev/null | awk '{print $1}' | sort -V | tail -n1
}

# All four .debs already downloaded by an earlier run? Then apt is not needed.
cached_debs() {
  local p
  for p in xenstore-utils "${XEN_UTILS_PKG:-xen-utils-4.*}" libxenstore4 libxentoolcore1; do
    compgen -G "$debs/${p}_*.deb" >/dev/null || return 1
  done
}

download() {
  local p ver tmp
  local -a need=() apt_opts=(-q)
  for p in "$@"; do
    ver=$(apt-cache policy "$p" 2>/dev/null | awk '/Candidate:/ {print $2}')
    [ -n "$ver" ] && [ "$ver" != "(none)" ] ||
      die "package '$p' is not available from the configured apt sources"
    # .deb file names encode an epoch's ':' as '%3a'
    compgen -G "$debs/${p}_${ver//:/%3a}_*.deb" >/dev/null || need+=("$p")
  done
  [ "${#need[@]}" -gt 0 ] || return 0
  log "downloading: ${need[*]}"
  # Download into a temp dir, then move: no half-written .debs in $debs.
  tmp=$(mktemp -d "$target/.dl.XXXXXX")
  # As root, apt drops to the _apt user and warns it cannot write here; stay root.
  [ "$(id -u)" -eq 0 ] && apt_opts+=(-o APT::Sandbox::User=root)
  if ! (cd "$tmp" && apt-get "${apt_opts[@]}" download "${need[@]}" >&2); then
    rm -rf "$tmp"
    die "apt-get download ${need[*]} failed (no access to the Debian mirror?)"
  fi
  mv "$tmp"/*.deb "$debs"/
  rm -rf "$tmp"
}

mkdir -p "$debs"
if cached_debs; then
  xen_utils=$(basename "$(ls "$debs"/${XEN_UTILS_PKG:-xen-utils-4.*}_*.deb | sort -V | tail -n1)")
  xen_utils=${xen_utils%%_*}
  log "re-using the packages downloaded in $debs"
else
  xen_utils=${XEN_UTILS_PKG:-$(pick_xen_utils)}
  if [ -z "$xen_utils" ] || ! apt-cache show xenstore-utils >/dev/null 2>&1; then
    log "apt's package lists do not know the Xen packages; running apt-get update"
    as_root apt-get update -qq >&2 ||
      die "apt-get update failed or needs root (run as root or with passwordless sudo, or run 'apt-get update' first)"
    xen_utils=${XEN_UTILS_PKG:-$(pick_xen_utils)}
  fi
  [ -n "$xen_utils" ] ||
    die "no xen-utils-4.* package known to apt-cache (is Debian's 'main' component configured?)"
fi

# xenstore-utils: the multi-call 'xenstore' binary + xenstore-{read,write,...} hard links.
# xen-utils-4.NN: only for usr/lib/xen-4.NN/bin/test-xenstore (unpacked, never installed).
# Both link only libxenstore.so.4 (+ libxentoolcore.so.1) besides libc.
pkgs=(xenstore-utils "$xen_utils" libxenstore4 libxentoolcore1)
cached_debs || download "${pkgs[@]}"

rm -rf "$root.new"
mkdir -p "$root.new"
for p in "${pkgs[@]}"; do
  deb=$(ls "$debs/${p}"_*.deb | sort -V | tail -n1)
  dpkg-deb -x "$deb" "$root.new" || die "could not unpack $deb"
done
rm -rf "$root"
mv "$root.new" "$root"

verify || die "unpacked tools are incomplete or have unresolved libraries (try: ldd $root/usr/bin/xenstore)"
printf '%s\n' "${pkgs[@]}" >"$stamp"
log "ready in $target"
print_paths
