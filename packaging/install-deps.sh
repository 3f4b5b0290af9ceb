#!/usr/bin/env bash
# Install what tocsin needs to build, test and run its demo on Debian 12.
# Every dependency is a Debian package; nothing is downloaded otherwise.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
pkgs=(
  build-essential meson ninja-build pkg-config clang clang-format
  libclang-rt-14-dev
  libuv1-dev libmsgpack-dev libssl-dev openssl libsqlite3-dev sqlite3
  libyaml-dev libpcre2-dev libsystemd-dev libcmocka-dev
  libh2o-dev libjansson-dev  # the collector's HTTP API
  libcurl4-openssl-dev  # tocsinctl --url, its client
  libjs-chart.js  # the dashboard's charts, served by the collector
  chromium chromium-driver  # tests/e2e/test_dashboard.py (headless, WebDriver)
  python3 logrotate procps monitoring-plugins-basic rsyslog rsyslog-gnutls
  curl systemd-journal-remote
  systemd  # systemd-journald, journalctl: tests/e2e/test_journald_live.py
)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" \
    || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "install-deps: need root to install: ${missing[*]}" >&2
    exit 1
  fi
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
