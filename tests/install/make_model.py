#!/usr/bin/python3
"""Writes a small quantized model for the install test: QuantizeLinear -> QLinearConv (int8
per-channel weights, int32 bias, pads) -> DequantizeLinear, input x float32 [N,2,6,6] (N symbolic),
outputs y (float32) and conv (uint8).   make_model.py OUT.onnx"""
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

rng = np.random.default_rng(0)
inits = {
    "xs": np.float32(0.02), "xz": np.uint8(120),
    "w": rng.integers(-127, 128, size=(3, 2, 3, 3)).astype(np.int8),
    "ws": np.array([0.01, 0.02, 0.015], np.float32), "wz": np.zeros(3, np.int8),
    "ys": np.float32(0.05), "yz": np.uint8(100),
    "bias": rng.integers(-500, 500, size=3).astype(np.int32),
}
g = helper.make_graph(
    [helper.make_node("QuantizeLinear", ["x", "xs", "xz"], ["xq"], name="quant"),
     helper.make_node("QLinearConv", ["xq", "xs", "xz", "w", "ws", "wz", "ys", "yz", "bias"], ["conv"],
                      name="conv", pads=[1, 1, 1, 1]),
     helper.make_node("DequantizeLinear", ["conv", "ys", "yz"], ["y"], name="dequant")],
    "qconv", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 2, 6, 6])],
    [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 3, 6, 6]),
     helper.make_tensor_value_info("conv", TensorProto.UINT8, ["N", 3, 6, 6])],
    [numpy_helper.from_array(np.asarray(v), k) for k, v in inits.items()])
model = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)])
onnx.checker.check_model(model)
onnx.save(model, sys.argv[1])
