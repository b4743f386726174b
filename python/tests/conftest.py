"""Shared fixtures of the Python module's tests: paths, the CLI, and small ONNX models built at
test time with onnx.helper (so the tests need nothing but Debian's python3-onnx and numpy).

Environment (set by the ctest entries in python/CMakeLists.txt):
  PYTHONPATH        BUILD/python, where `import quint` finds the module
  QUINT_BUILD_DIR   the build tree (its `quint` CLI is the reference for several tests)
  QUINT_SOURCE_DIR  the checkout (defaults to this file's ../..)
  QUINT_TESTDATA    ../shared/testdata by default; tests using it are skipped when absent
"""
import os
import subprocess
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

SOURCE_DIR = Path(os.environ.get("QUINT_SOURCE_DIR", Path(__file__).resolve().parents[2]))
BUILD_DIR = Path(os.environ.get("QUINT_BUILD_DIR", SOURCE_DIR / "build"))
TESTDATA = Path(os.environ.get("QUINT_TESTDATA", SOURCE_DIR.parent / "shared" / "testdata"))
MOBILENET = TESTDATA / "models" / "mobilenetv2-12-int8.onnx"
CAT = TESTDATA / "images" / "cat.jpg"


def cli(*args, check=True):
    """Runs BUILD/quint with the arguments; returns the CompletedProcess (text mode)."""
    exe = BUILD_DIR / "quint"
    if not exe.exists():
        pytest.skip(f"no CLI at {exe}")
    p = subprocess.run([str(exe), *map(str, args)], capture_output=True, text=True)
    if check and p.returncode != 0:
        raise AssertionError(f"quint {' '.join(map(str, args))} exited {p.returncode}:\n{p.stderr}")
    return p


def save(model, path):
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return str(path)


def init(name, array):
    return numpy_helper.from_array(np.asarray(array), name)


@pytest.fixture(scope="session")
def models(tmp_path_factory):
    """Small models, by name -> path."""
    d = tmp_path_factory.mktemp("models")
    out = {}

    # y = DequantizeLinear(QuantizeLinear(x)) with uint8 scale 0.1, zero point 128; plus the
    # quantized tensor itself as a second output.
    g = helper.make_graph(
        [helper.make_node("QuantizeLinear", ["x", "s", "z"], ["q"], name="quant"),
         helper.make_node("DequantizeLinear", ["q", "s", "z"], ["y"], name="dequant")],
        "qdq", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 4]),
         helper.make_tensor_value_info("q", TensorProto.UINT8, ["N", 4])],
        [init("s", np.float32(0.1)), init("z", np.uint8(128))])
    out["qdq"] = save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)]), d / "qdq.onnx")

    # Three inputs of different dtypes: sum = a + b (float32), u8f = Cast(u, float), i64 = idx + 1.
    g = helper.make_graph(
        [helper.make_node("Add", ["a", "b"], ["sum"], name="add"),
         helper.make_node("Cast", ["u"], ["u8f"], name="cast", to=TensorProto.FLOAT),
         helper.make_node("Add", ["idx", "one"], ["i64"], name="inc")],
        "multi",
        [helper.make_tensor_value_info("a", TensorProto.FLOAT, [2, 3]),
         helper.make_tensor_value_info("b", TensorProto.FLOAT, [2, 3]),
         helper.make_tensor_value_info("u", TensorProto.UINT8, [5]),
         helper.make_tensor_value_info("idx", TensorProto.INT64, [3])],
        [helper.make_tensor_value_info("sum", TensorProto.FLOAT, [2, 3]),
         helper.make_tensor_value_info("u8f", TensorProto.FLOAT, [5]),
         helper.make_tensor_value_info("i64", TensorProto.INT64, [3])],
        [init("one", np.int64(1))])
    out["multi"] = save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)]), d / "multi.onnx")

    # A quantized conv: x -> QuantizeLinear -> QLinearConv (int8 per-channel weights, int32 bias)
    # -> DequantizeLinear, and a per-axis QuantizeLinear of the result (per-axis quant params).
    rng = np.random.default_rng(0)
    w = rng.integers(-127, 128, size=(3, 2, 3, 3)).astype(np.int8)
    bias = rng.integers(-500, 500, size=3).astype(np.int32)
    g = helper.make_graph(
        [helper.make_node("QuantizeLinear", ["x", "xs", "xz"], ["xq"], name="quant"),
         helper.make_node("QLinearConv", ["xq", "xs", "xz", "w", "ws", "wz", "ys", "yz", "bias"], ["conv"],
                          name="conv", pads=[1, 1, 1, 1]),
         helper.make_node("DequantizeLinear", ["conv", "ys", "yz"], ["y"], name="dequant"),
         helper.make_node("QuantizeLinear", ["y", "cs", "cz"], ["yc"], name="requant_per_channel", axis=1)],
        "qconv", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 2, 6, 6])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3, 6, 6]),
         helper.make_tensor_value_info("yc", TensorProto.UINT8, [1, 3, 6, 6])],
        [init("xs", np.float32(0.02)), init("xz", np.uint8(120)), init("w", w),
         init("ws", np.array([0.01, 0.02, 0.015], np.float32)), init("wz", np.zeros(3, np.int8)),
         init("ys", np.float32(0.05)), init("yz", np.uint8(100)), init("bias", bias),
         init("cs", np.array([0.05, 0.1, 0.2], np.float32)), init("cz", np.array([100, 50, 25], np.uint8))])
    out["qconv"] = save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)]), d / "qconv.onnx")

    # A tiny image classifier: [N,3,8,8] -> GlobalAveragePool -> Flatten -> MatMul -> [N, 4].
    wm = np.arange(12, dtype=np.float32).reshape(3, 4) / 10 - 0.5
    g = helper.make_graph(
        [helper.make_node("GlobalAveragePool", ["img"], ["gap"], name="gap"),
         helper.make_node("Flatten", ["gap"], ["flat"], name="flat"),
         helper.make_node("MatMul", ["flat", "wm"], ["scores"], name="fc")],
        "classifier", [helper.make_tensor_value_info("img", TensorProto.FLOAT, ["N", 3, 8, 8])],
        [helper.make_tensor_value_info("scores", TensorProto.FLOAT, ["N", 4])], [init("wm", wm)])
    out["classifier"] = save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)]), d / "classifier.onnx")
    return out


@pytest.fixture
def rng():
    return np.random.default_rng(1234)


def quantize_ref(x, scale, zp):
    """ONNX QuantizeLinear to uint8: saturate(round_half_even(x / scale) + zp), in float32."""
    q = np.rint(np.asarray(x, np.float32) / np.float32(scale)) + zp
    return np.clip(q, 0, 255).astype(np.uint8)
