#!/usr/bin/env bash
# Runs every test: sets up (scripts/setup.sh), builds, and runs the GoogleTest suite through
# ctest (unit, ISA-differential, ONNX conformance, end to end against ONNX Runtime and
# PyTorch, malformed inputs).
#   scripts/test.sh [extra ctest arguments]      (BUILD_DIR=DIR: build and test in DIR instead of build/)
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
cd "${BUILD_DIR:-build}"
ctest --output-on-failure -j"$(nproc)" "$@"
