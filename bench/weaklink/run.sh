#!/usr/bin/env bash
# Issue 24's weak-link benchmark, one command (root: network namespaces and tc).
#   bench/weaklink/run.sh            # before (an export of the last commit before issue 24) and after
#   bench/weaklink/run.sh after      # the checkout only; more: bench/weaklink/run.sh after --rounds 5
# Figures: bench/results/weaklink-<phase>-<timestamp>.json; method in docs/benchmarks.md.
set -euo pipefail
cd "$(dirname "$0")/../.."
export UV_PYTHON_DOWNLOADS=never
phase="${1:-all}"
shift || true
# the script removes its namespace, veth, server and databases itself (finally blocks);
# this trap catches a kill of the script before Python's own clean-up could run
trap 'ip link del wlh0 2>/dev/null || true; ip netns del wl0 2>/dev/null || true' EXIT
exec_flock=()
if command -v flock >/dev/null; then exec_flock=(flock /tmp/bench.lock); fi
"${exec_flock[@]}" .venv/bin/python -m bench.weaklink.run "$phase" "$@"
