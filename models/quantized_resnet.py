"""The eager-mode quantized ResNet50 recipe shared by export_resnet50.py and dump_pytorch.py.

Why a rebuild recipe instead of a pickled module: PyTorch packs a quantized conv's weights for
one engine when the module is built (`conv2d_prepack` under the engine active at that moment),
and `quantized::conv2d` then runs whatever the packed object was packed for -- switching
`torch.backends.quantized.engine` afterwards changes nothing. To run one quantized model under
another engine honestly, the weights must be re-packed under that engine. Loading a quantized
state_dict does exactly that (`set_weight_bias` -> `*_prepack`), so the model is stored as a
state_dict and rebuilt here under whichever engine is asked for.
"""
import json
import warnings
from pathlib import Path

import torch
import torch.ao.nn.quantized as nnq
import torchvision
from torch import nn
from torch.ao.quantization import convert, get_default_qconfig, prepare
from torchvision.models.quantization import resnet50

CONFIG_NAME = "resnet50_quant.json"


def state_dict_name(engine):
    return f"resnet50_quant_{engine}.pt"


def use_engine(engine):
    """Makes `engine` PyTorch's quantized engine, or exits naming the ones this torch has."""
    supported = [e for e in torch.backends.quantized.supported_engines if e != "none"]
    if engine not in supported:
        raise SystemExit(
            f"quantized engine '{engine}' is not available in this torch ({torch.__version__}); "
            f"supported: {', '.join(supported)}"
        )
    torch.backends.quantized.engine = engine


def float_model():
    """The quantizable torchvision ResNet50 (QuantStub/DeQuantStub, FloatFunctional adds), float."""
    return resnet50(weights=None, quantize=False).eval()


def prepare_model(model, qconfig_engine):
    """Fuses conv+bn(+relu) and inserts the engine's default observers, in place."""
    model.eval()
    model.fuse_model()
    model.qconfig = get_default_qconfig(qconfig_engine)
    prepare(model, inplace=True)
    return model


def convert_model(prepared, engine):
    """Converts a calibrated model with its weights packed for `engine`."""
    use_engine(engine)
    return convert(prepared, inplace=False)


def describe_qconfig(qconfig_engine):
    """A deterministic description of the default qconfig (a repr would carry addresses)."""
    qconfig = get_default_qconfig(qconfig_engine)

    def observer(factory):
        obs = factory()
        desc = {
            "observer": type(obs).__name__,
            "dtype": str(obs.dtype).replace("torch.", ""),
            "qscheme": str(obs.qscheme).replace("torch.", ""),
            "reduce_range": bool(obs.reduce_range),
            "quant_min": int(obs.quant_min),
            "quant_max": int(obs.quant_max),
        }
        if hasattr(obs, "ch_axis"):
            desc["ch_axis"] = int(obs.ch_axis)
        if hasattr(obs, "bins"):
            desc["bins"] = int(obs.bins)
        return desc

    return {
        "get_default_qconfig": qconfig_engine,
        "activation": observer(qconfig.activation),
        "weight": observer(qconfig.weight),
    }


def versions():
    return {"torch": torch.__version__, "torchvision": torchvision.__version__}


def save(model_dir, quantized, config):
    """Writes the converted model's state_dict and the recipe needed to rebuild it."""
    model_dir = Path(model_dir)
    torch.save(quantized.state_dict(), model_dir / state_dict_name(config["engine"]))
    (model_dir / CONFIG_NAME).write_text(json.dumps(config, indent=1, sort_keys=True) + "\n")


def load(model_dir, engine=None):
    """Rebuilds the saved quantized model with its weights packed for `engine`.

    `engine` defaults to the export engine. Returns (model, config). The skeleton is prepared
    with the *export* qconfig (per-channel or per-tensor weights must match the saved tensors)
    and converted with placeholder qparams, which load_state_dict then overwrites -- re-packing
    every conv and linear under `engine`.
    """
    model_dir = Path(model_dir)
    config = json.loads((model_dir / CONFIG_NAME).read_text())
    engine = engine or config["engine"]
    use_engine(engine)
    skeleton = prepare_model(float_model(), config["qconfig"]["get_default_qconfig"])
    with warnings.catch_warnings():
        # The skeleton's observers never saw data; their placeholder qparams are overwritten.
        warnings.simplefilter("ignore")
        model = convert_model(skeleton, engine)
    state = torch.load(model_dir / state_dict_name(config["engine"]))
    model.load_state_dict(state, strict=True)
    return model.eval(), config


def watch_units(model, record):
    """Calls record(tensor_name, node_name, tensor) for every unit's output, in execution order.

    A unit is what becomes one ONNX node: the input quantization, each (fused) conv, the max
    pool, each residual add, the average pool, the flatten, the fc and the final dequantize.
    Tensor and node names are the ONNX ones, i.e. the PyTorch module names, except the
    dequantize node `dequant` whose output is the graph output `output`. Returns the hook
    handles.
    """
    handles = []

    def forward_hook(tensor_name, node_name):
        return lambda module, inputs, output: record(tensor_name, node_name, output)

    for name, module in model.named_modules():
        if isinstance(module, (nnq.Quantize, nnq.Conv2d, nn.MaxPool2d, nn.AdaptiveAvgPool2d, nnq.Linear)):
            handles.append(module.register_forward_hook(forward_hook(name, name)))
        elif isinstance(module, nnq.QFunctional):
            # add_relu() is a method, not forward(), so hooks on the QFunctional never fire; its
            # Identity activation_post_process is called with the result.
            handles.append(module.activation_post_process.register_forward_hook(forward_hook(name, name)))
        elif isinstance(module, nnq.DeQuantize):
            handles.append(module.register_forward_hook(forward_hook("output", name)))
    # torch.flatten between avgpool and fc is a function, not a module: fc's input is its output.
    handles.append(model.fc.register_forward_pre_hook(lambda module, inputs: record("flatten", "flatten", inputs[0])))
    return handles
