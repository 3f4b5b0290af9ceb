#!/usr/bin/env bash
# Install dependencies, build with ASan+UBSan and warnings as errors,
# check formatting, and run every test suite (unit, fuzz corpus, e2e).
# Ends with one line "N passed, N failed" counted from meson's test log.
set -euo pipefail
cd "$(dirname "$0")/.."
bash packaging/install-deps.sh

echo "== style: clang-format"
files=$(git ls-files '*.c' '*.h' 2>/dev/null || find common agent collector tests bench -name '*.[ch]')
clang-format --dry-run --Werror $files

build=${BUILD_DIR:-build-test}
echo "== build: gcc, -Werror, ASan+UBSan ($build)"
if [ ! -d "$build" ]; then
  meson setup "$build" -Dwerror=true -Db_sanitize=address,undefined
fi
ninja -C "$build"

echo "== build: clang, -Werror"
if [ ! -d "$build-clang" ]; then
  CC=clang meson setup "$build-clang" -Dwerror=true
fi
ninja -C "$build-clang"

echo "== tests"
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
set +e
meson test -C "$build" --print-errorlogs --num-processes 2 "$@"
rc=$?
set -e
python3 - "$build/meson-logs/testlog.json" <<'PY'
import json, sys
passed = failed = skipped = 0
for line in open(sys.argv[1]):
    r = json.loads(line).get("result")
    if r in ("OK", "EXPECTEDFAIL"):
        passed += 1
    elif r == "SKIP":
        skipped += 1
    else:
        failed += 1
print("%d passed, %d failed, %d skipped" % (passed, failed, skipped))
PY
exit $rc
