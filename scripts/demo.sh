#!/usr/bin/env bash
# lifeline demo (the main job): installs missing packages, builds the examples, and runs them —
# the numbered examples, the side-by-side fault demo, then lifeline-doctor — against one throwaway MariaDB on
# 127.0.0.1 that is started for it and stopped afterwards (also on failure or Ctrl-C).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
"$root/scripts/setup.sh"
mkdir -p "$root/build"
configure_and_build "$root/build/default"
ex="$root/build/default/examples"
doctor="$root/build/default/tools/doctor/lifeline-doctor"
exec "$root/build/default/tests/support/lifeline_with_server" -- bash -c '
  set -e
  for e in 01_quickstart 02_wrap_existing_code 03_connector_cpp 04_custom_policy 05_spdlog_observer; do
    [ -x "$1/$e" ] && "$1/$e"
  done
  echo
  "$1/lifeline_demo"
  # The troubleshooting steps of the 2013 article, automated, against the server the demo just put
  # through its faults. Exit code 1 means findings; only 2 (could not run) fails the demo.
  if [ -x "$2" ]; then
    echo
    echo "== lifeline-doctor: the troubleshooting steps of the 2013 article, against the demo server"
    rc=0
    "$2" "mysql://$LIFELINE_TEST_USER@$LIFELINE_TEST_HOST:$LIFELINE_TEST_PORT/$LIFELINE_TEST_DATABASE" \
      --password-env LIFELINE_TEST_PASSWORD --idle-probe 4s --probe-timeout 1s || rc=$?
    echo "lifeline-doctor exit code: $rc (0: nothing found, 1: findings, 2: could not run)"
    [ "$rc" -le 1 ]
  fi
' demo "$ex" "$doctor"
