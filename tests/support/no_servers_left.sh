#!/usr/bin/env bash
# ctest FIXTURES_CLEANUP for integration tests: fails (and cleans up) if any mariadbd that the
# harness started for this build tree (datadir under a lifeline-mariadb-* directory whose owner
# file names $1) is still running. Servers of other build trees running at the same time are left alone.
# The nodes of replicated_topology / galera_cluster live in <lifeline-mariadb-topology|galera-*>/nodeN
# directories with their own owner files, so they are judged the same way.
set -u
owner=${1:?usage: no_servers_left.sh <build dir>}
left=0
for d in /proc/[0-9]*; do
  [ "$(cat "$d/comm" 2>/dev/null)" = mariadbd ] || continue
  cmd=$(tr '\0' ' ' < "$d/cmdline" 2>/dev/null)
  case "$cmd" in
    *--datadir=*/lifeline-mariadb-*)
      pid=${d#/proc/}
      dir=$(sed -n 's/.*--datadir=\([^ ]*\)\/data.*/\1/p' <<<"$cmd")
      [ "$(cat "$dir/owner" 2>/dev/null)" = "$owner" ] || continue
      echo "left running by a test: pid $pid: $cmd"
      kill -CONT "$pid" 2>/dev/null; kill -KILL "$pid" 2>/dev/null
      [ -n "$dir" ] && rm -rf "$dir"
      left=$((left + 1));;
  esac
done
# Directories of wrappers that were SIGKILLed (their server died with them): remove when stale.
for dir in "${TMPDIR:-/tmp}"/lifeline-mariadb-*; do
  [ -f "$dir/harness.pid" ] || continue
  [ "$(cat "$dir/owner" 2>/dev/null)" = "$owner" ] || continue
  pid=$(cat "$dir/harness.pid" 2>/dev/null)
  if ! kill -0 "$pid" 2>/dev/null && [ -n "$(find "$dir" -maxdepth 0 -mmin +2)" ]; then
    echo "removing stale harness directory $dir"
    rm -rf "$dir"
  fi
done
if [ "$left" -gt 0 ]; then
  echo "FAILED: $left harness server(s) were left running (now killed)"
  exit 1
fi
echo "no harness servers left running"
