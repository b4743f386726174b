#!/usr/bin/env bash
# Installs what quint needs on Debian 12 (idempotent: apt runs only when a package is missing),
# installs the ONNX Runtime test harness from npm, and builds quint into build/ (or $BUILD_DIR).
#   scripts/setup.sh [--no-build]
set -euo pipefail
cd "$(dirname "$0")/.."

PACKAGES=(
  build-essential cmake pkg-config
  libprotobuf-dev protobuf-compiler libonnx-dev libstb-dev libgtest-dev libbenchmark-dev
  python3-torch python3-torchvision python3-onnx python3-numpy python3-pil python3-skimage
  python3-pybind11 python3-pytest
  qemu-user
  chromium
)
# Node.js with npm runs the ONNX Runtime harness; machines of this kind ship it (nodesource
# build, which includes npm). Debian's own packages are the fallback.
command -v node >/dev/null && command -v npm >/dev/null || PACKAGES+=(nodejs npm)
missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -q
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

# ONNX Runtime (the reference for exactness and speed) from npm. Its postinstall would try to
# download GPU binaries; the CPU library ships inside the package, so skip that step.
if [ ! -d tests/ort/node_modules/onnxruntime-node ]; then
  echo "setup: installing onnxruntime-node into tests/ort"
  (cd tests/ort && ONNXRUNTIME_NODE_INSTALL=skip npm ci --onnxruntime-node-install=skip --no-audit --no-fund)
fi

if [ "${1:-}" != "--no-build" ]; then
  BUILD_DIR="${BUILD_DIR:-build}"
  cmake -S . -B "$BUILD_DIR" -DCMAKE_BUILD_TYPE=Release >/dev/null
  cmake --build "$BUILD_DIR" -j"$(nproc)"
fi
