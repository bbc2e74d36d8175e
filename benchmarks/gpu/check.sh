#!/usr/bin/env bash
# benchmarks/gpu/check.sh OUTDIR: the one GPU check of Ambient, for a machine with an NVIDIA GPU,
# nvcc and CMake but no JDK and no network (an H100 takes well under 8 minutes).
#   1. records the machine (nvidia-smi's card, driver, nvcc, CMake, CPU) in OUTDIR/machine.txt
#   2. builds libambient_cpu.so and libambient_cuda.so with CMake (Release) in OUTDIR/build
#   3. runs the C tests (ctest; test_cuda_load then checks the GPU path too)
#   4. runs the CPU-vs-CUDA parity harness (native/tests/test_parity.c) over every kernel and
#      writes its table to OUTDIR/parity.txt and OUTDIR/parity.csv (matrix products in the
#      precision AMBIENT_CUDA_MATMUL chooses: bf16 tensor cores unless set; the table's header
#      and the measured matmul ceiling say which), then gemm and the convolutions once more
#      with AMBIENT_CUDA_MATMUL=fp32, the exact SIMT path (OUTDIR/parity_fp32.txt)
#   5. Java: when $AMBIENT_JAVA names a java binary (a jlink'ed runtime works) or `java` is on
#      PATH, records its version; the W2/W3 train-step benchmark is not wired up yet, see
#      run_java below (the hook where it goes)
# Every stage has a time limit, logs to OUTDIR, and the summary (OUTDIR/summary.txt) says what
# passed. Exit status: 0 when the build, the tests and the parity harness passed on a GPU (1
# otherwise, including on a machine where no GPU answers).
# Options (environment): AMBIENT_PARITY_ARGS (e.g. "--quick" or "--filter gemm,conv2d"),
# AMBIENT_BUILD_JOBS (default: all cores), AMBIENT_CUDA_MATMUL (bf16, the default, tf32 or fp32:
# the precision of the CUDA library's matrix products in the main parity run).
set -euo pipefail

