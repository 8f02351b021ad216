#!/usr/bin/env bash
# compose/stack.sh up|down|status: start or stop the whole glasshouse stack.
#
#   make stack-up     -> ./compose/stack.sh up
#   make stack-down   -> ./compose/stack.sh down   (VOLUMES=1 also deletes data)
#
# With a Docker engine (`docker info` answers and `docker compose` exists) it
# runs `docker compose up --wait` on compose/compose.yaml and prints the URLs.
# Without one it starts the native stack instead: the API, Prometheus,
# Alertmanager and the Slack sink as local processes on loopback, under
# .run/stack (compose/cmd/nativestack). STACK_MODE=docker|native forces a mode.
# Ports: the STACK_*_PORT variables (compose/.env.example lists them).
# Secrets: compose/.env (STACK_ENV_FILE), created with random values when
# missing; existing values are never overwritten.
#
# Before compose runs, the host is checked (compose/README.md, "Requirements
# and known limits"):
#   - engine API 1.44+ (Docker Engine 25.0+): compose.start-interval.yaml is
#     merged; older engines (and Podman's compatible API) start without it;
#   - the engine's socket (DOCKER_SOCK, else DOCKER_HOST or the docker
#     context's unix socket, else /var/run/docker.sock) exists: Alloy (profile
#     "logs") mounts it; without it the stack starts without log collection;
#   - SELinux on (getenforce): configs are mounted with :z (SELINUX_RELABEL);
#   - the mounted configs are world-readable: the containers read them as
#     nobody, 10001 and 472.
set -euo pipefail

cd "$(dirname "$0")/.."
repo=$(pwd)
cmd=${1:-}
mode=${STACK_MODE:-auto}
run_dir=${STACK_RUN_DIR:-.run/stack}
env_file=${STACK_ENV_FILE:-compose/.env}
compose=(docker compose -f compose/compose.yaml --env-file "$env_file")
# The engine API version healthcheck start_interval needs (Docker Engine 25.0).
start_interval_api=1.44

usage() {
  echo "usage: $0 up|down|status   (STACK_MODE=auto|docker|native, VOLUMES=1 for down)" >&2
  exit 2
}

# docker_ready says whether a Docker engine and the compose plugin answer.
docker_ready() {
  command -v docker >/dev/null 2>&1 || { why="no docker command"; return 1; }
  docker info >/dev/null 2>&1 || { why="no Docker engine answered \`docker info\`"; return 1; }
  docker compose version >/dev/null 2>&1 || { why="Docker answers but the compose plugin is missing (\`docker compose version\` failed)"; return 1; }
}

# random_secret prints 24 random bytes as hex (URL-safe: it goes into DATABASE_URL).
random_secret() {
  od -An -tx1 -N24 /dev/urandom | tr -d ' \n'
}

# ensure_env creates compose/.env from the example with random secrets, and
# fills any required secret left empty. It never overwrites a value.
ensure_env() {
  if [ ! -f "$env_file" ]; then
    (umask 077 && cp compose/.env.example "$env_file")
    echo "created $env_file with random secrets (it is git-ignored)"
  fi
  local key
  for key in POSTGRES_PASSWORD JWT_SECRET GRAFANA_ADMIN_PASSWORD; do
    if ! grep -Eq "^${key}=.+" "$env_file"; then
      if grep -Eq "^${key}=" "$env_file"; then
        sed -i.bak "s|^${key}=.*|${key}=$(random_secret)|" "$env_file" && rm -f "$env_file.bak"
      else
        echo "${key}=$(random_secret)" >>"$env_file"
      fi
    fi
  done
  chmod 600 "$env_file"
}

# env_value KEY DEFAULT prints KEY's value from compose/.env or the
# environment (the environment wins, as with compose), else DEFAULT.
env_value() {
  local v=${!1:-}
  if [ -z "$v" ] && [ -f "$env_file" ]; then
    v=$(sed -n "s/^$1=//p" "$env_file" | tail -n 1)
  fi
  echo "${v:-$2}"
}

