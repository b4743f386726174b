#!/usr/bin/env bash
# CI job: AddressSanitizer + UndefinedBehaviorSanitizer.
#   1. configures build-sanitize/ with -DQUINT_SANITIZE=ON, builds everything, runs the ctest
#      suite (every unit, conformance, malformed-input, concurrency and fuzz-regression test);
#   2. when clang's libFuzzer is there, runs every fuzz target (tests/fuzz) for a bounded time
#      from a seed corpus generated into the build folder.
# With clang++ and libFuzzer available, one clang build (-DQUINT_SANITIZE=ON -DQUINT_FUZZ=ON)
# serves both steps; otherwise the suite is built with the default compiler and fuzzing is
# skipped (said so in the output, not an error).
#
# Skipped under sanitizers (ctest -E): the end-to-end tests against ONNX Runtime and PyTorch
# (OnnxRuntimeE2E.*, PytorchE2E.*: they export and run ResNet50 several times, minutes each even
# without sanitizers), python_tests (a plain python3 cannot load the sanitizer runtime) and
# install_consumer (a project outside this build links the installed libquint.a without the
# sanitizer and libFuzzer-coverage runtimes it was compiled with). The same code paths run
# there on real models in Concurrency.MobileNetV2 and OnnxNodeTest.*.
#
#   scripts/sanitize.sh                     # ~25 min on 2 cores, fuzzing 3 x 60 s included
#   QUINT_FUZZ_SECONDS=300 scripts/sanitize.sh
#   QUINT_FUZZ_SECONDS=0 scripts/sanitize.sh   # no fuzzing
set -euo pipefail
cd "$(dirname "$0")/.."

BUILD=${QUINT_SANITIZE_BUILD:-build-sanitize}
FUZZ_SECONDS=${QUINT_FUZZ_SECONDS:-60}
JOBS=$(nproc)
start=$(date +%s)
log() { echo "sanitize.sh [$(( $(date +%s) - start ))s]: $*"; }

scripts/setup.sh --no-build

# libFuzzer: clang++ and its runtime. Only this script needs them, so it installs them (when
# missing) rather than setup.sh: Debian's `clang` (clang-14) and `libclang-rt-dev` (the sanitizer
# and libFuzzer runtime, a mere Recommends of clang that --no-install-recommends would skip).
has_libfuzzer() {
  command -v clang++ >/dev/null &&
    echo 'extern "C" int LLVMFuzzerTestOneInput(const unsigned char*, unsigned long) { return 0; }' |
      clang++ -x c++ -fsanitize=fuzzer,address,undefined -o /dev/null - 2>/dev/null
}
fuzz=0
if [ "$FUZZ_SECONDS" -gt 0 ]; then
  if ! has_libfuzzer; then
    SUDO=""
    [ "$(id -u)" -eq 0 ] || SUDO="sudo"
    log "installing clang and libclang-rt-dev for libFuzzer"
    { $SUDO apt-get update -q && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q \
        --no-install-recommends clang libclang-rt-dev; } || log "could not install clang"
  fi
  if has_libfuzzer; then fuzz=1; fi
fi

config=(-DCMAKE_BUILD_TYPE=RelWithDebInfo -DQUINT_SANITIZE=ON -DQUINT_BUILD_BENCH=OFF)
if [ "$fuzz" = 1 ]; then
  # clang warns about things GCC (the project's -Werror compiler) does not; warnings stay visible.
  config+=(-DCMAKE_CXX_COMPILER=clang++ -DQUINT_FUZZ=ON -DQUINT_WERROR=OFF)
  log "clang with libFuzzer found: one ASan+UBSan build for the suite and the fuzz targets"
else
  log "no clang libFuzzer: ASan+UBSan build with $(c++ --version | head -1); fuzzing skipped"
fi
cmake -S . -B "$BUILD" "${config[@]}" >/dev/null
log "building"
cmake --build "$BUILD" -j"$JOBS"

# Every finding is fatal; LeakSanitizer stays on. Sanitized code is ~3x slower: ctest timeouts
# are the tests' own (600 s).
export ASAN_OPTIONS=${ASAN_OPTIONS:-abort_on_error=1:detect_leaks=1:strict_string_checks=1:detect_stack_use_after_return=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
log "running the test suite"
(cd "$BUILD" && ctest --output-on-failure -j"$JOBS" -E '^(OnnxRuntimeE2E|PytorchE2E)\.|^python_tests$|^install_consumer$')

if [ "$fuzz" = 1 ]; then
  corpus="$BUILD/fuzz-corpus"
  seeds="$BUILD/fuzz-seeds"
  testdata="${QUINT_TESTDATA:-../shared/testdata}"
  "$BUILD/tests/fuzz/fuzz_seeds" "$seeds" "$testdata"
  for t in load run npy; do
    mkdir -p "$corpus/$t" "$BUILD/fuzz-artifacts/$t"
    log "fuzzing $t for ${FUZZ_SECONDS}s"
    # Findings are written to fuzz-artifacts/TARGET/; libFuzzer exits non-zero on the first one.
    if ! "$BUILD/fuzz/fuzz_$t" -max_total_time="$FUZZ_SECONDS" -timeout=30 -rss_limit_mb=2048 \
        -max_len=65536 -print_final_stats=1 -artifact_prefix="$BUILD/fuzz-artifacts/$t/" \
        "$corpus/$t" "$seeds/$t" "tests/fuzz/regressions/$t" 2>"$BUILD/fuzz-$t.log"; then
      tail -n 60 "$BUILD/fuzz-$t.log"
      log "fuzz_$t found a problem: see $BUILD/fuzz-artifacts/$t/ (tests/fuzz/README.md says what to do)"
      exit 1
    fi
    grep -E '^(stat::number_of_executed_units|stat::peak_rss_mb)|^Done' "$BUILD/fuzz-$t.log" || true
  done
fi
log "all clean"
