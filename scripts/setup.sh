#!/usr/bin/env bash
# lifeline setup: installs the Debian 12 packages lifeline builds, tests and demos with — only the
# missing ones — and prints what it does. Idempotent; non-interactive; works as root (or via sudo).
# Both README commands (scripts/test.sh, scripts/demo.sh) call it first.
set -euo pipefail

# galera-4 and rsync: the Galera cluster of the failover tests (wsrep provider, rsync SST).
packages=(libmariadb-dev libmysqlcppconn-dev libboost-dev libspdlog-dev catch2 libbenchmark-dev
          libcli11-dev nlohmann-json3-dev mariadb-server mariadb-client galera-4 rsync cmake g++ pkg-config)

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "setup: all ${#packages[@]} packages present (${packages[*]})"
  exit 0
fi

sudo=()
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || { echo "setup: need root or sudo to install: ${missing[*]}" >&2; exit 1; }
  sudo=(sudo)
fi
echo "setup: installing missing packages: ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
# The package's post-install must not start the machine's own MariaDB service: lifeline's tests
# run their own throwaway servers and never touch the system one or port 3306.
policy=/usr/sbin/policy-rc.d
if [ ! -e "$policy" ]; then
  printf '#!/bin/sh\nexit 101\n' | "${sudo[@]}" tee "$policy" >/dev/null
  "${sudo[@]}" chmod +x "$policy"
  trap '"${sudo[@]}" rm -f "$policy"' EXIT
fi
echo "setup: apt-get update"
"${sudo[@]}" apt-get update -qq
echo "setup: apt-get install ${missing[*]}"
"${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
echo "setup: done"
