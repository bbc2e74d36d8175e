#!/usr/bin/env bash
# benchmarks/gpu/prepare-java.sh [OUTDIR]: run on a development machine (JDK 25, Maven) to give
# benchmarks/gpu/check.sh a Java for its train-step stage on a GPU machine that has no JDK.
# Writes into OUTDIR (default benchmarks/gpu/target/java, which git ignores):
#   runtime/                 a jlink'ed Java runtime with only the modules the benchmarks load
#   jars/ambient-benchmarks.jar   the benchmarks' runnable jar (everything Java of Ambient in one)
#   ambient-java.tar.gz      both, packed: the one file to take to the GPU machine (about 30 MB;
#                            check.sh unpacks it into a temporary folder)
# Then on the GPU machine: AMBIENT_JAVA_BUNDLE=OUTDIR/ambient-java.tar.gz bash benchmarks/gpu/check.sh OUT
# (check.sh finds the default OUTDIR's archive by itself). The device tool carries it as the
# ignored path benchmarks/gpu/target/java/ambient-java.tar.gz.
#
# The modules: `jdeps --print-module-deps` over the jar lists java.base, java.desktop,
# java.management, java.sql and jdk.unsupported. java.desktop (image files and plots: the
# examples' data, sample grids and evaluation) and java.sql (optional in Jackson; JFreeChart's
# JDBC data) are never loaded by `bench train` or `bench kernels`, so they are left out: they
# would double the runtime. java.management is JMH's (bench kernels), jdk.unsupported is
# sun.misc.Unsafe for the libraries that use it, java.logging prints Device's log lines as a
# JDK does. The script fails when jdeps names a module that is neither taken nor known unused.
# Options (environment): AMBIENT_SKIP_BUILD=1 uses benchmarks/target/ambient-benchmarks.jar as
# it is (else `./ambient build` runs first).
set -euo pipefail

if [ $# -gt 1 ]; then
  echo "usage: $0 [OUTDIR]" >&2
  exit 2
fi
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
OUTDIR=${1:-$ROOT/benchmarks/gpu/target/java}
MODULES=java.base,java.logging,java.management,jdk.unsupported
KNOWN_UNUSED=java.desktop,java.sql
LIMIT_MB=48   # the device tool carries 64 MiB in all, the working tree included

die() { echo "prepare-java: $*" >&2; exit 1; }

JDK=$("$ROOT/ambient" java) || die "no JDK 25 found (./ambient java says why)"
for tool in jlink jdeps; do
  [ -x "$JDK/bin/$tool" ] || die "$JDK/bin/$tool is missing: a JDK with jlink is needed, not a JRE"
done

JAR="$ROOT/benchmarks/target/ambient-benchmarks.jar"
if [ "${AMBIENT_SKIP_BUILD:-0}" != 1 ]; then
  echo "prepare-java: building the jars (./ambient build) ..."
  "$ROOT/ambient" build -q
fi
[ -f "$JAR" ] || die "$JAR is missing (run ./ambient build)"

# Every module the jar's classes refer to must be taken or known to be unused.
needed=$("$JDK/bin/jdeps" --multi-release 25 --ignore-missing-deps --print-module-deps "$JAR")
unknown=()
IFS=, read -ra needed_list <<< "$needed"
for m in "${needed_list[@]}"; do
  case ",$MODULES,$KNOWN_UNUSED," in *",$m,"*) ;; *) unknown+=("$m") ;; esac
done
[ ${#unknown[@]} -eq 0 ] || die "jdeps names modules this script does not know: ${unknown[*]} (add them to MODULES or KNOWN_UNUSED)"
echo "prepare-java: jdeps lists $needed; taking $MODULES"

mkdir -p "$OUTDIR"
OUTDIR=$(cd "$OUTDIR" && pwd)
rm -rf "$OUTDIR/runtime" "$OUTDIR/jars" "$OUTDIR/ambient-java.tar.gz"
# An uncompressed module image: gzip packs it smaller than jlink's own zip compression does.
"$JDK/bin/jlink" --add-modules "$MODULES" --strip-debug --no-man-pages --no-header-files \
  --compress zip-0 --output "$OUTDIR/runtime"
mkdir -p "$OUTDIR/jars"
cp "$JAR" "$OUTDIR/jars/"

# The runtime must start the benchmarks (class loading of the entry point and its options).
"$OUTDIR/runtime/bin/java" --enable-native-access=ALL-UNNAMED -jar "$OUTDIR/jars/ambient-benchmarks.jar" train --help > /dev/null \
  || die "the jlink'ed runtime cannot start the benchmarks jar"

tar -C "$OUTDIR" -czf "$OUTDIR/ambient-java.tar.gz" runtime jars
size_mb=$(( $(stat -c %s "$OUTDIR/ambient-java.tar.gz") / 1048576 ))
[ "$size_mb" -le "$LIMIT_MB" ] || die "ambient-java.tar.gz is $size_mb MiB, over the $LIMIT_MB MiB this script allows"
echo "prepare-java: $OUTDIR/ambient-java.tar.gz ($size_mb MiB: $("$OUTDIR/runtime/bin/java" -version 2>&1 | head -n 1), modules $MODULES)"
