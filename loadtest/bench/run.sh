#!/usr/bin/env bash
# Load generator benchmark (`make bench-loadgen`): runs glasshouse-load, hey
# and wrk against the same loopback target, with the target pinned to one
# core and the generator to another, and prints a ratio table: generator CPU
# per request (from /usr/bin/time), achieved vs scheduled requests, p50/p99,
# max RSS. The floor row (loadtest/bench/floor) is the baseline for CPU per
# request at a fixed rate: a raw-syscall client that does nothing but wake
# for each arrival and each response, the least any generator that starts
# every request on time can spend on this machine. Then it prints the engine's schedule precision at 200, 1,000 and
# 5,000 it/s (schedule_lag p50/p99, the latency-minus-duration gap, CPU per
# request), and checks that the engine's memory stays flat over a longer
# fixed-rate run.
#
# Environment (defaults in brackets):
#   RATE [5000]         fixed rate (req/s) of the glasshouse-load and hey runs
#   DURATION [10]       seconds per run
#   CONNS [50]          connections / workers / pre-allocated VUs
#   REPEATS [3]         interleaved repeats (the table shows median and range; 0 runs only the memory check)
#   MEM_DURATION [30]   seconds of the memory-flatness run (600 for the 10-minute check; 0 skips)
#   PRECISION_RATES ["200 1000 5000"]  rates (it/s) of the schedule precision runs ("" skips)
#   PRECISION_DURATION [5]  seconds per precision run (REPEATS of each, interleaved)
#   TARGET_CPU [0] GEN_CPU [1]   cores for taskset
set -euo pipefail
cd "$(dirname "$0")/../.."

RATE=${RATE:-5000}
DURATION=${DURATION:-10}
CONNS=${CONNS:-50}
REPEATS=${REPEATS:-3}
MEM_DURATION=${MEM_DURATION:-30}
PRECISION_RATES=${PRECISION_RATES-200 1000 5000}
PRECISION_DURATION=${PRECISION_DURATION:-5}
TARGET_CPU=${TARGET_CPU:-0}
GEN_CPU=${GEN_CPU:-1}

for tool in wrk hey taskset /usr/bin/time; do
  command -v "$tool" >/dev/null || { echo "bench-loadgen: $tool not found (apt-get install wrk hey util-linux time)" >&2; exit 1; }
done

work=$(mktemp -d /tmp/glasshouse-bench.XXXXXX)
res="$work/results"
mkdir -p "$res"
target_pid=""
cleanup() {
  if [ -n "$target_pid" ]; then kill "$target_pid" 2>/dev/null || true; wait "$target_pid" 2>/dev/null || true; fi
}
trap cleanup EXIT

echo "== building glasshouse-load and the target into $work"
CGO_ENABLED=0 go build -o "$work/glasshouse-load" ./loadtest/cmd/glasshouse-load
CGO_ENABLED=0 go build -o "$work/target" ./loadtest/bench/target
CGO_ENABLED=0 go build -o "$work/floor" ./loadtest/bench/floor
go build -o "$work/report" ./loadtest/bench/report

taskset -c "$TARGET_CPU" "$work/target" -addr 127.0.0.1:0 >"$work/target.addr" &
target_pid=$!
for _ in $(seq 50); do [ -s "$work/target.addr" ] && break; sleep 0.1; done
url="http://$(head -1 "$work/target.addr")/"
echo "== target $url (pid $target_pid, core $TARGET_CPU); generators on core $GEN_CPU"

drain() { # wait for TIME_WAIT sockets to drain (keep-alive keeps them few)
  for _ in $(seq 10); do
    n=$(ss -tan state time-wait 2>/dev/null | wc -l || echo 0)
    [ "$n" -lt 500 ] && return
    sleep 1
  done
}

gen() { # gen NAME RUN CMD...: run a generator pinned, timed
  local name=$1 run=$2; shift 2
  drain
  /usr/bin/time -f "%U %S %M" -o "$res/$name-$run.time" taskset -c "$GEN_CPU" "$@"
}

echo "== warm-up"
hey -z 2s -c "$CONNS" "$url" >/dev/null

