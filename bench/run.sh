#!/usr/bin/env bash
# bench/run.sh: HTTP throughput of the API measured from outside, the way a
# user feels it. Servers run pinned to core 0, wrk (-t1 -c50) to core 1; every
# variant is started once, seeded with a user and an item, then the variants
# are measured in interleaved rounds so drift on a shared machine hits them
# alike. It prints per-variant req/s (median, min-max), p50 and p99 (median),
# peak RSS under load and the server's CPU time per request; then each ratio
# as the median of the rounds' own ratios (each round's variants ran
# back to back), with the middle half and the full range of the rounds.
#
#   bench/run.sh http     # (a) defaults, (b) tracing off, (c) tracing and access log off,
#                         # (g) access log off, (d) defaults with a 64 KiB log buffer,
#                         # (f) defaults with the log lines going to /dev/null, (e) defaults
#                         # exporting every span over OTLP/HTTP to a local sink; each over c
#   bench/run.sh fastapi  # glasshouse defaults vs the FastAPI baseline in bench/fastapi
#
# ROUNDS (default 10) and DURATION seconds per run (default 4) tune it: on
# a shared virtual machine one round's ratio can be 5% off the next, so
# many short rounds judge a ratio better than a few long ones.
# This is a benchmark, not a test: nothing here is part of `make test`.
set -euo pipefail
cd "$(dirname "$0")/.."
mode="${1:-http}"
rounds="${ROUNDS:-10}"
dur="${DURATION:-4}"
export PATH="/usr/local/go/bin:$PATH"

if ! command -v wrk >/dev/null; then
  echo "installing wrk (Debian)" >&2
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends wrk >/dev/null
fi
if [ "$(nproc)" -lt 2 ]; then echo "bench/run.sh needs 2 cores (server and load generator pinned apart)" >&2; exit 1; fi

work="$(mktemp -d /tmp/glasshouse-bench.XXXXXX)"
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT

echo "building glasshouse-api" >&2
CGO_ENABLED=0 go build -trimpath -o "$work/glasshouse-api" ./app/cmd/glasshouse-api

freeport() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

waitfor() { # URL
  for _ in $(seq 1 200); do curl -fs -o /dev/null "$1" && return 0; sleep 0.05; done
  echo "server at $1 did not become ready" >&2; return 1
}

# seed BASE: sign up, log in and create one item; prints the token. Any
# failure stops the benchmark (measuring 4xx answers would be meaningless).
seed() {
  local base="$1" token
  curl -fsS -o /dev/null "$base/api/v1/users" -H 'Content-Type: application/json' \
    -d '{"username":"bench_user","email":"bench@example.com","password":"Correct-horse-9!"}' || { echo "seed: sign-up at $base failed" >&2; return 1; }
  token=$(curl -fsS "$base/api/v1/auth/login" -H 'Content-Type: application/json' \
    -d '{"username":"bench_user","password":"Correct-horse-9!"}' | sed 's/.*"access_token":"\([^"]*\)".*/\1/') || { echo "seed: login at $base failed" >&2; return 1; }
  curl -fsS -o /dev/null "$base/api/v1/items" -H "Authorization: Bearer $token" -H 'Content-Type: application/json' \
    -d '{"name":"Milk","description":"two litres"}' || { echo "seed: item create at $base failed" >&2; return 1; }
  printf '%s' "$token"
}

declare -A base token pidof
# start_glasshouse NAME ENV...: the real binary with its defaults plus ENV;
# its log lines go to $work/NAME.log, or to LOG_TO when that is set.
start_glasshouse() {
  local name="$1"; shift
  local port admin; port=$(freeport); admin=$(freeport)
  mkdir -p "$work/$name"
  env ADDR="127.0.0.1:$port" ADMIN_ADDR="127.0.0.1:$admin" DATA_DIR="$work/$name" RATE_LIMIT_ENABLED=false \
    LOG_FORMAT=json "$@" taskset -c 0 "$work/glasshouse-api" >"${LOG_TO:-$work/$name.log}" 2>&1 &
  pids+=($!); pidof[$name]=$!
  base[$name]="http://127.0.0.1:$port"
  waitfor "${base[$name]}/health/ready"
  token[$name]=$(seed "${base[$name]}") || exit 1
}

