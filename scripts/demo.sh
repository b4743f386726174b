#!/usr/bin/env bash
# The main job, from a fresh machine: set up, export a quantized ResNet50 from PyTorch (QOperator
# and QDQ ONNX files), run it on a bundled photo and print the top classes, dump every layer,
# dump PyTorch's layers for the same input, and compare them layer by layer.
#   scripts/demo.sh [IMAGE]        (default: skimage's chelsea.png, a cat)
# Everything lands in out/.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh

IMAGE="${1:-/usr/lib/python3/dist-packages/skimage/data/chelsea.png}"
OUT=out
MODEL_DIR="$OUT/resnet50"
mkdir -p "$OUT"

if [ ! -f "$MODEL_DIR/resnet50_qop.onnx" ]; then
  echo "== exporting the quantized ResNet50 (random weights, seed 0; ~30 s)"
  /usr/bin/python3 models/export_resnet50.py --out-dir "$MODEL_DIR"
fi
QOP="$MODEL_DIR/resnet50_qop.onnx"
LABELS=()
[ -f ../shared/testdata/labels/imagenet_classes.txt ] && LABELS=(--labels ../shared/testdata/labels/imagenet_classes.txt)

echo "== quint run ($IMAGE)"
build/quint run "$QOP" "$IMAGE" --top 5 "${LABELS[@]}"

echo "== quint dump: every layer's output"
build/quint dump "$QOP" "$IMAGE" --out "$OUT/dump-quint"

echo "== PyTorch (oneDNN) dump of the same model and image"
/usr/bin/python3 models/dump_pytorch.py --model-dir "$MODEL_DIR" --image "$IMAGE" --out "$OUT/dump-pytorch-onednn"

echo "== the QDQ export, run on quint's fused integer kernels"
build/quint run "$MODEL_DIR/resnet50_qdq.onnx" "$IMAGE" --top 5 "${LABELS[@]}"
