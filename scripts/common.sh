# Shared by scripts/test.sh, scripts/demo.sh and scripts/bench.sh: configure + build one tree.
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
jobs="$(nproc 2>/dev/null || echo 2)"

# configure_and_build <build dir> [--target T] [cmake args...]
configure_and_build() {
  local dir="$1"; shift
  local target=()
  if [ "${1:-}" = "--target" ]; then target=(--target "$2"); shift 2; fi
  echo "== configure $dir $*"
  # -g1 (line tables: enough for sanitizer and crash stack traces) instead of -g: full debug info
  # costs a quarter of the build time of these template-heavy tests (measured).
  cmake -S "$root" -B "$dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo "-DCMAKE_CXX_FLAGS_RELWITHDEBINFO=-O2 -g1 -DNDEBUG" \
    "$@" >"$dir.configure.log" 2>&1 ||
    { cat "$dir.configure.log"; return 1; }
  echo "== build $dir ${target[*]} (-j$jobs)"
  cmake --build "$dir" -j "$jobs" "${target[@]}" >"$dir.build.log" 2>&1 || { tail -n 80 "$dir.build.log"; return 1; }
}