start_fastapi() {
  local port; port=$(freeport)
  if ! /usr/bin/python3 -c 'import fastapi, uvicorn, uvloop, httptools, jwt, passlib, bcrypt, prometheus_client' 2>/dev/null; then
    echo "installing the FastAPI baseline's Debian packages" >&2
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
      python3-fastapi python3-uvicorn python3-uvloop python3-httptools python3-jwt python3-passlib python3-bcrypt python3-prometheus-client >/dev/null
  fi
  DB_PATH="$work/fastapi.db" taskset -c 0 /usr/bin/python3 -m uvicorn app:app --app-dir bench/fastapi \
    --host 127.0.0.1 --port "$port" --loop uvloop --http httptools --workers 1 >"$work/fastapi.log" 2>&1 &
  pids+=($!); pidof[fastapi]=$!
  base[fastapi]="http://127.0.0.1:$port"
  waitfor "${base[fastapi]}/health"
  token[fastapi]=$(seed "${base[fastapi]}") || exit 1
}

# cputicks PID: the process's user+system CPU time so far, in clock ticks.
cputicks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
hz=$(getconf CLK_TCK)

# measure NAME: one wrk run against GET /api/v1/items/1; appends
# "NAME rps p50_ms p99_ms peak_rss_kib cpu_us_per_request" to $work/results.
# CPU per request (the server's user+system time over the requests wrk
# completed) is the steadier figure on a shared machine: other work on the
# server's core lowers its req/s but not what each request costs.
measure() {
  local name="$1" pid="${pidof[$1]}" out rss=0 peak=0 t0 t1
  out="$work/wrk.out"
  t0=$(cputicks "$pid")
  taskset -c 1 wrk -t1 -c50 -d"${dur}s" --latency -H "Authorization: Bearer ${token[$name]}" \
    "${base[$name]}/api/v1/items/1" >"$out" 2>&1 &
  local wpid=$!
  while kill -0 "$wpid" 2>/dev/null; do
    rss=$(awk '/^VmRSS/ {print $2}' "/proc/$pid/status" 2>/dev/null || echo 0)
    [ "${rss:-0}" -gt "$peak" ] && peak=$rss
    sleep 0.5
  done
  wait "$wpid"
  t1=$(cputicks "$pid")
  if grep -q "Non-2xx" "$out"; then echo "$name answered non-2xx during the run:" >&2; cat "$out" >&2; exit 1; fi
  awk -v name="$name" -v peak="$peak" -v ticks=$((t1 - t0)) -v hz="$hz" '
    function ms(v) { if (v ~ /us$/) return v/1000; if (v ~ /ms$/) return v+0; if (v ~ /s$/) return v*1000; return v }
    /^ +50%/ {p50=ms($2)} /^ +99%/ {p99=ms($2)} /^Requests\/sec:/ {rps=$2} / requests in / {n=$1}
    END {printf "%s %.0f %.3f %.3f %d %.2f\n", name, rps, p50, p99, peak, ticks * 1e6 / hz / n}' "$out" >>"$work/results"
}

# start_otlp_sink: a minimal OTLP/HTTP trace receiver on core 1 (it answers
# every export with an empty success response), so that variant (e) pays for
# recording and exporting every span as a deployment with a collector does.
start_otlp_sink() {
  local port; port=$(freeport)
  taskset -c 1 /usr/bin/python3 - "$port" >"$work/otlp-sink.log" 2>&1 <<'PY' &
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
class Sink(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", "0")
        self.end_headers()
    def log_message(self, *args):
        pass
ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Sink).serve_forever()
PY
  pids+=($!)
  otlp="http://127.0.0.1:$port"
  for _ in $(seq 1 100); do curl -fs -o /dev/null -X POST --data-binary '' "$otlp/v1/traces" && return 0; sleep 0.05; done
  echo "the OTLP sink did not start" >&2; return 1
}

case "$mode" in
http)
  variants=(a c b g d f e)
  start_otlp_sink
  start_glasshouse a
  start_glasshouse b OTEL_SDK_DISABLED=true
  start_glasshouse c OTEL_SDK_DISABLED=true ACCESS_LOG=false
  start_glasshouse g ACCESS_LOG=false
  start_glasshouse d LOG_BUFFER=65536
  LOG_TO=/dev/null start_glasshouse f
  start_glasshouse e OTEL_EXPORTER_OTLP_ENDPOINT="$otlp"
  label() { case "$1" in a) echo "(a) defaults: sampled tracing + access log";; b) echo "(b) tracing off";; c) echo "(c) tracing and access log off";;
    g) echo "(g) access log off";; d) echo "(d) defaults + LOG_BUFFER=65536";; f) echo "(f) defaults, log lines to /dev/null";; e) echo "(e) defaults + OTLP export to a local sink";; esac; }
  ;;
