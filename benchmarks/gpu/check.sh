#!/usr/bin/env bash
# benchmarks/gpu/check.sh OUTDIR: the one GPU check of Ambient, for a machine with an NVIDIA GPU,
# nvcc and CMake but no JDK and no network (an H100 takes well under 8 minutes).
#   1. records the machine (nvidia-smi's card, driver, nvcc, CMake, CPU) in OUTDIR/machine.txt
#   2. builds libambient_cpu.so and libambient_cuda.so with CMake (Release) in OUTDIR/build
#   3. runs the C tests (ctest; test_cuda_load then checks the GPU path too)
#   4. runs the CPU-vs-CUDA parity harness (native/tests/test_parity.c) over every kernel and
#      writes its table to OUTDIR/parity.txt and OUTDIR/parity.csv (matrix products in the
#      precision AMBIENT_CUDA_MATMUL chooses: bf16 tensor cores unless set; the table's header
#      and the measured matmul ceiling say which), then gemm, the convolutions and attention
#      once more with AMBIENT_CUDA_MATMUL=fp32, the exact SIMT path (OUTDIR/parity_fp32.txt)
#   4c. times our GEMM and convolutions against cuBLAS and cuDNN when they are found
#      (native/tests/vendor_compare.c; OUTDIR/vendor.txt and vendor.csv)
#   5. Java, when a Java 25 and the benchmarks jar are at hand (see "Java" below): the whole train
#      step of W3 and W2 on the GPU (`bench train --device cuda` with the libraries just built),
#      with PyTorch on the same card under bf16 autocast when python3 has torch with CUDA; the
#      table in OUTDIR/train.txt, the JSON in OUTDIR/train-w3.json and train-w2.json
# Every stage has a time limit, logs to OUTDIR, and the summary (OUTDIR/summary.txt) says what
# passed. Exit status: 0 when the build, the tests and the parity harness passed on a GPU, and
# the train step when it ran (1 otherwise, including on a machine where no GPU answers).
# Options (environment): AMBIENT_PARITY_ARGS (e.g. "--quick" or "--filter gemm,conv2d"),
# AMBIENT_BUILD_JOBS (default: all cores), AMBIENT_CUDA_MATMUL (bf16, the default, tf32 or fp32:
# the precision of the CUDA library's matrix products in the main parity run).
# Java (stage 5): AMBIENT_JAVA (a java binary) with AMBIENT_JARS (a folder holding
# ambient-benchmarks.jar); else AMBIENT_JAVA_BUNDLE, the archive benchmarks/gpu/prepare-java.sh
# makes on a development machine (a jlink'ed runtime and the jar; found by itself at
# benchmarks/gpu/target/java/ambient-java.tar.gz); else `java` on PATH with
# benchmarks/target/ambient-benchmarks.jar of a Maven build. AMBIENT_PYTHON: the Python with
# torch (default: python3 on PATH). AMBIENT_TRAIN_W2_ARGS / AMBIENT_TRAIN_W3_ARGS replace the
# rounds and steps below; AMBIENT_TRAIN_DEVICE=cpu runs the stage on the CPU (to try the stage
# itself on a machine without a GPU, with small --batch and --steps in those two).
# AMBIENT_TIME_BUDGET (default 470 s): stage 5 cuts its time limits to what is left of it.
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
  # this one checks and times gemm, the convolutions and attention in fp32 too, at the smaller
  # shapes.
  if [ "${AMBIENT_CUDA_MATMUL:-bf16}" != "fp32" ]; then
    AMBIENT_CUDA_MATMUL=fp32 stage parity_fp32 150 "$BUILD/tests/test_parity" --quick --filter gemm,conv2d,attention \
      --csv "$OUT/parity_fp32.csv" "$BUILD/libambient_cpu.so" "$BUILD/libambient_cuda.so" || true
    cp "$OUT/parity_fp32.log" "$OUT/parity_fp32.txt"
    fails=$(grep -c ' FAIL ' "$OUT/parity_fp32.txt" || true)
    if [ "$fails" -gt 0 ]; then note "parity_fp32: $fails failing case(s)"; fi
  fi
fi

# ---- 4c. Ours against cuBLAS and cuDNN (native/tests/vendor_compare.c) ------------------------
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

# ---- 5. Java: the W2/W3 train step on the GPU, against PyTorch --------------------------------
TIME_BUDGET=${AMBIENT_TIME_BUDGET:-470}
TRAIN_DEVICE=${AMBIENT_TRAIN_DEVICE:-cuda}
# W3 (EDM2-XS's shape, batch 128: the issue's target) first, in one short round; then W2 in
# three rounds alternating with PyTorch
TRAIN_W3_ARGS=${AMBIENT_TRAIN_W3_ARGS:---rounds 1 --steps 3 --warmup 2}
TRAIN_W2_ARGS=${AMBIENT_TRAIN_W2_ARGS:---rounds 3 --steps 10 --warmup 3}
JAVA_TEMP=""
trap '[ -z "$JAVA_TEMP" ] || rm -rf "$JAVA_TEMP"' EXIT

# The feature version of a java binary (25 for 25.0.1), or nothing.
java_version() {
  "$1" -version 2>&1 | head -n 1 | sed -nE 's/.*version "(1\.)?([0-9]+).*/\2/p'
}