# api_at_least A B says whether engine API version A (major.minor) is B or later.
api_at_least() {
  local a_major=${1%%.*} a_minor=${1#*.} b_major=${2%%.*} b_minor=${2#*.}
  [ "$a_major" -gt "$b_major" ] || { [ "$a_major" -eq "$b_major" ] && [ "$a_minor" -ge "$b_minor" ]; }
}

# docker_sock prints the engine's unix socket on this host: DOCKER_SOCK, else
# DOCKER_HOST or the current docker context when they name a unix socket
# (rootless Docker, Podman), else /var/run/docker.sock.
docker_sock() {
  local sock host
  sock=$(env_value DOCKER_SOCK "")
  if [ -z "$sock" ]; then
    host=${DOCKER_HOST:-}
    [ -n "$host" ] || host=$(docker context inspect --format '{{.Endpoints.docker.Host}}' 2>/dev/null || true)
    case "$host" in unix://*) sock=${host#unix://} ;; esac
  fi
  echo "${sock:-/var/run/docker.sock}"
}

# host_checks fails when the containers could not read their configs, and
# picks the compose files and profiles this engine and host can run.
host_checks() {
  local unreadable api relabel
  unreadable=$(find compose/prometheus compose/tempo compose/loki compose/alloy alerts dashboards \
    \( -type f ! -perm -o=r \) -o \( -type d ! -perm -o=rx \) 2>/dev/null | head -n 5 || true)
  if [ -n "$unreadable" ]; then
    echo "the containers read their configs from the checkout as non-root users (nobody, 10001, 472), but these are not world-readable:" >&2
    sed 's/^/  /' <<<"$unreadable" >&2
    echo "fix: chmod -R o+rX compose alerts dashboards   (a checkout made with umask 077 has this problem)" >&2
    exit 1
  fi

  api=$(docker version --format '{{.Server.APIVersion}}' 2>/dev/null || true)
  if [[ "$api" =~ ^[0-9]+\.[0-9]+$ ]] && api_at_least "$api" "$start_interval_api"; then
    compose+=(-f compose/compose.start-interval.yaml)
  else
    echo "note: the engine speaks Docker API ${api:-(unknown)}; healthcheck start_interval needs API $start_interval_api (Docker Engine 25.0 or later)."
    echo "      Starting without compose/compose.start-interval.yaml: services report healthy at their normal interval, so up --wait takes longer."
  fi

  export DOCKER_SOCK
  DOCKER_SOCK=$(docker_sock)
  if [ -S "$DOCKER_SOCK" ]; then
    compose+=(--profile logs)
  else
    echo "note: no Docker socket at $DOCKER_SOCK: starting without Alloy, so container logs do not reach Loki."
    echo "      Set DOCKER_SOCK to the engine's socket (rootless Docker: \$XDG_RUNTIME_DIR/docker.sock, Podman: \$XDG_RUNTIME_DIR/podman/podman.sock)."
  fi

  relabel=$(env_value SELINUX_RELABEL "")
  if [ -z "$relabel" ] && command -v getenforce >/dev/null 2>&1; then
    case "$(getenforce 2>/dev/null)" in
      Enforcing | Permissive)
        relabel=z
        echo "SELinux is on: mounting the configs with :z (SELINUX_RELABEL=z) so containers may read them." ;;
    esac
  fi
  case "$relabel" in
    "" | z) ;;
    *) echo "SELINUX_RELABEL=$relabel: want z (shared label: several containers mount alerts/) or empty" >&2; exit 2 ;;
  esac
  export SELINUX_RELABEL=$relabel
}

# ensure_cert creates the nginx edge's self-signed certificate (valid for
# localhost and 127.0.0.1, one year) in compose/nginx/certs, which
# compose.yaml mounts (STACK_CERT_DIR elsewhere, for tests), unless one is
# there. The key is readable by the container's nginx user: a throwaway
# local certificate, git-ignored.
ensure_cert() {
  local dir=${STACK_CERT_DIR:-compose/nginx/certs}
  [ -s "$dir/tls.pem" ] && [ -s "$dir/tls-key.pem" ] && return 0
  if ! command -v openssl >/dev/null 2>&1; then
    echo "openssl not found: it generates the nginx edge's self-signed certificate ($dir)" >&2
    exit 2
  fi
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 365 \
    -subj "/CN=localhost" -addext "subjectAltName=DNS:localhost,IP:127.0.0.1" \
    -keyout "$dir/tls-key.pem" -out "$dir/tls.pem" 2>/dev/null
  chmod 0644 "$dir/tls.pem" "$dir/tls-key.pem"
  echo "created a self-signed certificate for the nginx edge in $dir"
}

