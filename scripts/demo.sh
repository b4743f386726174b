#!/usr/bin/env bash
# The main job, from a fresh machine: set up, export a quantized ResNet50 from PyTorch (QOperator
# and QDQ ONNX files), run it on a bundled photo and print the top classes, dump every layer,
# dump PyTorch's layers for the same input, compare them layer by layer (table, JSON and an HTML
# report), explain the first element that differs, and run the QDQ export.
#   scripts/demo.sh [IMAGE]        (default: skimage's chelsea.png, a cat)
# Everything lands in out/. BUILD_DIR=DIR builds and uses DIR/quint instead of build/quint.
set -euo pipefail
# An IMAGE given relative to the caller's folder, before moving to the repository's root.
IMAGE="${1:-/usr/lib/python3/dist-packages/skimage/data/chelsea.png}"
[ -f "$IMAGE" ] && IMAGE=$(realpath "$IMAGE")
cd "$(dirname "$0")/.."
BUILD_DIR="${BUILD_DIR:-build}"
export BUILD_DIR
scripts/setup.sh

QUINT="$BUILD_DIR/quint"
PY=/usr/bin/python3
[ -f "$IMAGE" ] || { echo "demo: no image at $IMAGE" >&2; exit 1; }
OUT=out
MODEL_DIR="$OUT/resnet50"
QOP="$MODEL_DIR/resnet50_qop.onnx"
QDQ="$MODEL_DIR/resnet50_qdq.onnx"
LABELS="$MODEL_DIR/imagenet_classes.txt"
REF="$OUT/dump-pytorch-onednn"
mkdir -p "$OUT"

if [ ! -f "$QOP" ] || [ ! -f "$QDQ" ]; then
  echo "== exporting the quantized ResNet50 (random weights, seed 0; about a minute)"
  $PY models/export_resnet50.py --out-dir "$MODEL_DIR"
fi
# Exports made before the labels were part of them lack the file: torchvision has the names offline.
[ -f "$LABELS" ] || $PY models/imagenet_classes.py "$LABELS"

echo
echo "== quint run ($IMAGE)"
echo "   note: the model has random weights (seed 0; nothing can be downloaded here), so its top"
echo "   classes are not meaningful — pass a local torchvision checkpoint to"
echo "   models/export_resnet50.py --weights for a real classifier. Exactness does not depend on it."
"$QUINT" run "$QOP" "$IMAGE" --top 5 --labels "$LABELS"

echo
echo "== quint dump: every layer's output"
"$QUINT" dump "$QOP" "$IMAGE" --out "$OUT/dump-quint"

echo
echo "== PyTorch (oneDNN) dump of the same model and image"
$PY models/dump_pytorch.py --model-dir "$MODEL_DIR" --image "$IMAGE" --out "$REF"

echo
echo "== quint compare: quint (ONNX Runtime's arithmetic) vs PyTorch (oneDNN), each layer fed PyTorch's inputs"
# Exit status 3 means "ran, and some tensors differ beyond the tolerance": expected here, since
# ONNX Runtime's and oneDNN's requantization differ by ±1 LSB on rare elements.
rc=0
"$QUINT" compare "$OUT/dump-quint" "$REF" --model "$QOP" --mode local \
    --json "$OUT/compare.json" --csv "$OUT/compare.csv" --html "$OUT/compare.html" >"$OUT/compare.txt" || rc=$?
[ "$rc" -eq 0 ] || [ "$rc" -eq 3 ] || { echo "demo: quint compare failed (exit status $rc)" >&2; exit "$rc"; }
# A summary on screen and the first differing element (execution order) for explain.
TARGET=$($PY - "$OUT/compare.json" <<'EOF'
import json, sys
r = json.load(open(sys.argv[1]))
ts = r["tensors"]
diff = [t for t in ts if t["exact"] < t["count"]]
n = sum(t["count"] for t in ts if t["integer"])
exact = sum(t["exact"] for t in ts if t["integer"])
print(f"{len(ts)} tensors compared, {len(ts) - len(diff)} identical, {len(diff)} differ; "
      f"integer elements exact: {exact} of {n} ({100.0 * exact / max(n, 1):.4f} %)", file=sys.stderr)
for t in diff[:8]:
    h = t["diff_lsb_histogram"]
    line = f"  {t['name']:<22} {t['op']:<12} exact {t['exact_pct']:8.4f} %  ±1 {h['1']:<4} ±2 {h['2']:<3} >2 {h['>2']:<3}"
    a = t.get("mismatch_analysis")
    if a:
        line += f" on a tie {a['on_rounding_tie']}/{a['analysed']}; PyTorch's value given by "
        line += ", ".join(f"{k} {v}" for k, v in sorted(a["reference_reproduced_by"].items(), key=lambda kv: -kv[1]))
    print(line, file=sys.stderr)
if len(diff) > 8:
    print(f"  … and {len(diff) - 8} more (see the table)", file=sys.stderr)
for side in ("only_in_a", "only_in_b"):
    if r[side]:
        print(f"{side.replace('_', ' ')}: {', '.join(r[side][:5])}{', …' if len(r[side]) > 5 else ''}", file=sys.stderr)
first = next((t for t in diff if t["integer"] and t["worst_elements"]), None)
if first:
    print(first["name"], ",".join(map(str, first["worst_elements"][0]["index"])))
EOF
)
echo "full table: $OUT/compare.txt; JSON: $OUT/compare.json; CSV: $OUT/compare.csv; HTML report: $OUT/compare.html"

echo
if [ -n "$TARGET" ]; then
  read -r TENSOR AT <<<"$TARGET"
  echo "== quint explain: the first differing element, $TENSOR[$AT]"
  "$QUINT" explain "$QOP" --ref "$REF" --tensor "$TENSOR" --at "$AT"
else
  echo "== quint explain: no element differs; explaining conv1[0,0,0,0] instead"
  "$QUINT" explain "$QOP" --ref "$REF" --tensor conv1 --at 0,0,0,0
fi

echo
echo "== the same comparison under PyTorch's oneDNN arithmetic (--arith onednn)"
rc=0
"$QUINT" compare "$OUT/dump-quint" "$REF" --model "$QOP" --mode local --arith onednn >"$OUT/compare-onednn.txt" || rc=$?
[ "$rc" -eq 0 ] || [ "$rc" -eq 3 ] || { echo "demo: quint compare failed (exit status $rc)" >&2; exit "$rc"; }
grep "integer elements exact" "$OUT/compare-onednn.txt" || true
[ "$rc" -eq 0 ] && echo "every layer equals PyTorch's bit for bit (table: $OUT/compare-onednn.txt)" \
                || echo "some layers differ: see $OUT/compare-onednn.txt"

echo
echo "== the QDQ export (torch.onnx.export), run on quint's fused integer kernels"
"$QUINT" run "$QDQ" "$IMAGE" --top 5 --labels "$LABELS"
