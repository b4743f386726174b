#!/usr/bin/python3
"""Runs the exported quantized ResNet50 in PyTorch and dumps every unit's output, quint-style.

For each ONNX tensor of resnet50_qop.onnx (= PyTorch module name) it writes `<name>.npy`: the
integers PyTorch computed (int_repr(), NCHW, uint8 or int8), or float32 for the logits
`output`; plus `manifest.json` (see DESIGN.md: name, file, op, node, shape, dtype, scale,
zero_point, in execution order), `input.npy` (the float input actually fed) and
`pytorch_run.json` (which engine ran, on what).

Usage: dump_pytorch.py --model-dir DIR (--image IMG | --input input.npy) --out OUTDIR
                       [--engine onednn|qnnpack|fbgemm]
--engine defaults to the export engine. Another engine gets the same quantized model with its
weights re-packed for that engine (see quantized_resnet.py), so its own arithmetic runs.
"""
import argparse
import json
import sys
from pathlib import Path

import numpy as np
import onnx
import torch

import quantized_resnet as qr
from preprocess import preprocess_file

QOP_NAME = "resnet50_qop.onnx"


def file_name(tensor_name):
    return "".join("_" if c in "/:\\" else c for c in tensor_name) + ".npy"


def float32_exact(value):
    """Scales are float32 values held in Python floats; refuse anything else."""
    if float(np.float32(value)) != value:
        raise AssertionError(f"scale {value} is not a float32 value")
    return float(value)


def load_input(args):
    if args.image:
        return preprocess_file(args.image)
    x = np.load(args.input)
    if x.dtype != np.float32 or x.ndim != 4 or x.shape[1:] != (3, 224, 224):
        raise SystemExit(f"{args.input}: expected float32 [N,3,224,224], got {x.dtype} {list(x.shape)}")
    return x


def onnx_nodes(model_dir):
    """tensor name -> (op type, node name) for every node output of the QOperator model."""
    model = onnx.load(str(Path(model_dir) / QOP_NAME), load_external_data=False)
    return {out: (node.op_type, node.name) for node in model.graph.node for out in node.output}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model-dir", required=True, type=Path)
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--image", type=Path, help="image file, preprocessed as in preprocess.py")
    source.add_argument("--input", type=Path, help="float32 .npy [N,3,224,224], fed as is")
    parser.add_argument("--out", required=True, type=Path)
    parser.add_argument("--engine", help="PyTorch quantized engine (default: the export engine)")
    args = parser.parse_args()

    # Two things decide PyTorch's arithmetic: convs and the fc run whatever their weights were
    # packed for (qr.load packs them under `engine`), while other ops -- the add, for one --
    # pick their kernel from torch.backends.quantized.engine at run time. Both must be `engine`.
    model, config = qr.load(args.model_dir, args.engine)
    engine = torch.backends.quantized.engine
    nodes = onnx_nodes(args.model_dir)
    x = load_input(args)
    args.out.mkdir(parents=True, exist_ok=True)
    np.save(args.out / "input.npy", x)

    outputs = []  # (tensor name, node name, tensor, engine active when it was computed)

    def record(name, node, tensor):
        outputs.append((name, node, tensor.detach(), torch.backends.quantized.engine))

    qr.watch_units(model, record)
    with torch.no_grad():
        model(torch.from_numpy(x))

    names = [name for name, *_ in outputs]
    if sorted(names) != sorted(nodes) or len(set(names)) != len(names):
        raise AssertionError("the PyTorch units do not match resnet50_qop.onnx's node outputs: "
                             f"{sorted(set(names) ^ set(nodes))}")
    engines_seen = {e for *_, e in outputs}
    if engines_seen != {engine}:
        raise AssertionError(f"weights packed for {engine} but the run-time engine was {engines_seen}")

    # The float input comes first, as in quint's own dumps: compare and explain feed it back.
    manifest = [{"name": "input", "file": "input.npy", "op": "Input", "node": "", "shape": list(x.shape),
                 "dtype": "float32", "scale": None, "zero_point": None, "axis": None}]
    for name, node, tensor, _ in outputs:
        entry = {"name": name, "file": file_name(name), "op": nodes[name][0], "node": node,
                 "shape": list(tensor.shape)}
        if tensor.is_quantized:
            array = tensor.int_repr().numpy()
            entry.update(dtype=str(array.dtype), scale=float32_exact(tensor.q_scale()),
                         zero_point=int(tensor.q_zero_point()), axis=None)
        else:
            array = tensor.numpy().astype(np.float32, copy=False)
            entry.update(dtype="float32", scale=None, zero_point=None, axis=None)
        np.save(args.out / entry["file"], array)
        manifest.append(entry)
    document = {"format": "quint-dump/1", "producer": f"pytorch {torch.__version__} ({engine})",
                "model": str(args.model_dir.resolve()), "arith": engine, "tensors": manifest}
    (args.out / "manifest.json").write_text(json.dumps(document, indent=1) + "\n")
    (args.out / "pytorch_run.json").write_text(json.dumps({
        "engine": engine,
        "export_engine": config["engine"],
        "weights_packed_for": engine,
        "qconfig": config["qconfig"],
        "model_dir": str(args.model_dir.resolve()),
        "input": str((args.image or args.input).resolve()),
        "batch": int(x.shape[0]),
        **qr.versions(),
    }, indent=1) + "\n")
    print(f"{len(manifest) - 1} tensors from PyTorch ({engine}) and the input written to {args.out}")


if __name__ == "__main__":
    sys.exit(main())
