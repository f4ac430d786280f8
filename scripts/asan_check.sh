#!/usr/bin/env bash
# Run the dgp_ops tests against an AddressSanitizer build of the extension's CPU kernels, so
# that an out-of-bounds read or write fails with a sanitizer report instead of passing
# silently. The instrumented copy is built from the tracked sources in its own directory
# (build/asan/, or $ASAN_BUILD_DIR) and never touches the regular build.
#
#   bash scripts/asan_check.sh            # uses .venv/bin/python (or $PYTHON)
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
PY=${PYTHON:-$ROOT/.venv/bin/python}
case "$PY" in */*) [ "${PY#/}" != "$PY" ] || PY="$ROOT/$PY" ;; esac  # the script cds below
OUT=${ASAN_BUILD_DIR:-$ROOT/build/asan}
LIBASAN=$(${CXX:-c++} -print-file-name=libasan.so)
[ -e "$LIBASAN" ] || { echo "[asan] no libasan.so for ${CXX:-c++}"; exit 1; }
# libstdc++ is preloaded too: Python itself does not link it, and ASan's __cxa_throw
# interceptor needs the real symbol at start-up (or every C++ exception aborts).
LIBSTDCXX=$(${CXX:-c++} -print-file-name=libstdc++.so.6)

mkdir -p "$OUT/src"
# Sources of the copy: the tracked files the extension and its tests need (tar keeps their
# times, so a rerun rebuilds incrementally).
git ls-files csrc dgp_ops tests/__init__.py tests/dgp_ops benchmarks setup.py pyproject.toml \
  | tar -cf - -T - | tar -xf - -C "$OUT/src"
cd "$OUT/src"
echo "[asan] building the CPU kernels with -fsanitize=address in $OUT/src"
env -u FORCE_CUDA CUDA_VISIBLE_DEVICES="" MAX_JOBS=${MAX_JOBS:-2} \
  CFLAGS="-fsanitize=address -fno-omit-frame-pointer" LDFLAGS="-fsanitize=address" \
  "$PY" setup.py -q build_ext --inplace >/dev/null
nm -D dgp_ops/_C*.so | grep __asan_init >/dev/null || { echo "[asan] the build is not instrumented"; exit 1; }

echo "[asan] running tests/dgp_ops with $LIBASAN preloaded"
cd "$OUT/src"
# Python and torch leak by design at exit: leak checking is off; every access error aborts.
# Reports go to files (pytest captures stderr, and an abort loses what it captured).
REPORTS="$OUT/reports"
rm -rf "$REPORTS" && mkdir -p "$REPORTS"
set +e
LD_PRELOAD="$LIBASAN $LIBSTDCXX" \
ASAN_OPTIONS="detect_leaks=0:abort_on_error=1:halt_on_error=1:alloc_dealloc_mismatch=0:log_path=$REPORTS/asan" \
DGP_OPS_HUGE_PAGES=0 CUDA_VISIBLE_DEVICES="" \
  "$PY" -m pytest -q -p no:cacheprovider -m "not slow and not cuda" tests/dgp_ops "$@"
rc=$?
set -e
if compgen -G "$REPORTS/asan*" >/dev/null; then
  echo "[asan] AddressSanitizer reports:"
  cat "$REPORTS"/asan*
  exit 1
fi
exit $rc
