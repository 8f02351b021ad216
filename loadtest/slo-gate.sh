#!/usr/bin/env bash
# SLO gate (`make slo-gate`): builds the API and glasshouse-load, starts the
# API alone (embedded SQLite, no other load on it), runs the average
# scenario long enough to judge the objectives (at least 1,000 completed
# requests) with the thresholds derived from alerts/slo.yaml, and checks
# the client's request count, 5xx ratio and p99 against the API's own
# /metrics (admin port). It prints the k6-style summary, writes the HTML
# report, and exits with glasshouse-load's code: 99 when an objective is
# missed.
#
# A latency objective is judged here, not in `go test`: on a machine that
# is also compiling and testing, a few dozen requests cannot tell a slow
# service from a busy machine.
#
# Environment (defaults in brackets):
#   RATE [40]            iterations per second at the plateau
#   DURATION [40s]       scenario length (10% ramp up, 80% plateau, 10% down)
#   MIN_REQUESTS [1000]  fewer completed requests fail the gate
#   REPORT [bin/slo-gate-report.html]  the HTML report
#   GATE_ADDR, GATE_ADMIN_ADDR [free loopback ports]  the API's listeners
set -euo pipefail
cd "$(dirname "$0")/.."

RATE=${RATE:-40}
DURATION=${DURATION:-40s}
MIN_REQUESTS=${MIN_REQUESTS:-1000}
REPORT=${REPORT:-bin/slo-gate-report.html}
# freeport prints a loopback port nothing listens on. A fixed port could
# find a stale server there and judge it instead of the API just built.
freeport() {
  local p
  for _ in $(seq 100); do
    p=$((20000 + RANDOM % 20000))
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then echo "$p"; return; fi
  done
  echo "slo-gate: no free loopback port found" >&2
  return 1
}
GATE_ADDR=${GATE_ADDR:-127.0.0.1:$(freeport)}
GATE_ADMIN_ADDR=${GATE_ADMIN_ADDR:-127.0.0.1:$(freeport)}

work=$(mktemp -d /tmp/glasshouse-slo-gate.XXXXXX)
api_pid=""
cleanup() {
  if [ -n "$api_pid" ]; then
    kill -INT "$api_pid" 2>/dev/null || true
    wait "$api_pid" 2>/dev/null || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT

echo "== slo-gate: building glasshouse-api and glasshouse-load"
mkdir -p bin "$(dirname "$REPORT")"
CGO_ENABLED=0 go build -o bin/ ./app/cmd/glasshouse-api ./loadtest/cmd/glasshouse-load

echo "== slo-gate: starting the API on $GATE_ADDR (admin $GATE_ADMIN_ADDR)"
ADDR=$GATE_ADDR ADMIN_ADDR=$GATE_ADMIN_ADDR DATA_DIR="$work/data" APP_ENV=development \
  LOG_FORMAT=json ACCESS_LOG=false DATABASE_URL= REDIS_URL= \
  bin/glasshouse-api >"$work/api.log" 2>&1 &
api_pid=$!
ready=""
for _ in $(seq 300); do
  if bin/glasshouse-api health -url "http://$GATE_ADDR/health/ready" >/dev/null 2>&1; then ready=1; break; fi
  kill -0 "$api_pid" 2>/dev/null || break
  sleep 0.1
done
if [ -z "$ready" ] || ! kill -0 "$api_pid" 2>/dev/null; then
  echo "slo-gate: the API did not become ready (or another server answered on its port); its log:" >&2
  cat "$work/api.log" >&2
  exit 1
fi

echo "== slo-gate: average scenario at $RATE it/s for $DURATION (at least $MIN_REQUESTS requests)"
rc=0
CI=${CI:-1} bin/glasshouse-load -target "http://$GATE_ADDR" -scenario average -rate "$RATE" -duration "$DURATION" \
  -server-metrics "http://$GATE_ADMIN_ADDR/metrics" -min-requests "$MIN_REQUESTS" \
  -report "$REPORT" || rc=$?
[ -s "$REPORT" ] && echo "== slo-gate: HTML report: $REPORT"
case $rc in
  0) echo "== slo-gate: PASS" ;;
  99) echo "== slo-gate: FAIL: an SLO threshold was crossed (exit 99)" >&2 ;;
  *) echo "== slo-gate: FAIL: glasshouse-load exited $rc" >&2; tail -20 "$work/api.log" >&2 ;;
esac
exit $rc