stats='avg,min,med,max,p(90),p(99)'
for run in $(seq "$REPEATS"); do
  echo "== run $run/$REPEATS: glasshouse-load, floor and hey at $RATE/s, wrk and glasshouse-load closed loops, ${DURATION}s each"
  gen glasshouse-load "$run" "$work/glasshouse-load" -url "$url" -rate "$RATE" -vus "$CONNS" -max-vus $((CONNS * 10)) \
    -duration "${DURATION}s" -quiet -summary-trend-stats "$stats" -summary-export "$res/glasshouse-load-$run.out"
  gen floor "$run" "$work/floor" -url "$url" -rate "$RATE" -duration "${DURATION}s" >"$res/floor-$run.out"
  gen hey "$run" hey -z "${DURATION}s" -c "$CONNS" -q $((RATE / CONNS)) -disable-compression "$url" >"$res/hey-$run.out"
  gen wrk "$run" wrk -t1 -c "$CONNS" -d "${DURATION}s" --latency "$url" >"$res/wrk-$run.out"
  gen glasshouse-load-closed "$run" "$work/glasshouse-load" -url "$url" -vus "$CONNS" -duration "${DURATION}s" -quiet \
    -summary-trend-stats "$stats" -summary-export "$res/glasshouse-load-closed-$run.out"
done

if [ "$REPEATS" -gt 0 ]; then
  "$work/report" -dir "$res" -rate "$RATE" -duration "$DURATION"
fi

if [ -n "$PRECISION_RATES" ] && [ "$REPEATS" -gt 0 ]; then
  # Schedule precision: how late each iteration starts after its intended
  # start (schedule_lag) and how much of the reported latency is the
  # generator's own (http_req_latency p50 - http_req_duration p50).
  echo "== schedule precision at ${PRECISION_RATES// //} it/s, ${PRECISION_DURATION}s each, $REPEATS interleaved repeats"
  for run in $(seq "$REPEATS"); do
    for rate in $PRECISION_RATES; do
      gen "precision-$rate" "$run" "$work/glasshouse-load" -url "$url" -rate "$rate" -vus "$CONNS" -max-vus $((CONNS * 10)) \
        -duration "${PRECISION_DURATION}s" -quiet -summary-trend-stats 'med,p(99)' -summary-export "$res/precision-$rate-$run.out"
    done
  done
  "$work/report" -dir "$res" -precision
fi

if [ "$MEM_DURATION" -gt 0 ]; then
  # A fixed pool (-max-vus = -vus): the VU pool cannot grow during a target
  # stall, so any growth of RSS with time is the engine's.
  echo "== memory flatness: glasshouse-load at $RATE/s for ${MEM_DURATION}s with a fixed pool of $((CONNS * 2)) VUs (RSS sampled every 5s)"
  drain
  taskset -c "$GEN_CPU" "$work/glasshouse-load" -url "$url" -rate "$RATE" -vus $((CONNS * 2)) -max-vus $((CONNS * 2)) \
    -duration "${MEM_DURATION}s" -quiet -summary-export "$res/mem.json" &
  gen_pid=$!
  samples=()
  while kill -0 "$gen_pid" 2>/dev/null; do
    sleep 5
    rss=$(awk '/^VmRSS:/ {print $2}' "/proc/$gen_pid/status" 2>/dev/null || true)
    [ -n "$rss" ] && samples+=("$rss")
  done
  wait "$gen_pid" || { echo "bench-loadgen: memory run failed" >&2; exit 1; }
  n=${#samples[@]}
  if [ "$n" -lt 4 ]; then
    echo "memory: too few samples ($n); use MEM_DURATION >= 20"
  else
    # Flat means no growth with time: the last sample against the largest of
    # the first half.
    echo "memory: RSS KiB every 5s: ${samples[*]}"
    printf '%s\n' "${samples[@]}" | awk -v n="$n" '
      NR <= int(n / 2) && $1 > first { first = $1 }
      { last = $1; if ($1 > peak) peak = $1 }
      END {
        r = last / first
        printf "memory: first half max %.1f MiB, at the end %.1f MiB (peak %.1f MiB), ratio %.2f (%s)\n", first / 1024, last / 1024, peak / 1024, r, (r < 1.2 ? "flat" : "GROWING")
        exit (r < 1.2 ? 0 : 1)
      }'
  fi
fi
