#!/usr/bin/python3
"""Quantizes torchvision's ResNet50 with PyTorch and exports it to ONNX, twice.

  resnet50_qop.onnx        QOperator format written here with onnx.helper: one node per
                           PyTorch unit, node and tensor names = module names, plus the float
                           biases and engine PyTorch's arithmetic needs (see models/README.md).
  resnet50_qdq.onnx        what torch.onnx.export writes for the same quantized model (QDQ).
  resnet50_qdq_names.json  module name -> the QDQ tensor that holds that unit's quantized output.
  resnet50_quant_<engine>.pt + resnet50_quant.json
                           the quantized model and the recipe to rebuild it (dump_pytorch.py).
  imagenet_classes.txt     the 1000 ImageNet class names from torchvision, for `quint run --labels`.

Without --weights the float weights are random (fixed seed) and the BatchNorm statistics are
measured on the calibration images, so that activations keep a sane spread through all 50
layers and every quantized tensor uses a good part of the uint8 range.

Usage: export_resnet50.py --out-dir DIR [--weights LOCAL.pth] [--seed 0]
                          [--engine onednn|qnnpack] [--calib-images 16]
"""
import argparse
import hashlib
import io
import json
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import onnx
import torch
from onnx import TensorProto, helper, numpy_helper
from PIL import Image, ImageDraw
from torch import nn
from torch.nn.intrinsic.quantized import ConvReLU2d  # 1.13 has no torch.ao.nn.intrinsic yet

import imagenet_classes
import quantized_resnet as qr
from preprocess import load_rgb, preprocess

# Debian's python3-skimage ships these photos; a fixed list keeps calibration reproducible.
SKIMAGE_DATA = Path("/usr/lib/python3/dist-packages/skimage/data")
PHOTOS = (
    "astronaut.png", "chelsea.png", "coffee.png", "rocket.jpg",
    "motorcycle_left.png", "hubble_deep_field.jpg", "ihc.png", "retina.jpg",
)
QOP_NAME = "resnet50_qop.onnx"
QDQ_NAME = "resnet50_qdq.onnx"
QDQ_NAMES_NAME = "resnet50_qdq_names.json"
METADATA_KEY = "quint.pytorch"
OPSET = 13
MS_DOMAIN = "com.microsoft"
# Target spread of the random model's logits (trained ImageNet ResNets have a std of about 2).
LOGIT_STD = 2.0
# The central 99.8 % of each calibrated tensor's values must span at least this many of the
# 256 uint8 levels (see check_ranges).
MIN_LEVELS = 64


def log(msg):
    print(msg, flush=True)


# ---------------------------------------------------------------- calibration images