docker_up() {
  ensure_env
  ensure_cert
  host_checks
  echo "starting the compose stack (docker compose up --wait; the first run pulls images and builds the API)..."
  "${compose[@]}" up --build --wait --wait-timeout "${STACK_WAIT_TIMEOUT:-300}"
  local grafana prom am sink api admin edge
  grafana=$(env_value STACK_GRAFANA_PORT 3000)
  prom=$(env_value STACK_PROMETHEUS_PORT 9090)
  am=$(env_value STACK_ALERTMANAGER_PORT 9093)
  sink=$(env_value STACK_SLACKSINK_PORT 9095)
  api=$(env_value STACK_API_PORT 8080)
  admin=$(env_value STACK_API_ADMIN_PORT 8081)
  edge=$(env_value STACK_EDGE_PORT 8443)
  cat <<URLS
glasshouse stack is up (docker compose):
  Grafana       http://127.0.0.1:$grafana   (anonymous Viewer; admin password: GRAFANA_ADMIN_PASSWORD in $env_file)
  Traces        http://127.0.0.1:$grafana/explore   (Tempo datasource; logs: Loki datasource)
  Prometheus    http://127.0.0.1:$prom
  Alertmanager  http://127.0.0.1:$am
  Slack sink    http://127.0.0.1:$sink/messages
  API docs      http://127.0.0.1:$api/docs
  API via nginx https://127.0.0.1:$edge/docs   (TLS, self-signed: curl -k)
  API metrics   http://127.0.0.1:$admin/metrics
Load test: docker compose -f compose/compose.yaml --profile load up -d loadgen
Stop with: make stack-down (VOLUMES=1 make stack-down also deletes the data volumes)
URLS
}

docker_down() {
  ensure_env # compose interpolates the file even to take it down
  local flags=(--remove-orphans)
  [ "${VOLUMES:-0}" = 1 ] && flags+=(--volumes)
  "${compose[@]}" --profile load --profile logs down "${flags[@]}"
}

native() {
  command -v go >/dev/null 2>&1 || { echo "the native stack needs Go on PATH to build the API" >&2; exit 1; }
  mkdir -p "$run_dir/bin"
  go build -o "$run_dir/bin/nativestack" ./compose/cmd/nativestack
  exec "$run_dir/bin/nativestack" -repo "$repo" "$@"
}

case "$cmd" in
  up)
    case "$mode" in
      docker) docker_ready || { echo "STACK_MODE=docker but $why" >&2; exit 1; }; docker_up ;;
      native) native up ;;
      auto)
        if docker_ready; then
          docker_up
        else
          echo "$why: starting the native stack instead (STACK_MODE=docker to insist on Docker)."
          native up
        fi ;;
      *) echo "STACK_MODE=$mode: want auto, docker or native" >&2; exit 2 ;;
    esac ;;
  down)
    case "$mode" in
      docker) docker_ready || { echo "STACK_MODE=docker but $why" >&2; exit 1; }; docker_down ;;
      native) native down ;;
      auto)
        # Stop whichever is running: the native stack if one is recorded, and
        # the compose stack when Docker answers.
        native_done=0
        if [ -f "$run_dir/stack.json" ]; then (native down); native_done=1; fi
        if docker_ready; then
          docker_down
        elif [ "$native_done" = 0 ]; then
          native down
        fi ;;
      *) echo "STACK_MODE=$mode: want auto, docker or native" >&2; exit 2 ;;
    esac ;;
  status)
    if [ "$mode" != native ] && docker_ready; then
      ensure_env
      "${compose[@]}" --profile load --profile logs ps
    fi
    [ "$mode" = docker ] || native status ;;
  *) usage ;;
esac
