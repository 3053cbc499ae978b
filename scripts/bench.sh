#!/usr/bin/env bash
# lifeline benchmarks, from a fresh Debian 12 machine (benchmarks/README.md explains the figures).
#   1. installs missing Debian packages (scripts/setup.sh)
#   2. configures build/bench (Release, -DLIFELINE_BUILD_BENCHMARKS=ON) and builds the benchmarks
#      and the server harness
#   3. runs each benchmark against its own throwaway MariaDB on 127.0.0.1
#      (build/bench/tests/support/lifeline_with_server -- <binary>)
# Prints every `figure ...` line (`not_measured ...` for figures that could not be taken, `reported ...`
# for figures the issue asks for without a target),
# then a summary; the full output of each benchmark is in build/bench/results/<name>.log.
# Exits non-zero only if a benchmark fails to run; a missed target is reported, not an error.
# Not part of scripts/test.sh. Takes about 8 minutes on 2 cores (plus about 2 for the first build);
# bench_throughput about 4, bench_failover about 1.5 (a replicated topology, 3 failovers, a Galera cluster, 2 node losses).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
"$root/scripts/setup.sh"

dir="$root/build/bench"
mkdir -p "$root/build"
configure_and_build "$dir" --target lifeline_benchmarks \
  -DCMAKE_BUILD_TYPE=Release -DLIFELINE_BUILD_BENCHMARKS=ON -DLIFELINE_BUILD_EXAMPLES=OFF
# The chaos test prints the darkness figure (lifeline dark while a raw-driver probe was not).
cmake --build "$dir" --target it_chaos -j "$jobs" >>"$dir.build.log" 2>&1 || { tail -n 40 "$dir.build.log"; exit 1; }

with_server="$dir/tests/support/lifeline_with_server"
results="$dir/results"
mkdir -p "$results"
status=0
for b in roundtrip throughput health recovery detection outage bulk async failover; do
  if [ ! -x "$dir/benchmarks/bench_$b" ]; then
    echo "not_measured bench_$b not built (see the configure log)" | tee "$results/$b.log"; continue
  fi
  echo "== bench_$b"
  # The load average goes into the log: other work on the machine skews every timing figure.
  echo "# bench_$b starting; load average $(cut -d' ' -f1-3 /proc/loadavg)" >"$results/$b.log"
  # The single-thread round trip runs client and server on one CPU: on a small VM each connection
  # otherwise lands at random in a fast (~13 us) or slow (~90 us, cross-CPU wake-up) regime for its
  # whole life, and a ratio of two connections measures that lottery, not lifeline (measured here).
  pin=()
  if [ "$b" = roundtrip ] && command -v taskset >/dev/null; then pin=(taskset -c 0); fi
  # bench_failover starts its own replicated topology and Galera cluster (no wrapper server).
  wrapper=("$with_server" --)
  if [ "$b" = failover ]; then wrapper=(); fi
  if ! "${pin[@]}" "${wrapper[@]}" "$dir/benchmarks/bench_$b" >>"$results/$b.log" 2>&1; then
    echo "bench_$b FAILED to run:"; tail -n 20 "$results/$b.log"; status=1
  fi
  grep -E '^(#|figure|not_measured|reported) ' "$results/$b.log" || true
done

echo "== chaos (30 s; the full test runs 60 s)"
echo "# chaos starting; load average $(cut -d' ' -f1-3 /proc/loadavg)" >"$results/chaos.log"
if ! LIFELINE_CHAOS_SECONDS=30 "$with_server" -- "$dir/tests/integration/it_chaos" "[chaos]" >>"$results/chaos.log" 2>&1; then
  echo "chaos FAILED:"; grep -E '^(chaos|figure)|FAILED' "$results/chaos.log" | tail -n 20; status=1
fi
grep -E '^(figure|not_measured) ' "$results/chaos.log" || true

echo
echo "== summary ($(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) cores)"
cat "$results"/{roundtrip,throughput,health,recovery,detection,outage,bulk,async,failover,chaos}.log 2>/dev/null |
  grep -E '^(figure|not_measured|reported) ' | tee "$results/figures.txt"
echo "ok: $(grep -c ' ok$' "$results/figures.txt" || true)  miss: $(grep -c ' miss$' "$results/figures.txt" || true)  not measured: $(grep -c '^not_measured' "$results/figures.txt" || true)  reported (no target): $(grep -c '^reported' "$results/figures.txt" || true)"
exit "$status"
