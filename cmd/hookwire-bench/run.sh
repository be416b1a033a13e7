#!/usr/bin/env bash
# run.sh SCENARIO [bench flags...]: builds hookwire and hookwire-bench, then
# RUNS times (default 3): starts a fresh redis-server and a fresh
# `hookwire serve` on loopback, runs one scenario of the load tool against
# them, stops both, and prints the tool's JSON line. Everything listens on
# 127.0.0.1 only. Example:
#
#   cmd/hookwire-bench/run.sh personal --users 2000 --rate 1000 --duration 20s
#
# Rate limits are off (HOOKWIRE_PUBLISH_RATE=0, HOOKWIRE_UPGRADE_RATE=0):
# the load tool is one client on one IP. Set PROFILE=1 to write a CPU
# profile of the server (perf, when installed) next to the JSON. SERVER_ENV
# adds variables to the server's environment only, for example
# SERVER_ENV="GOMAXPROCS=1 GOGC=50".
set -euo pipefail
cd "$(dirname "$0")/../.."
scenario=$1
shift
runs=${RUNS:-3}
out=${OUT:-$(mktemp -d /tmp/hookwire-bench.XXXXXX)}
go build -o "$out/hookwire" ./cmd/hookwire
go build -o "$out/hookwire-bench" ./cmd/hookwire-bench
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
key=bench-key-0123456789abcdef
secret=bench-secret-0123456789abcdef0123456789
for i in $(seq "$runs"); do
	rport=$(free_port)
	hport=$(free_port)
	redis-server --port "$rport" --bind 127.0.0.1 --save '' --appendonly no >"$out/$scenario.$i.redis.log" 2>&1 &
	rpid=$!
	for _ in $(seq 50); do redis-cli -p "$rport" ping >/dev/null 2>&1 && break; sleep 0.1; done
	env ${SERVER_ENV:-} HOOKWIRE_REDIS_URL=redis://127.0.0.1:$rport HOOKWIRE_PUBLISH_RATE=0 HOOKWIRE_UPGRADE_RATE=0 \
		HOOKWIRE_API_KEYS=$key HOOKWIRE_JWT_SECRET=$secret \
		"$out/hookwire" serve --listen "127.0.0.1:$hport" >/dev/null 2>"$out/$scenario.$i.server.log" &
	spid=$!
	for _ in $(seq 100); do curl -sf "http://127.0.0.1:$hport/readyz" >/dev/null && break; sleep 0.1; done
	perfpid=
	if [ "${PROFILE:-}" = 1 ] && command -v perf >/dev/null; then
		perf record -e cpu-clock -F 499 -g -p "$spid" -o "$out/$scenario.$i.server.perf" >/dev/null 2>&1 &
		perfpid=$!
	fi
	"$out/hookwire-bench" "$scenario" "$@" --url "http://127.0.0.1:$hport" --api-key $key --jwt-secret $secret \
		--server-pid "$spid" --redis-pid "$rpid" >"$out/$scenario.$i.json" 2>"$out/$scenario.$i.progress" || true
	if [ -n "$perfpid" ]; then kill -INT "$perfpid"; wait "$perfpid" || true; fi
	redis-cli -p "$rport" info commandstats >"$out/$scenario.$i.redis-commandstats" 2>&1 || true
	kill "$spid" "$rpid" 2>/dev/null || true
	wait "$spid" "$rpid" 2>/dev/null || true
	cat "$out/$scenario.$i.json"
done
echo "results in $out" >&2