if [ $# -ne 1 ]; then
  echo "usage: $0 OUTDIR" >&2
  exit 2
fi
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
mkdir -p "$1"
OUT=$(cd "$1" && pwd)
BUILD="$OUT/build"
JOBS=${AMBIENT_BUILD_JOBS:-$(nproc)}
START=$(date +%s)
SUMMARY="$OUT/summary.txt"
STATUS=0
: > "$SUMMARY"

elapsed() { echo $(( $(date +%s) - START )); }
note() { echo "[$(elapsed) s] $*" | tee -a "$SUMMARY"; }

# Runs a stage under a time limit, its output in OUTDIR/<name>.log; records pass or fail.
stage() {
  local name=$1 limit=$2
  shift 2
  note "$name: $*"
  if timeout --signal=TERM --kill-after=10 "$limit" "$@" > "$OUT/$name.log" 2>&1; then
    note "$name: ok"
  else
    local rc=$?
    if [ "$rc" -eq 124 ]; then note "$name: TIMED OUT after $limit s (see $name.log)"; else note "$name: FAILED with status $rc (see $name.log)"; fi
    STATUS=1
    return 1
  fi
}

# ---- 1. The machine ------------------------------------------------------------------------
{
  echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
  echo "commit: $(git -C "$ROOT" rev-parse HEAD 2>/dev/null || echo unknown)"
  if command -v nvidia-smi > /dev/null; then
    echo "gpu: $(nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv,noheader 2>&1 | head -n 4)"
  else
    echo "gpu: nvidia-smi not found"
  fi
  echo "nvcc: $(nvcc --version 2>&1 | tail -n 1)"
  echo "cmake: $(cmake --version | head -n 1)"
  echo "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //') ($(nproc) threads)"
} > "$OUT/machine.txt" 2>&1
CARD=$(grep '^gpu:' "$OUT/machine.txt" | cut -d' ' -f2- | cut -d, -f1)
note "card: $CARD"

# ---- 2. Build --------------------------------------------------------------------------------
if stage configure 120 cmake -S "$ROOT/native" -B "$BUILD" -DCMAKE_BUILD_TYPE=Release &&
   stage build 300 cmake --build "$BUILD" -j "$JOBS"; then
  if [ ! -f "$BUILD/libambient_cuda.so" ]; then
    note "build: libambient_cuda.so was not built (nvcc not found by CMake?)"
    STATUS=1
  fi
fi

# ---- 3. C tests (the parity harness runs below, with its table) ------------------------------
if [ -f "$BUILD/libambient_cuda.so" ]; then
  stage ctest 180 ctest --test-dir "$BUILD" --output-on-failure -E '^test_parity$' || true

  # ---- 4. Parity and timing ------------------------------------------------------------------
  # shellcheck disable=SC2086 # AMBIENT_PARITY_ARGS is a list of options
  stage parity 300 "$BUILD/tests/test_parity" --csv "$OUT/parity.csv" ${AMBIENT_PARITY_ARGS:-} \
    "$BUILD/libambient_cpu.so" "$BUILD/libambient_cuda.so" || true
  cp "$OUT/parity.log" "$OUT/parity.txt"
  if grep -q '^test_parity: no CUDA device' "$OUT/parity.txt"; then
    note "parity: NO GPU answered, nothing was compared or timed (the libraries load; see parity.txt)"
    STATUS=1
  fi
  fails=$(grep -c ' FAIL ' "$OUT/parity.txt" || true)
  if [ "$fails" -gt 0 ]; then note "parity: $fails failing case(s)"; fi
  note "parity: $(grep -m1 '^test_parity: matrix products' "$OUT/parity.txt" || echo 'precision of matrix products not reported')"
  note "parity: $(grep -m1 '^test_parity: measured matmul ceiling' "$OUT/parity.txt" || echo 'matmul ceiling not measured')"

  # ---- 4b. Matrix products on the exact float32 path (the SIMT kernels) -----------------------
  # The run above takes AMBIENT_CUDA_MATMUL from the environment (bf16 tensor cores unless set);
  # this one checks and times gemm and the convolutions in fp32 too, at the smaller shapes.
  if [ "${AMBIENT_CUDA_MATMUL:-bf16}" != "fp32" ]; then
    AMBIENT_CUDA_MATMUL=fp32 stage parity_fp32 150 "$BUILD/tests/test_parity" --quick --filter gemm,conv2d \
      --csv "$OUT/parity_fp32.csv" "$BUILD/libambient_cpu.so" "$BUILD/libambient_cuda.so" || true
    cp "$OUT/parity_fp32.log" "$OUT/parity_fp32.txt"
    fails=$(grep -c ' FAIL ' "$OUT/parity_fp32.txt" || true)
    if [ "$fails" -gt 0 ]; then note "parity_fp32: $fails failing case(s)"; fi
  fi
fi

# ---- 4b. Ours against cuBLAS and cuDNN (native/tests/vendor_compare.c) ------------------------
# Times our GEMM and convolutions next to cuBLAS (SGEMM, GemmEx TF32 and BF16) and cuDNN (NHWC
# float32, FMA and default math, algorithm by cudnnFind) on DESIGN.md's and W3's shapes, checks
# their results against ours, and writes OUTDIR/vendor.txt and OUTDIR/vendor.csv. The program
# finds the libraries itself (AMBIENT_CUBLAS / AMBIENT_CUDNN name a file; else the system path,
# a CUDA toolkit's lib64 and PyTorch's pip wheels under site-packages); when python3 can locate
# the wheels' nvidia packages (without importing torch), their nvidia/*/lib folders go on
# LD_LIBRARY_PATH for this stage only, so that cuDNN 9 also finds the sub-libraries and NVRTC it
# opens by name. Absent libraries are reported in the summary, never fatal: ours is timed alone.
# AMBIENT_VENDOR_ARGS passes options (e.g. "--quick" or "--filter conv2d_forward").
if [ -x "$BUILD/tests/vendor_compare" ]; then
  WHEEL_LIBS=$(timeout 60 python3 - 2> /dev/null << 'PYTHON' || true
import glob, importlib.util, os
folders = []
try:
    nvidia = importlib.util.find_spec("nvidia")
except (ImportError, ValueError):
    nvidia = None
for location in (nvidia.submodule_search_locations or []) if nvidia else []:
    folders += sorted(glob.glob(os.path.join(location, "*", "lib")))
print(":".join(dict.fromkeys(folders)))
PYTHON
  )
  if [ -n "$WHEEL_LIBS" ]; then note "vendor: pip wheels' library folders: $WHEEL_LIBS"; fi
  VENDOR_LIBRARY_PATH=$WHEEL_LIBS
  if [ -n "${LD_LIBRARY_PATH:-}" ]; then VENDOR_LIBRARY_PATH=${VENDOR_LIBRARY_PATH:+$VENDOR_LIBRARY_PATH:}$LD_LIBRARY_PATH; fi
  # shellcheck disable=SC2086 # AMBIENT_VENDOR_ARGS is a list of options
  stage vendor 150 env "LD_LIBRARY_PATH=$VENDOR_LIBRARY_PATH" \
    "$BUILD/tests/vendor_compare" --csv "$OUT/vendor.csv" ${AMBIENT_VENDOR_ARGS:-} "$BUILD/libambient_cuda.so" || true
  cp "$OUT/vendor.log" "$OUT/vendor.txt"
  while IFS= read -r found; do note "vendor: ${found#vendor_compare: }"; done \
    < <(grep -E '^vendor_compare: (cuBLAS|cuDNN|no cuBLAS|no cuDNN|no CUDA device|[0-9]+ comparison)' "$OUT/vendor.txt" || true)
elif [ -f "$BUILD/libambient_cuda.so" ]; then
  note "vendor: vendor_compare was not built (CMake did not find the CUDA toolkit); cuBLAS/cuDNN not compared"
fi

# ---- 5. Java (hook) ---------------------------------------------------------------------------
run_java() {
  local java=$1
  "$java" -version > "$OUT/java.log" 2>&1 || return 1
  note "java: $(head -n 1 "$OUT/java.log")"
  # The W2/W3 train step (./ambient bench train) needs the Java training loop on the CUDA
  # backend, which is not ready yet: when it is, run it here with the libraries just built,
  # e.g. "$java" --enable-native-access=ALL-UNNAMED -Dambient.native.dir="$BUILD" -jar ... ,
  # and write its table to "$OUT/train.txt".
  note "java: train-step benchmark not wired up yet (hook in benchmarks/gpu/check.sh run_java)"
}
JAVA_BIN=${AMBIENT_JAVA:-$(command -v java || true)}
if [ -n "$JAVA_BIN" ] && [ -x "$JAVA_BIN" ]; then
  run_java "$JAVA_BIN" || note "java: $JAVA_BIN -version failed (see java.log)"
else
  note "java: none (set AMBIENT_JAVA to a java binary to run the Java stages)"
fi

note "done in $(elapsed) s, status $STATUS; card: $CARD"
exit "$STATUS"
