#!/usr/bin/env bash
# consumer.pkgconfig: a user without CMake. Installs lifeline into a temporary prefix, moves the
# prefix (the .pc files must not depend on where it was installed), then builds and runs small
# programs with `g++ <source> $(pkg-config --cflags --libs <package>)` and nothing else.
#   pkgconfig.sh <cmake> <lifeline build dir> <source dir> <work dir> <c++ compiler> <capi: ON|OFF> <jdbc: ON|OFF>
set -euo pipefail
cmake="$1" build="$2" src="$3" work="$4" cxx="$5" with_capi="$6" with_jdbc="$7"
fail() { echo "consumer.pkgconfig: $*" >&2; exit 1; }

command -v pkg-config >/dev/null || fail "pkg-config is not installed (scripts/setup.sh installs it)"
rm -rf "$work"
mkdir -p "$work"
"$cmake" --install "$build" --prefix "$work/installed" >"$work/install.log"
mv "$work/installed" "$work/prefix"
pc="$(find "$work/prefix" -name lifeline.pc -print -quit)"
[ -n "$pc" ] || fail "lifeline.pc was not installed"
export PKG_CONFIG_PATH="$(dirname "$pc")"
if grep -l -e "$work/installed" -e "$build" -e "$src" "$PKG_CONFIG_PATH"/*.pc; then
  fail "a .pc file names the install, build or source directory"
fi
echo "installed: $(cd "$PKG_CONFIG_PATH" && ls *.pc | tr '\n' ' ')"

# build <package> <source> <extra flags...>: compile, link and run it
build() {
  local package="$1" source="$2"; shift 2
  pkg-config --exists --print-errors "$package" || fail "pkg-config does not find $package"
  local flags
  flags="$(pkg-config --cflags --libs "$package")"
  echo "+ $cxx $* $source \$(pkg-config --cflags --libs $package)   # = $flags"
  # shellcheck disable=SC2086  # the flags must split into words, as in $(pkg-config ...)
  "$cxx" -Wall -Wextra -Wpedantic -Werror "$@" "$source" $flags -o "$work/$package"
  "$work/$package"
}

build lifeline "$src/tests/consumer/project/core_only.cpp" -DLIFELINE_EXPECT_NO_DRIVER=1
pkg-config --cflags lifeline | grep -q -- -pthread || fail "lifeline.pc lacks -pthread"
if [ "$with_capi" = "ON" ]; then
  [ -e "$PKG_CONFIG_PATH/lifeline-capi.pc" ] || fail "lifeline-capi.pc was not installed"
  # With MariaDB Connector/C, the define that CMake's lifeline::capi carries (FindMySQLCAPI.cmake).
  if pkg-config --print-requires lifeline-capi | grep -q '^libmariadb'; then
    pkg-config --cflags lifeline-capi | grep -q -- -DLIFELINE_CAPI_MARIADB=1 ||
      fail "lifeline-capi requires libmariadb but lacks -DLIFELINE_CAPI_MARIADB=1"
  fi
  build lifeline-capi "$src/tests/consumer/pkgconfig/capi_main.cpp"
elif [ -e "$PKG_CONFIG_PATH/lifeline-capi.pc" ]; then
  fail "lifeline-capi.pc is installed although lifeline::capi is not built"
fi
if [ "$with_jdbc" = "ON" ]; then
  build lifeline-jdbc "$src/tests/consumer/pkgconfig/jdbc_main.cpp"
elif [ -e "$PKG_CONFIG_PATH/lifeline-jdbc.pc" ]; then
  fail "lifeline-jdbc.pc is installed although lifeline::jdbc is not built"
fi
echo "consumer.pkgconfig: passed"
