#!/usr/bin/env bash
# lifeline: the whole test suite, from a fresh Debian 12 machine.
#   1. installs missing Debian packages (scripts/setup.sh)
#   2. builds and runs unit, integration and consumer tests (ctest) — each integration test gets its
#      own throwaway MariaDB on 127.0.0.1, stopped afterwards
#   3. rebuilds with AddressSanitizer + UndefinedBehaviorSanitizer and runs unit + integration again
#   4. rebuilds the unit tests with ThreadSanitizer (the concurrent parts: watchdog, retry budget,
#      circuit breaker) and runs them; the drivers are not TSan-instrumented, so integration
#      tests do not run under it
# Exits non-zero if anything fails.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
"$root/scripts/setup.sh"

mkdir -p "$root/build"
status=0
run_ctest() {
  local dir="$1"; shift
  echo "== ctest $dir $*"
  (cd "$dir" && ctest --output-on-failure --no-tests=error -j "$jobs" "$@") || status=1
}

configure_and_build "$root/build/default"
run_ctest "$root/build/default"
# The chaos test's tally (ctest shows a passing test's output only in its log).
grep -hE '^(chaos|figure chaos|async chaos|failover chaos)' "$root/build/default/Testing/Temporary/LastTest.log" 2>/dev/null || true

configure_and_build "$root/build/asan" -DLIFELINE_SANITIZE=address,undefined -DLIFELINE_BUILD_EXAMPLES=OFF
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
  run_ctest "$root/build/asan" -LE 'consumer'

configure_and_build "$root/build/tsan" --target lifeline_unit_tests -DLIFELINE_SANITIZE=thread \
  -DLIFELINE_BUILD_EXAMPLES=OFF
TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1 run_ctest "$root/build/tsan" -L unit

if [ "$status" -ne 0 ]; then
  echo "lifeline tests: FAILED"
  exit 1
fi
echo "lifeline tests: all passed (default build, ASan+UBSan, TSan)"
