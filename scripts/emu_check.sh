#!/usr/bin/env bash
# Run the CUDA kernels without a GPU: compile the kernel bodies and launchers of
# csrc/*/..._cuda.cuh with the host compiler against the emulation of CUDA in
# csrc/emu/cuda_emu.h (a std::thread per CUDA thread, barriers, warp shuffles, atomics, shared
# memory), under AddressSanitizer and UndefinedBehaviorSanitizer, and compare every kernel with
# the CPU kernels (tests/cuda_emu). Then a self-test: the same build with a bug planted in a
# kernel must fail, once for an early return before a warp shuffle and once for an off-by-one
# index. Everything is built in build/cuda_emu (or $EMU_BUILD_DIR); the regular build of the
# extension provides the CPU kernels.
#
#   bash scripts/emu_check.sh            # uses .venv/bin/python (or $PYTHON)
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
PY=${PYTHON:-$ROOT/.venv/bin/python}
case "$PY" in */*) [ "${PY#/}" != "$PY" ] || PY="$ROOT/$PY" ;; esac
OUT=${EMU_BUILD_DIR:-$ROOT/build/cuda_emu}
CXX=${CXX:-c++}
JOBS=${MAX_JOBS:-2}
LIBASAN=$($CXX -print-file-name=libasan.so)
LIBSTDCXX=$($CXX -print-file-name=libstdc++.so.6)
[ -e "$LIBASAN" ] || { echo "[emu] no libasan.so for $CXX"; exit 1; }

read -r TORCH_LIB ABI TORCH_INC < <("$PY" - 2>/dev/null <<'PY'
import torch
from torch.utils.cpp_extension import include_paths, library_paths
print(library_paths()[0], int(torch._C._GLIBCXX_USE_CXX11_ABI),
      " ".join("-isystem" + p for p in include_paths()))
PY
)
# -ffp-contract=off: host code rounds every operation, as the CUDA code written with the
# *_rn helpers of csrc/common/host_device.h does. -g1: line tables for the sanitizer reports
# (full debug information doubles the compile time).
# shellcheck disable=SC2206
FLAGS=(-std=c++20 -O1 -g1 -fPIC -fvisibility=hidden -fvisibility-inlines-hidden
       -fno-omit-frame-pointer -ffp-contract=off -Wall -Werror
       -fsanitize=address,undefined -fno-sanitize=vptr -fno-sanitize-recover=all
       -DDGP_CUDA_EMU -D_GLIBCXX_USE_CXX11_ABI=$ABI $TORCH_INC)
UNITS=(emu_lib emu_dlt emu_warp_forward emu_warp_backward emu_distort)
OBJS=("${UNITS[@]/%/.o}")

# build DIR [CSRC]: compiles the units whose sources changed into DIR and links
# DIR/libdgp_ops_emu.so; CSRC (default csrc/) is searched first for the kernel headers.
build() {
  local dir=$1 csrc=${2:-$ROOT/csrc} pids=() unit
  mkdir -p "$dir"
  for unit in "${UNITS[@]}"; do
    local obj="$dir/$unit.o"
    if [ -e "$obj" ] && [ -z "$(find "$csrc" "$ROOT/tests/cuda_emu" -newer "$obj" \
        \( -name '*.h' -o -name '*.cuh' -o -name '*.cpp' \) -print -quit)" ]; then
      continue
    fi
    while [ "$(jobs -rp | wc -l)" -ge "$JOBS" ]; do sleep 1; done
    "$CXX" "${FLAGS[@]}" -I"$csrc" -c "$ROOT/tests/cuda_emu/$unit.cpp" -o "$obj" &
    pids+=($!)
  done
  for p in "${pids[@]}"; do wait "$p"; done
  link "$dir"
}

link() {
  "$CXX" -shared -fsanitize=address,undefined "${OBJS[@]/#/$1/}" -o "$1/libdgp_ops_emu.so" \
    -L"$TORCH_LIB" -lc10 -ltorch_cpu -Wl,-rpath,"$TORCH_LIB"
}

# run_tests LIB REPORTS PYTEST_ARGS...: pytest with the sanitizer runtime preloaded; sanitizer
# reports go to REPORTS/ (pytest captures stderr, and an abort loses what it captured).
run_tests() {
  local lib=$1 reports=$2
  shift 2
  rm -rf "$reports" && mkdir -p "$reports"
  LD_PRELOAD="$LIBASAN $LIBSTDCXX" \
  ASAN_OPTIONS="detect_leaks=0:abort_on_error=1:halt_on_error=1:alloc_dealloc_mismatch=0:log_path=$reports/asan" \
  UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1:log_path=$reports/ubsan" \
  DGP_OPS_HUGE_PAGES=0 CUDA_VISIBLE_DEVICES="" DGP_EMU_LIB="$lib" \
    "$PY" -m pytest -q -p no:cacheprovider "$@"
}

t0=$SECONDS
echo "[emu] building the CUDA kernels for the host emulation (ASan + UBSan) in $OUT"
build "$OUT"
echo "[emu] built in $((SECONDS - t0)) s; running tests/cuda_emu"
t1=$SECONDS
set +e
run_tests "$OUT/libdgp_ops_emu.so" "$OUT/reports" tests/cuda_emu 2>&1 | tee "$OUT/tests.log"
rc=${PIPESTATUS[0]}
set -e
if compgen -G "$OUT/reports/*" >/dev/null; then
  echo "[emu] sanitizer reports:"; cat "$OUT"/reports/*; exit 1
fi
[ "$rc" -eq 0 ] || { echo "[emu] tests/cuda_emu failed"; exit "$rc"; }
echo "[emu] tests/cuda_emu passed in $((SECONDS - t1)) s"

# ---- self-test: planted bugs must be caught ----------------------------------------------------
# plant NAME FILE UNIT TEST_FILTER EVIDENCE DESCRIPTION OLD NEW: a copy of csrc/ with OLD
# replaced by NEW (exactly once) in FILE, built into a library whose UNIT is recompiled from
# it; the tests TEST_FILTER selects must fail with EVIDENCE (a regex) in their output or in a
# sanitizer report.
t2=$SECONDS
MUTANTS=()
plant() {
  local name=$1 file=$2 unit=$3 dir="$OUT/planted/$1"
  rm -rf "$dir" && mkdir -p "$dir"
  cp -r "$ROOT/csrc" "$dir/csrc"
  "$PY" - "$dir/csrc/$file" "$7" "$8" <<'PY'
import sys
path, old, new = sys.argv[1:]
text = open(path).read()
assert text.count(old) == 1, f"the planted bug's anchor is not unique in {path}: {old!r}"
open(path, "w").write(text.replace(old, new))
PY
  cp "${OBJS[@]/#/$OUT/}" "$dir/"
  while [ "$(jobs -rp | wc -l)" -ge "$JOBS" ]; do sleep 1; done
  "$CXX" "${FLAGS[@]}" -I"$dir/csrc" -c "$ROOT/tests/cuda_emu/$unit.cpp" -o "$dir/$unit.o" &
  MUTANTS+=("$name"$'\t'"$4"$'\t'"$5"$'\t'"$6")
}
plant early_return warp/warp_cuda.cuh emu_warp_backward \
  "test_warp_matches_cpu and zeros-bilinear-float64" '__shfl_down_sync.*exited' \
  "an early return before a warp shuffle (warp backward, threads past the last pixel)" \
  "  if (pix < out_plane) {" "  if (pix >= out_plane) return;  // planted
  {"
plant off_by_one warp/warp_cuda.cuh emu_warp_forward \
  "test_warp_matches_cpu and zeros-bilinear-float32" \
  'heap-buffer-overflow|out of bounds|not close' \
  "an off-by-one pixel bound (warp forward: pix > out_plane for pix >= out_plane)" \
  "  if (pix >= out_plane) return;
  const ItemParams& p = params[b];
  const int64_t y = pix / ow, x = pix % ow;
  T* o" "  if (pix > out_plane) return;  // planted
  const ItemParams& p = params[b];
  const int64_t y = pix / ow, x = pix % ow;
  T* o"
plant distort_jacobian distort/distort_kernel.h emu_distort \
  "test_distort_matches_cpu and fisheye-zeros-bilinear-float64" 'not close|Mismatched' \
  "a wrong Jacobian term (distorted warp, fisheye)" \
  "  J[2] = J[1];" "  J[2] = -J[1];  // planted"
wait
caught_all=1
for m in "${MUTANTS[@]}"; do
  IFS=$'\t' read -r name filter evidence what <<<"$m"
  dir="$OUT/planted/$name"
  link "$dir"
  set +e
  run_tests "$dir/libdgp_ops_emu.so" "$dir/reports" tests/cuda_emu/test_emu_kernels.py \
    -x -k "$filter" >"$dir/tests.log" 2>&1
  mrc=$?
  set -e
  found=$(cat "$dir/tests.log" "$dir"/reports/* 2>/dev/null | grep -m1 -E "$evidence" \
    | sed -E 's/^E? *//' | cut -c1-240 || true)
  # Where a sanitizer stopped it: the innermost frame of its report.
  frame=$(grep -m1 -hE '^ +#0 ' "$dir"/reports/* 2>/dev/null \
    | sed -E 's|.* in (void )?([^(]+)\(.*/([^ /]+:[0-9]+)$| in \2 (\3)|' || true)
  if [ "$mrc" -ne 0 ] && [ "$mrc" -ne 5 ] && [ -n "$found" ]; then
    echo "[emu] self-test: planted $what: caught: $found$frame"
  else
    echo "[emu] self-test: planted $what: NOT caught (pytest exit $mrc, see $dir/tests.log)"
    caught_all=0
  fi
done
echo "[emu] self-test in $((SECONDS - t2)) s; total $((SECONDS - t0)) s"
[ "$caught_all" -eq 1 ]
