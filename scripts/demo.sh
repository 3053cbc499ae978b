#!/usr/bin/env bash
# lifeline demo (the main job): installs missing packages, builds the examples, and runs the demo
# against a throwaway MariaDB on 127.0.0.1 that is started for it and stopped afterwards.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
"$root/scripts/setup.sh"
mkdir -p "$root/build"
configure_and_build "$root/build/default"
exec "$root/build/default/tests/support/lifeline_with_server" -- "$root/build/default/examples/lifeline_demo" "$@"
