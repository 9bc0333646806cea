# Sourced by the load and web test scripts: a temp work dir, background processes that are all
# stopped on exit, and the two panlink processes they start (the mock upstream, the server).
#   procs_init                  → $work (removed on exit), $pids (killed on exit)
#   start_mock BIN [LATENCY_MS] → $mock (its IP:port), CA in $work/ca.pem
#   start_server BIN [ENV=V …]  → $server (pid), $base (http://IP:port), $port; data in $work/data,
#                                 admin token $PROCS_ADMIN_TOKEN; the extra settings go to its env;
#                                 $PROCS_WRAP (e.g. "taskset -c 0") runs before it, same pid
PROCS_ADMIN_TOKEN=${PROCS_ADMIN_TOKEN:-loadtest-admin-token-0000}

procs_init() {
  work=$(mktemp -d)
  pids=()
  trap procs_cleanup EXIT
}

procs_cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}

# wait_for_line FILE: until FILE says "listening" (10 s at most).
wait_for_line() {
  for _ in $(seq 200); do grep -q listening "$1" 2>/dev/null && return 0; sleep 0.05; done
  echo "no 'listening' line in $1:"; cat "$1" "${1%.out}.log" 2>/dev/null; return 1
}

start_mock() {
  "$1" mock-upstream --listen 127.0.0.1:0 --ca-out "$work/ca.pem" --latency-ms "${2:-0}" > "$work/mock.out" 2>/dev/null &
  pids+=($!)
  wait_for_line "$work/mock.out"
  mock=$(sed -n 's/^mock-upstream listening on //p' "$work/mock.out")
}

start_server() {
  # shellcheck disable=SC2086
  local bin=$1
  shift
  env -i PATH="$PATH" HOME="${HOME:-/root}" PANLINK_LISTEN=127.0.0.1:0 PANLINK_DATA_DIR="$work/data" \
    PANLINK_ADMIN_TOKEN="$PROCS_ADMIN_TOKEN" PANLINK_SERVER_LOG_LEVEL=warn \
    PANLINK_CHECKER_UPSTREAM_OVERRIDE="${mock:-}" PANLINK_CHECKER_EXTRA_ROOT_CA="${mock:+$work/ca.pem}" \
    "$@" ${PROCS_WRAP:-} "$bin" serve > "$work/server.out" 2> "$work/server.log" &
  server=$!
  pids+=($server)
  wait_for_line "$work/server.out"
  base=$(sed -n 's/.*listening on \(http:\/\/[0-9.:]*\).*/\1/p' "$work/server.out")
  port=${base##*:}
}
