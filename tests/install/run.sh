#!/usr/bin/env bash
# The installed-package test (ctest: install_consumer). Installs a quint build into a scratch
# prefix, then, as a user would:
#   - checks what was installed (headers, libquint, CMake config + version, quint.pc, CLI, Python
#     module) and that the public headers include nothing but each other and the standard library;
#   - builds this folder's consumer project with find_package(quint) (example.cc + every header
#     compiled alone), and example.cc again with pkg-config;
#   - runs both on a small quantized model made here (and on ../shared/testdata's MobileNetV2 when
#     present) and checks every output value against the installed CLI's `quint run --out`;
#   - imports the installed Python module.
#   tests/install/run.sh BUILD_DIR WORK_DIR
set -euo pipefail
BUILD=$(cd "$1" && pwd)
WORK=$2
HERE=$(cd "$(dirname "$0")" && pwd)
PY=${QUINT_PYTHON:-/usr/bin/python3}
say() { echo "install test: $*"; }
die() { echo "install test: FAILED: $*" >&2; exit 1; }

rm -rf "$WORK"
mkdir -p "$WORK"
PREFIX=$WORK/prefix
cmake --install "$BUILD" --prefix "$PREFIX" >"$WORK/install.log"
say "installed into $PREFIX ($(wc -l <"$WORK/install.log") files)"

# What was installed.
LIB=$(find "$PREFIX" -name 'libquint.a' -o -name 'libquint.so' | head -1)
[ -n "$LIB" ] || die "no libquint"
CONFIG=$(find "$PREFIX" -name quintConfig.cmake | head -1)
PC=$(find "$PREFIX" -name quint.pc | head -1)
[ -n "$CONFIG" ] && [ -f "$(dirname "$CONFIG")/quintConfigVersion.cmake" ] || die "no quintConfig.cmake + version file"
[ -n "$PC" ] || die "no quint.pc"
[ -x "$PREFIX/bin/quint" ] || die "no bin/quint"
for h in "$HERE"/../../runtime/include/quint/*.h; do
  [ -f "$PREFIX/include/quint/$(basename "$h")" ] || die "header $(basename "$h") not installed"
done

# Public headers include only <standard> headers and "quint/..." headers that are installed.
while read -r inc; do
  case "$inc" in
    \"quint/*\") f=${inc//\"/}; [ -f "$PREFIX/include/$f" ] || die "a public header includes $inc, which is not installed" ;;
    \<*\>) case "$inc" in *google*|*onnx*|*protobuf*|*ops/*) die "a public header includes $inc" ;; esac ;;
    *) die "a public header includes $inc (neither <standard> nor \"quint/...\")" ;;
  esac
done < <(sed -n 's/^[[:space:]]*#[[:space:]]*include[[:space:]]*\([<"][^>"]*[>"]\).*/\1/p' "$PREFIX"/include/quint/*.h | sort -u)
say "public headers include only the standard library and each other"

VERSION=$(sed -n 's/^Version: //p' "$PC")
[ "$("$PREFIX/bin/quint" --version)" = "quint $VERSION" ] || die "quint --version says '$("$PREFIX/bin/quint" --version)', quint.pc says $VERSION"
say "quint --version: $("$PREFIX/bin/quint" --version)"

# Models.
"$PY" "$HERE/make_model.py" "$WORK/qconv.onnx"
MODELS=("$WORK/qconv.onnx")
TESTDATA=${QUINT_TESTDATA:-$HERE/../../../shared/testdata}
[ -f "$TESTDATA/models/mobilenetv2-12-int8.onnx" ] && MODELS+=("$TESTDATA/models/mobilenetv2-12-int8.onnx")

# Consumer 1: CMake's find_package.
cmake -S "$HERE" -B "$WORK/consumer" -DCMAKE_PREFIX_PATH="$PREFIX" -DCMAKE_BUILD_TYPE=Release >"$WORK/consumer-configure.log" \
  || { cat "$WORK/consumer-configure.log"; die "configuring the find_package consumer"; }
cmake --build "$WORK/consumer" -j2 >"$WORK/consumer-build.log" 2>&1 \
  || { cat "$WORK/consumer-build.log"; die "building the find_package consumer"; }
grep -q "quint $VERSION from $PREFIX" "$WORK/consumer-configure.log" || die "find_package did not find the scratch prefix"
say "find_package(quint) consumer built (example + every public header alone)"

# Consumer 2: pkg-config.
export PKG_CONFIG_PATH=$(dirname "$PC")
[ "$(pkg-config --modversion quint)" = "$VERSION" ] || die "pkg-config --modversion quint"
# shellcheck disable=SC2046
c++ -std=c++20 -O2 -Wall -Wextra -Werror "$HERE/example.cc" -o "$WORK/example_pc" $(pkg-config --cflags --libs quint) \
  || die "building example.cc with pkg-config"
say "pkg-config consumer built: c++ -std=c++20 example.cc \$(pkg-config --cflags --libs quint)"

for m in "${MODELS[@]}"; do
  "$WORK/consumer/example" "$m" >"$WORK/out-cmake.txt" || die "example (find_package) on $m"
  "$WORK/example_pc" "$m" >"$WORK/out-pc.txt" || die "example (pkg-config) on $m"
  cmp -s "$WORK/out-cmake.txt" "$WORK/out-pc.txt" || die "the two consumers disagree on $m"
  "$PY" "$HERE/check_outputs.py" "$m" "$WORK/out-cmake.txt" "$PREFIX/bin/quint" "$WORK/cli-$(basename "$m" .onnx)" \
    || die "outputs on $m"
done

# The Python module, imported from the prefix.
PYDIR=$(find "$PREFIX" -path '*/quint/__init__.py' -printf '%h\n' | head -1)
if [ -n "$PYDIR" ]; then
  PYTHONPATH=$(dirname "$PYDIR") "$PY" -c "
import quint, sys
assert quint.__file__.startswith('$PREFIX'), quint.__file__
assert quint.__version__ == '$VERSION'
s = quint.Session('$WORK/qconv.onnx')
print('install test: python module', quint.__version__, 'from', quint.__file__, '->', s.outputs[0])
" || die "importing the installed Python module"
fi
say "passed"
