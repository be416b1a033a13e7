#!/usr/bin/env bash
# floor.sh: runs the shared harness's perfbar.sh against the floor server
# (cmd/hookwire-bench/floor) in the place of hookwire, so that a floor and
# Centrifugo alternate in one run exactly as hookwire and Centrifugo do.
# perfbar.sh builds ./cmd/hookwire of its working directory, so the floor is
# copied as cmd/hookwire into a temporary module with hookwire's go.mod.
# Its lines still say "hookwire": read them as the floor's.
#
#   FLOOR_REDIS=xadd|pipeline|none FLOOR_READER=0|1 \
#     CENTRIFUGO_BIN=... cmd/hookwire-bench/floor.sh vs-centrifugo
#   FLOOR_READER=1 cmd/hookwire-bench/floor.sh personal
#
# PERFBAR overrides the path of perfbar.sh (default ../shared/bench/perfbar.sh
# beside the checkout).
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
perfbar=${PERFBAR:-$root/../shared/bench/perfbar.sh}
dir=$(mktemp -d -t hookwire-floor.XXXXXX)
trap 'rm -rf "$dir"' EXIT
mkdir -p "$dir/cmd/hookwire"
cp "$root/go.mod" "$root/go.sum" "$dir/"
cp "$root/cmd/hookwire-bench/floor/main.go" "$dir/cmd/hookwire/main.go"
export FLOOR_REDIS=${FLOOR_REDIS:-xadd} FLOOR_READER=${FLOOR_READER:-0}
cd "$dir"
"$perfbar" "$@"