# Sets JAVA_BIN and JAR_DIR (see the header), or says why not and returns 1; EXPLICIT=1 when the
# caller named them (then a problem fails the stage).
find_java() {
  EXPLICIT=0
  local bundle=${AMBIENT_JAVA_BUNDLE:-}
  if [ -n "${AMBIENT_JAVA:-}" ] || [ -n "${AMBIENT_JARS:-}" ]; then
    EXPLICIT=1
    JAVA_BIN=${AMBIENT_JAVA:-$(command -v java || true)}
    JAR_DIR=${AMBIENT_JARS:-$ROOT/benchmarks/target}
  elif [ -n "$bundle" ] || [ -f "$ROOT/benchmarks/gpu/target/java/ambient-java.tar.gz" ]; then
    [ -n "$bundle" ] && EXPLICIT=1
    bundle=${bundle:-$ROOT/benchmarks/gpu/target/java/ambient-java.tar.gz}
    [ -f "$bundle" ] || { note "java: AMBIENT_JAVA_BUNDLE=$bundle does not exist"; return 1; }
    JAVA_TEMP=$(mktemp -d)
    tar -C "$JAVA_TEMP" -xzf "$bundle" || { note "java: cannot unpack $bundle"; return 1; }
    JAVA_BIN=$JAVA_TEMP/runtime/bin/java
    JAR_DIR=$JAVA_TEMP/jars
    note "java: unpacked $bundle"
  else
    JAVA_BIN=$(command -v java || true)
    JAR_DIR=$ROOT/benchmarks/target
  fi
  if [ -z "$JAVA_BIN" ] || [ ! -x "$JAVA_BIN" ]; then
    note "java: none (${JAVA_BIN:-no java on PATH}; benchmarks/gpu/prepare-java.sh makes one to bring along)"
    return 1
  fi
  local version
  version=$(java_version "$JAVA_BIN")
  if [ -z "$version" ] || [ "$version" -lt 25 ]; then
    note "java: $JAVA_BIN is Java ${version:-of unknown version}; Ambient needs 25 (benchmarks/gpu/prepare-java.sh makes a runtime)"
    return 1
  fi
  if [ ! -f "$JAR_DIR/ambient-benchmarks.jar" ]; then
    note "java: $JAR_DIR/ambient-benchmarks.jar is missing (AMBIENT_JARS, or ./ambient build)"
    return 1
  fi
  "$JAVA_BIN" -version > "$OUT/java.log" 2>&1
  note "java: $(head -n 1 "$OUT/java.log") ($JAVA_BIN), $JAR_DIR/ambient-benchmarks.jar"
}

run_java() {
  if ! find_java; then
    if [ "$EXPLICIT" = 1 ]; then STATUS=1; fi
    return 0
  fi
  if [ ! -f "$BUILD/libambient_cuda.so" ] || [ ! -f "$BUILD/libambient_cpu.so" ]; then
    note "train: not run (the native libraries were not built)"
    return 0
  fi
  local on_gpu=0
  case $TRAIN_DEVICE in cuda*) on_gpu=1 ;; esac
  if [ "$on_gpu" = 1 ] && { [ ! -f "$OUT/parity.txt" ] || grep -q '^test_parity: no CUDA device' "$OUT/parity.txt"; }; then
    note "train: not run (no GPU answered; AMBIENT_TRAIN_DEVICE=cpu tries this stage on the CPU)"
    return 0
  fi
  local python=${AMBIENT_PYTHON:-$(command -v python3 || true)} vs_torch=() probe
  if [ "$on_gpu" = 0 ]; then probe='import torch'; else probe='import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)'; fi
  if [ -n "$python" ] && timeout 120 "$python" -c "$probe" > "$OUT/torch-probe.log" 2>&1; then
    vs_torch=(--vs-torch)
    export AMBIENT_PYTHON=$python
    note "train: PyTorch $("$python" -c 'import torch; print(torch.__version__)' 2>/dev/null) ($python) runs alongside"
  else
    note "train: no PyTorch$([ "$on_gpu" = 1 ] && echo ' with CUDA') in ${python:-no python3 on PATH} (see torch-probe.log): Ambient's side only"
  fi
  local workload args limit left lower
  for workload in W3 W2; do
    lower=$(echo "$workload" | tr 'A-Z' 'a-z')
    if [ "$workload" = W2 ]; then args=$TRAIN_W2_ARGS; limit=120; else args=$TRAIN_W3_ARGS; limit=200; fi
    left=$(( TIME_BUDGET - $(elapsed) - 10 ))
    if [ "$left" -lt 45 ]; then
      note "train-$lower: not run, $left s left of the $TIME_BUDGET s budget"
      STATUS=1
      continue
    fi
    [ "$left" -lt "$limit" ] && limit=$left
    # shellcheck disable=SC2086 # the ARGS are lists of options
    stage "train-$lower" "$limit" "$JAVA_BIN" --enable-native-access=ALL-UNNAMED -Dambient.native.dir="$BUILD" \
      -jar "$JAR_DIR/ambient-benchmarks.jar" train --workload "$workload" --device "$TRAIN_DEVICE" $args \
      "${vs_torch[@]}" --json "$OUT/train-$lower.json" || true
    # the result line: images/s, the card, PyTorch's and the speedup
    grep -E "^$workload on " "$OUT/train-$lower.log" | tee -a "$OUT/train.txt" | while read -r line; do note "  $line"; done || true
  done
}
: > "$OUT/train.txt"
run_java

note "done in $(elapsed) s, status $STATUS; card: $CARD"
exit "$STATUS"