fastapi)
  variants=(glasshouse fastapi)
  start_glasshouse glasshouse
  start_fastapi
  label() { case "$1" in glasshouse) echo "glasshouse (Go, defaults)";; fastapi) echo "FastAPI + uvicorn/uvloop, 1 worker";; esac; }
  ;;
*) echo "usage: bench/run.sh http|fastapi" >&2; exit 2 ;;
esac

# Warm up each variant (JIT-free, but caches, pools and the page cache).
for v in "${variants[@]}"; do
  taskset -c 1 wrk -t1 -c50 -d2s -H "Authorization: Bearer ${token[$v]}" "${base[$v]}/api/v1/items/1" >/dev/null
done
for r in $(seq 1 "$rounds"); do
  for v in "${variants[@]}"; do
    echo "round $r/$rounds: $v" >&2
    measure "$v"
  done
done

echo
echo "GET /api/v1/items/{id} (bearer token, SQLite), wrk -t1 -c50 -d${dur}s on core 1, server on core 0, $rounds interleaved rounds"
echo "$(date -u +%F) $(uname -m) $(nproc) cores, load average at end: $(cut -d' ' -f1-3 /proc/loadavg)"
printf '%-44s %22s %10s %10s %12s %22s\n' variant "req/s median (min-max)" "p50 ms" "p99 ms" "peak RSS MB" "CPU us/req (min-max)"
median() { sort -n | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }
declare -A med cpu
for v in "${variants[@]}"; do
  rows=$(awk -v v="$v" '$1==v' "$work/results")
  med[$v]=$(echo "$rows" | awk '{print $2}' | median)
  lo=$(echo "$rows" | awk '{print $2}' | sort -n | head -1); hi=$(echo "$rows" | awk '{print $2}' | sort -n | tail -1)
  p50=$(echo "$rows" | awk '{print $3}' | median); p99=$(echo "$rows" | awk '{print $4}' | median)
  rss=$(echo "$rows" | awk '{print $5}' | sort -n | tail -1)
  cpu[$v]=$(echo "$rows" | awk '{print $6}' | median)
  clo=$(echo "$rows" | awk '{print $6}' | sort -n | head -1); chi=$(echo "$rows" | awk '{print $6}' | sort -n | tail -1)
  printf '%-44s %22s %10s %10s %12.1f %22s\n' "$(label "$v")" "${med[$v]} (${lo}-${hi})" "$p50" "$p99" "$(echo "$rss" | awk '{print $1/1024}')" "${cpu[$v]} (${clo}-${chi})"
done
echo
# paired A B COLUMN: A over B in each round (req/s, column 2), or B's CPU per
# request over A's (column 6), one per line, sorted.
paired() {
  paste <(awk -v v="$1" '$1==v {print $2, $6}' "$work/results") <(awk -v v="$2" '$1==v {print $2, $6}' "$work/results") |
    awk -v col="$3" '{print (col == 2) ? $1/$3 : $4/$2}' | sort -n
}
# summary A B COLUMN: "median (middle half lo-hi, all min-max)" of the rounds' ratios.
summary() {
  paired "$@" | awk '{a[NR]=$1} END {
    med = (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2
    lo = a[int((NR-1)/4)+1]; hi = a[NR-int((NR-1)/4)]
    printf "%.3f (middle half %.3f-%.3f, all %.3f-%.3f)", med, lo, hi, a[1], a[NR] }'
}
case "$mode" in
http)
  echo "Each ratio is the median of the $rounds rounds' own ratios (the variants of a round ran back to back):"
  for v in a b g d f e; do echo "$v/c = $(summary "$v" c 2)"; done
  echo "by CPU per request (the same ratios for a server bound by its core):"
  for v in a b g d f e; do echo "$v/c = $(summary "$v" c 6)"; done
  ;;
fastapi)
  echo "glasshouse/FastAPI req/s = $(summary glasshouse fastapi 2)"
  echo "glasshouse/FastAPI by CPU per request = $(summary glasshouse fastapi 6)"
  ;;
esac
