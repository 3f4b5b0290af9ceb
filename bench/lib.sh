# Shared by the bench scripts (sourced, not run). Needs `set -euo
# pipefail` and the caller's working directory at the project root.

# bench_setup NAME: build the release tree ($BUILD, default build-bench),
# make a temp dir and cd into it with a fresh PKI. Sets top, build,
# bdir (the build dir as an absolute path), work and ctl. BUILD may be
# relative to the project root or absolute. BENCH_NOBUILD=1 uses $BUILD
# as it is (the smoke tests run from meson test, which has built it).
bench_setup() {
  build=${BUILD:-build-bench}
  if [ -z "${BENCH_NOBUILD:-}" ]; then
    [ -d "$build" ] || meson setup "$build" --buildtype=release >/dev/null
    ninja -C "$build" >/dev/null
  fi
  top=$(pwd)
  case $build in /*) bdir=$build ;; *) bdir=$top/$build ;; esac
  work=$(mktemp -d "/tmp/tocsin-bench-$1.XXXXXX")
  cd "$work"
  ctl="$bdir/collector/tocsinctl"
  "$ctl" pki init pki >/dev/null
}

# bench_issue NAME...: agent certificates in the PKI.
bench_issue() {
  for n in "$@"; do "$ctl" pki issue-agent pki "$n" >/dev/null; done
}

# bench_collector SYNC: start a collector on a free port with its store
# in state/; sets port and cpid, and removes everything on exit. Its log
# goes to $COLLOG (default collector.log in the temp dir). Lines in
# $COLLECTOR_EXTRA are appended to its collector.yaml (e.g. limits).
bench_collector() {
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  cat > collector.yaml <<YAML
listen: 127.0.0.1:$port
tls: {ca: pki/ca.crt, cert: pki/collector.crt, key: pki/collector.key}
store: {path: state/collector.db, sync: $1}
${COLLECTOR_EXTRA:-}
YAML
  "$bdir/collector/tocsin-collector" -d -c collector.yaml \
    2> "${COLLOG:-collector.log}" &
  cpid=$!
  trap 'kill $cpid 2>/dev/null; rm -rf "$work"' EXIT
  for _ in $(seq 1 100); do
    grep -q "listening on" "${COLLOG:-collector.log}" && break
    sleep 0.05
  done
}

# bench_cpu PID: user+system CPU ticks so far.
bench_cpu() { awk '{print $14+$15}' "/proc/$1/stat"; }

# bench_secs TICKS: ticks as seconds, "1.23s".
bench_secs() { python3 -c "print('%.2fs' % ($1 / $(getconf CLK_TCK)))"; }