def synthetic_image(seed, index):
    """A seeded, photo-like RGB image: a smooth colour field, a few flat shapes, sensor noise.

    Sizes vary so that the resize/crop path of the preprocessing is exercised too.
    """
    rng = np.random.default_rng([seed, index])
    w, h = int(rng.integers(256, 481)), int(rng.integers(256, 401))
    grid = rng.integers(0, 256, size=(int(rng.integers(2, 9)), int(rng.integers(2, 9)), 3), dtype=np.uint8)
    img = Image.fromarray(grid).resize((w, h), Image.BICUBIC)
    draw = ImageDraw.Draw(img)
    for _ in range(int(rng.integers(3, 10))):
        x0, y0 = int(rng.integers(0, w)), int(rng.integers(0, h))
        box = [x0, y0, x0 + int(rng.integers(10, w // 2)), y0 + int(rng.integers(10, h // 2))]
        colour = tuple(int(c) for c in rng.integers(0, 256, 3))
        (draw.ellipse if rng.random() < 0.5 else draw.rectangle)(box, fill=colour)
    noisy = np.asarray(img, dtype=np.float32) + rng.normal(0.0, rng.uniform(2.0, 12.0), size=(h, w, 3))
    return Image.fromarray(np.clip(np.rint(noisy), 0, 255).astype(np.uint8))


def calibration_batch(count, seed):
    """The first `count` of: the skimage photos, then seeded synthetic images."""
    missing = [p for p in PHOTOS if not (SKIMAGE_DATA / p).is_file()]
    if missing:
        raise SystemExit(f"calibration photos missing from {SKIMAGE_DATA} (apt-get install python3-skimage): {missing}")
    names, arrays = [], []
    for photo in PHOTOS[:count]:
        names.append(photo)
        arrays.append(preprocess(load_rgb(SKIMAGE_DATA / photo)))
    for i in range(count - len(names)):
        names.append(f"synthetic(seed={seed},index={i})")
        arrays.append(preprocess(synthetic_image(seed, i)))
    return torch.from_numpy(np.stack(arrays)), names


# ---------------------------------------------------------------- the float model

def load_weights(model, path):
    """Loads a local float ResNet50 state_dict (e.g. torchvision's ImageNet checkpoint)."""
    try:
        state = torch.load(path, map_location="cpu")
    except Exception as e:  # torch.load raises pickle, zip and runtime errors alike
        raise SystemExit(f"{path}: not a PyTorch checkpoint ({type(e).__name__}: {e})")
    for wrapper in ("state_dict", "model"):
        if isinstance(state, dict) and isinstance(state.get(wrapper), dict):
            state = state[wrapper]
    if not isinstance(state, dict):
        raise SystemExit(f"{path}: expected a state_dict, found a {type(state).__name__}")
    expected = model.state_dict()
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    if missing or unexpected:
        raise SystemExit(
            f"{path} is not a float torchvision ResNet50 state_dict:\n"
            f"  missing keys ({len(missing)}): {missing[:10]}{' ...' if len(missing) > 10 else ''}\n"
            f"  unexpected keys ({len(unexpected)}): {unexpected[:10]}{' ...' if len(unexpected) > 10 else ''}")
    wrong = [f"{k} {getattr(v, 'dtype', type(v).__name__)} {list(getattr(v, 'shape', []))}"
             for k, v in state.items()
             if not (torch.is_tensor(v) and not v.is_quantized and v.shape == expected[k].shape)]
    if wrong:
        raise SystemExit(f"{path}: tensors that are not float tensors of the expected shape: {wrong[:10]}")
    model.load_state_dict(state)
    log(f"loaded {len(state)} tensors from {path}")


def calibrate_random_model(model, batch):
    """Gives a randomly initialised model sane BatchNorm statistics and a centred classifier.

    Mild random gammas/betas make channels differ as in a trained net. The residual branch's
    last BN (bn3) gets small gammas, as trained ResNets have: with bn3 gammas near 1 every
    block adds a full-size random branch and the net becomes chaotic -- quantization noise
    then grows from 37 dB SQNR at conv1 to 3 dB at layer4's output; with 0.05..0.25 that
    output keeps about 18 dB.

    One pass in train mode with momentum 1 then stores each BN's batch statistics as its
    running statistics; since train mode normalises with those same statistics, every layer
    downstream already saw normalised inputs, so the whole net is consistent after one
    pass. Finally the fc is rescaled and its bias set so the logits over the calibration
    images have zero mean per class and a std of LOGIT_STD -- otherwise the common positive
    mean of the pooled ReLU features makes one class win for every image.
    """
    for name, module in model.named_modules():
        if isinstance(module, nn.BatchNorm2d):
            low, high = (0.05, 0.25) if name.endswith("bn3") else (0.5, 1.5)
            module.weight.data.uniform_(low, high)
            module.bias.data.normal_(0.0, 0.1)
            module.momentum = 1.0
    features = []
    hook = model.avgpool.register_forward_hook(lambda m, i, o: features.append(o.flatten(1)))
    model.train()
    with torch.no_grad():
        model(batch)
    model.eval()
    hook.remove()
    for module in model.modules():
        if isinstance(module, nn.BatchNorm2d):
            module.momentum = 0.1  # torch's default; only matters if someone trains it later
    with torch.no_grad():
        centred = features[0] - features[0].mean(0)
        scale = LOGIT_STD / (centred @ model.fc.weight.t()).std()
        model.fc.weight.mul_(scale)
        model.fc.bias.copy_(-(model.fc.weight @ features[0].mean(0)))


def check_logits(logits, what, strict):
    """Refuses a degenerate classifier: NaNs, flat logits, or one class for every image.

    Strict for the random model, whose sanity is this script's job; with --weights the
    checkpoint is the user's, so flat logits or a single class are only reported.
    """
    if not torch.isfinite(logits).all():
        raise SystemExit(f"{what}: logits are not finite")
    spread = logits.std(dim=1)
    classes = len(set(logits.argmax(dim=1).tolist()))
    log(f"{what}: logit std per image {spread.min():.2f}..{spread.max():.2f}, "
        f"{classes} distinct top-1 classes over {len(logits)} images")
    problem = None
    if spread.min() < 0.1:
        problem = "logits are nearly constant"
    elif len(logits) >= 4 and classes == 1:
        problem = "every image gets the same class"
    if problem and strict:
        raise SystemExit(f"{what}: {problem}")
    if problem:
        log(f"warning: {what}: {problem}")


# ---------------------------------------------------------------- quantized-model checks

def run_units(quantized, batch):
    """Runs the quantized model, returning {tensor name: output} in execution order."""
    outputs = {}
    handles = qr.watch_units(quantized, lambda name, node, t: outputs.__setitem__(name, t))
    with torch.no_grad():
        quantized(batch)
    for h in handles:
        h.remove()
    return outputs


def check_ranges(outputs):
    """Every tensor whose qparams an observer chose must use a good part of the uint8 range.

    Judged on the central 99.8 % of the values (0.1 to 99.9 percentile), since a histogram
    observer clips: a few outliers at 0 and 255 would hide a tensor squeezed into 5 levels.
    maxpool, avgpool and flatten inherit their input's scale in PyTorch; an average of 49
    values is naturally narrower than its input, so those are reported, not judged.
    """
    spans = {}
    for name, t in outputs.items():
        if t.is_quantized:
            cdf = np.cumsum(np.bincount(t.int_repr().numpy().ravel(), minlength=256)) / t.numel()
            spans[name] = (int(np.searchsorted(cdf, 0.001)), int(np.searchsorted(cdf, 0.999)))
    inherited = ("maxpool", "avgpool", "flatten")
    judged = {n: s for n, s in spans.items() if n not in inherited}
    worst = sorted(judged.items(), key=lambda kv: kv[1][1] - kv[1][0])[:3]
    log("uint8 levels used by 99.8 % of calibration values: narrowest "
        + ", ".join(f"{n} {lo}..{hi}" for n, (lo, hi) in worst)
        + "; inherited " + ", ".join(f"{n} {spans[n][0]}..{spans[n][1]}" for n in inherited))
    narrow = {n: s for n, s in judged.items() if s[1] - s[0] + 1 < MIN_LEVELS}
    if narrow:
        raise SystemExit(f"quantized tensors using fewer than {MIN_LEVELS} levels: {narrow}")


def compare_logits(quantized_logits, float_logits):
    """Reports how much quantization changed the logits (a random net is more fragile)."""
    cos = torch.nn.functional.cosine_similarity(quantized_logits, float_logits, dim=1)
    agree = (quantized_logits.argmax(1) == float_logits.argmax(1)).sum()
    log(f"quantized vs float logits: cosine {cos.min():.3f}..{cos.max():.3f}, "
        f"top-1 agrees on {agree}/{len(cos)} images")


# ---------------------------------------------------------------- QOperator writer

def f32(value):
    """A quantization scale as float32, refusing any that float32 cannot hold exactly.

    Observers compute scales in float32; PyTorch then keeps them as Python floats or float64
    per-channel tensors. Exactness is checked so no rounding sneaks in between the two.
    """
    arr = np.asarray(value, dtype=np.float64)
    out = arr.astype(np.float32)
    if not np.array_equal(out.astype(np.float64), arr):
        raise AssertionError(f"scale {value} is not a float32 value")
    return out


def weight_qparams(w):
    """(int8 weights, float32 scale, int8 zero point) of a quantized weight; per-channel -> [M]."""
    if w.qscheme() in (torch.per_channel_symmetric, torch.per_channel_affine):
        assert w.q_per_channel_axis() == 0
        scale = f32(w.q_per_channel_scales().numpy())
        zero_point = w.q_per_channel_zero_points().numpy().astype(np.int8)
    else:
        scale = f32(w.q_scale())
        zero_point = np.array(w.q_zero_point(), dtype=np.int8)
    assert w.dtype == torch.qint8
    return w.int_repr().numpy(), scale, zero_point


def quantize_bias(bias, input_scale, weight_scale):
    """int32 bias = rne(b / (s_in * s_w[c])), from the real quotient (float64: the float32
    product s_in * s_w is exact there); np.rint rounds half to even."""
    q = np.rint(bias.astype(np.float64) / (np.float64(input_scale) * weight_scale.astype(np.float64)))
    assert np.all(np.abs(q) < 2**31), "int32 bias overflow"
    return q.astype(np.int32)


class QOperatorGraph:
    """Collects nodes and initializers. Every uint8 tensor T gets initializers `T.scale` and
    `T.zero_point`, so a consumer names its input's quantization by the input's name."""

    def __init__(self, shapes):
        self.shapes = shapes
        self.nodes, self.initializers, self.value_info = [], [], []
        self.qparams = {}
        self.bias_float = {}
        self.fused_relu = []

    def constant(self, name, array):
        self.initializers.append(numpy_helper.from_array(np.asarray(array), name))
        return name

    def activation(self, name, scale, zero_point):
        """Declares uint8 tensor `name` with its quantization parameters."""
        self.qparams[name] = (f32(scale), np.array(zero_point, dtype=np.uint8))
        self.constant(f"{name}.scale", self.qparams[name][0])
        self.constant(f"{name}.zero_point", self.qparams[name][1])
        self.value_info.append(helper.make_tensor_value_info(name, TensorProto.UINT8, self.shapes[name]))
        return name

    def q(self, name):
        return [name, f"{name}.scale", f"{name}.zero_point"]

    def node(self, op, name, inputs, output, domain="", **attrs):
        self.nodes.append(helper.make_node(op, inputs, [output], name=name, domain=domain, **attrs))
        return output

    def quantize_input(self, name, module):
        self.activation(name, float(module.scale), int(module.zero_point))
        return self.node("QuantizeLinear", name, ["input", f"{name}.scale", f"{name}.zero_point"], name)

    def weights(self, name, module, x):
        """Initializers of a conv's or linear's weights and biases; returns their names in
        the order QLinearConv and QGemm take them: w, w_scale, w_zero_point, bias."""
        weight, w_scale, w_zp = weight_qparams(module.weight())
        bias = module.bias().detach().numpy().astype(np.float32)
        # Unused by ONNX: PyTorch's engines requantize from the float bias (models/README.md).
        self.bias_float[name] = self.constant(f"{name}.bias_float", bias)
        return [self.constant(f"{name}.weight_quantized", weight),
                self.constant(f"{name}.weight_scale", w_scale),
                self.constant(f"{name}.weight_zero_point", w_zp),
                self.constant(f"{name}.bias_quantized", quantize_bias(bias, self.qparams[x][0], w_scale))]

    def conv(self, name, module, x):
        assert module.padding_mode == "zeros"
        if isinstance(module, ConvReLU2d):
            self.fused_relu_output(name, module)
        *w, bias = self.weights(name, module, x)
        self.activation(name, module.scale, module.zero_point)
        (kh, kw), (sh, sw), (ph, pw), (dh, dw) = module.kernel_size, module.stride, module.padding, module.dilation
        return self.node(
            "QLinearConv", name,
            self.q(x) + w + [f"{name}.scale", f"{name}.zero_point", bias],
            name, kernel_shape=[kh, kw], strides=[sh, sw], pads=[ph, pw, ph, pw],
            dilations=[dh, dw], group=module.groups)

    def fused_relu_output(self, name, module):
        """A fused ReLU needs no node: with output zero point 0, saturating at 0 is the ReLU."""
        assert module.zero_point == 0, f"{name}: fused ReLU with output zero point {module.zero_point}"
        self.fused_relu.append(name)

    def maxpool(self, name, module, x):
        # PyTorch's quantized max pool keeps its input's scale and zero point.
        assert module.dilation == 1 and not module.ceil_mode
        self.activation(name, *self.qparams[x])
        k, s, p = module.kernel_size, module.stride, module.padding
        return self.node("MaxPool", name, [x], name, kernel_shape=[k, k], strides=[s, s], pads=[p, p, p, p])

    def add_relu(self, name, module, a, b):
        self.fused_relu_output(name, module)
        self.activation(name, module.scale, module.zero_point)
        return self.node("QLinearAdd", name, self.q(a) + self.q(b) + [f"{name}.scale", f"{name}.zero_point"],
                         name, domain=MS_DOMAIN)

    def global_avgpool(self, name, x):
        # PyTorch's quantized adaptive average pool keeps its input's scale and zero point.
        self.activation(name, *self.qparams[x])
        return self.node("QLinearGlobalAveragePool", name, self.q(x) + [f"{name}.scale", f"{name}.zero_point"],
                         name, domain=MS_DOMAIN, channels_last=0)

    def flatten(self, name, x):
        # torch.flatten is a view: same integers, same scale and zero point.
        self.activation(name, *self.qparams[x])
        return self.node("Flatten", name, [x], name, axis=1)

    def gemm(self, name, module, x):
        inputs = self.q(x) + self.weights(name, module, x)
        self.activation(name, module.scale, module.zero_point)
        # nn.Linear computes x @ W^T, W being [out, in]: transB=1 keeps PyTorch's layout.
        return self.node("QGemm", name, inputs + [f"{name}.scale", f"{name}.zero_point"],
                         name, domain=MS_DOMAIN, transA=0, transB=1, alpha=1.0)

    def dequantize(self, name, x, output):
        return self.node("DequantizeLinear", name, self.q(x), output)


def qoperator_model(quantized, shapes, metadata):
    """Walks the quantized ResNet50 in execution order and writes one ONNX node per unit."""
    g = QOperatorGraph(shapes)
    x = g.quantize_input("quant", quantized.quant)
    x = g.conv("conv1", quantized.conv1, x)
    x = g.maxpool("maxpool", quantized.maxpool, x)
    for layer_name in ("layer1", "layer2", "layer3", "layer4"):
        for i, block in enumerate(getattr(quantized, layer_name)):
            p = f"{layer_name}.{i}"
            identity = x
            y = g.conv(f"{p}.conv1", block.conv1, x)
            y = g.conv(f"{p}.conv2", block.conv2, y)
            y = g.conv(f"{p}.conv3", block.conv3, y)
            if block.downsample is not None:
                identity = g.conv(f"{p}.downsample.0", block.downsample[0], x)
            # Operand order as in PyTorch's add_relu(out, identity); it matters at rare ties.
            x = g.add_relu(f"{p}.skip_add_relu", block.skip_add_relu, y, identity)
    x = g.global_avgpool("avgpool", x)
    x = g.flatten("flatten", x)
    x = g.gemm("fc", quantized.fc, x)
    g.dequantize("dequant", x, "output")

    metadata = dict(metadata, bias_float=g.bias_float, fused_relu=g.fused_relu)
    graph = helper.make_graph(
        g.nodes, "resnet50_quantized",
        inputs=[helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", 3, 224, 224])],
        outputs=[helper.make_tensor_value_info("output", TensorProto.FLOAT, ["N", 1000])],
        initializer=g.initializers, value_info=g.value_info)
    model = helper.make_model(
        graph, producer_name="quint models/export_resnet50.py", ir_version=8,
        opset_imports=[helper.make_opsetid("", OPSET), helper.make_opsetid(MS_DOMAIN, 1)])
    helper.set_model_props(model, {METADATA_KEY: json.dumps(metadata, sort_keys=True, separators=(",", ":"))})
    onnx.checker.check_model(model)
    return model


# ---------------------------------------------------------------- QDQ export and its names

def qdq_model(quantized, example):
    """What torch.onnx.export writes for the quantized model: QDQ, every constant a Constant
    node, int32 biases already folded from Cast(Div(b, s_in * s_w)) -- truncated, not rounded."""
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        # torch 1.13 warns that prim::TupleConstruct (the packed conv params) has no shape
        # inference; the exported graph's shapes are checked by running it instead.
        warnings.simplefilter("ignore", UserWarning)
        torch.onnx.export(quantized, example, buffer, opset_version=OPSET, input_names=["input"],
                          output_names=["output"], dynamic_axes={"input": {0: "N"}, "output": {0: "N"}})
    return onnx.load_from_string(buffer.getvalue())


# What each QOperator node became in torch's QDQ graph: the float op between the
# DequantizeLinear nodes and the QuantizeLinear that ends the unit (None: the graph input).
QDQ_OP_OF = {"QuantizeLinear": None, "QLinearConv": "Conv", "MaxPool": "MaxPool", "QLinearAdd": "Add",
             "QLinearGlobalAveragePool": "GlobalAveragePool", "Flatten": "Flatten", "QGemm": "Gemm"}


def qdq_units(model):
    """Every QuantizeLinear of a QDQ graph, in graph order, as a unit:
    (output tensor, float op type or None, activation input tensors, Q node, float node)."""
    producer = {out: node for node in model.graph.node for out in node.output}

    def quantized_source(tensor):
        # An activation enters a float op as DequantizeLinear(Cast(q)); weights come from Constants.
        node = producer.get(tensor)
        while node is not None and node.op_type in ("DequantizeLinear", "Cast"):
            tensor = node.input[0]
            node = producer.get(tensor)
        return tensor if node is not None and node.op_type == "QuantizeLinear" else None

    units = []
    for q in model.graph.node:
        if q.op_type != "QuantizeLinear":
            continue
        op = producer.get(q.input[0])
        if op is not None and op.op_type == "Relu":  # a fused ReLU sits between the op and Q
            op = producer[op.input[0]]
        inputs = [] if op is None else [t for t in map(quantized_source, op.input) if t is not None]
        units.append((q.output[0], None if op is None else op.op_type, inputs, q, op))
    return units


def qdq_tensor_names(qdq, qop):
    """Maps each QOperator tensor name (= module name) to the QDQ tensor holding the same output.

    Units are matched in graph order by op type, then every match is checked against the
    QOperator file: same scale and zero point, same int8 weights, and the same producers for
    every input -- so a reordering or a missed unit cannot go unnoticed.
    """
    constants = {n.output[0]: numpy_helper.to_array(n.attribute[0].t)
                 for n in qdq.graph.node if n.op_type == "Constant"}
    producer = {out: node for node in qdq.graph.node for out in node.output}
    initializers = {t.name: numpy_helper.to_array(t) for t in qop.graph.initializer}
    qop_units = [n for n in qop.graph.node if n.op_type != "DequantizeLinear"]
    units = qdq_units(qdq)
    if [QDQ_OP_OF[n.op_type] for n in qop_units] != [u[1] for u in units]:
        raise AssertionError("the QDQ graph's units do not follow the QOperator graph's")

    names = {}
    for node, (tensor, _, inputs, q, op) in zip(qop_units, units):
        name = node.output[0]
        names[name] = tensor
        _, scale, zero_point = q.input
        if not (np.array_equal(constants[scale], initializers[f"{name}.scale"])
                and np.array_equal(constants[zero_point], initializers[f"{name}.zero_point"])):
            raise AssertionError(f"{name}: QDQ {tensor} has other quantization parameters")
        if node.op_type in ("QLinearConv", "QGemm"):
            weight = producer[op.input[1]]  # DequantizeLinear(Constant int8 weights, ...)
            if not np.array_equal(constants[weight.input[0]], initializers[f"{name}.weight_quantized"]):
                raise AssertionError(f"{name}: QDQ {op.name} has other weights")
        qop_inputs = [t for t in node.input if t in names]
        if [names[t] for t in qop_inputs] != inputs:
            raise AssertionError(f"{name}: QDQ inputs {inputs} are not those of {qop_inputs}")
    return names


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out-dir", required=True, type=Path)
    parser.add_argument("--weights", type=Path, help="local float ResNet50 state_dict (default: random)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--engine", default="onednn", help="PyTorch quantized engine (onednn|qnnpack)")
    parser.add_argument("--calib-images", type=int, default=16,
                        help=f"calibration images: the {len(PHOTOS)} skimage photos first, then synthetic ones")
    args = parser.parse_args()
    if args.calib_images < 1:
        parser.error("--calib-images must be at least 1")
    qr.use_engine(args.engine)
    args.out_dir.mkdir(parents=True, exist_ok=True)
    start = time.time()
    imagenet_classes.write(args.out_dir / imagenet_classes.NAME)

    batch, image_names = calibration_batch(args.calib_images, args.seed)
    torch.manual_seed(args.seed)
    model = qr.float_model()
    if args.weights:
        load_weights(model, args.weights)
        weights = {"file": args.weights.name, "sha256": hashlib.sha256(args.weights.read_bytes()).hexdigest()}
    else:
        calibrate_random_model(model, batch)
        weights = {"random_seed": args.seed}
    log(f"float model ready ({time.time() - start:.0f} s)")

    prepared = qr.prepare_model(model, args.engine)
    with torch.no_grad():
        float_logits = prepared(batch)  # observers pass values through: these are float logits
    check_logits(float_logits, "float model", strict=not args.weights)
    quantized = qr.convert_model(prepared, args.engine)
    outputs = run_units(quantized, batch)
    check_ranges(outputs)
    check_logits(outputs["output"], "quantized model", strict=not args.weights)
    compare_logits(outputs["output"], float_logits)
    log(f"quantized under {args.engine} ({time.time() - start:.0f} s)")

    shapes = {name: ["N"] + list(t.shape[1:]) for name, t in outputs.items()}
    metadata = {"engine": args.engine, "qconfig": qr.describe_qconfig(args.engine), "weights": weights,
                **qr.versions()}
    qop = qoperator_model(quantized, shapes, metadata)
    (args.out_dir / QOP_NAME).write_bytes(qop.SerializeToString())
    log(f"wrote {QOP_NAME} ({time.time() - start:.0f} s)")

    qdq = qdq_model(quantized, batch[:1])
    (args.out_dir / QDQ_NAME).write_bytes(qdq.SerializeToString())
    names = qdq_tensor_names(qdq, qop)
    (args.out_dir / QDQ_NAMES_NAME).write_text(json.dumps(names, indent=1) + "\n")
    log(f"wrote {QDQ_NAME} and {QDQ_NAMES_NAME}: {len(names)} units matched ({time.time() - start:.0f} s)")

    qr.save(args.out_dir, quantized, {
        "engine": args.engine, "qconfig": qr.describe_qconfig(args.engine), "seed": args.seed,
        "weights": weights, "calibration_images": image_names, **qr.versions(),
        "files": {"qoperator": QOP_NAME, "qdq": QDQ_NAME, "qdq_names": QDQ_NAMES_NAME,
                  "state_dict": qr.state_dict_name(args.engine), "labels": imagenet_classes.NAME},
    })
    log(f"wrote {qr.state_dict_name(args.engine)} and {qr.CONFIG_NAME}; done in {time.time() - start:.0f} s")


if __name__ == "__main__":
    sys.exit(main())
