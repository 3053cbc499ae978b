#!/usr/bin/env bash
# lifeline demo (the main job): installs missing packages, builds the examples, and runs them —
# the numbered examples, then the side-by-side fault demo — against one throwaway MariaDB on
# 127.0.0.1 that is started for it and stopped afterwards (also on failure or Ctrl-C).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
"$root/scripts/setup.sh"
mkdir -p "$root/build"
configure_and_build "$root/build/default"
ex="$root/build/default/examples"
exec "$root/build/default/tests/support/lifeline_with_server" -- bash -c '
  set -e
  for e in 01_quickstart 02_wrap_existing_code 03_connector_cpp 04_custom_policy 05_spdlog_observer; do
    [ -x "$1/$e" ] && "$1/$e"
  done
  echo
  exec "$1/lifeline_demo"
' demo "$ex"
