"""quint: an exact runtime for quantized ONNX models, from Python.

    import numpy as np, quint
    s = quint.Session("model.onnx", threads=2)
    x = quint.load_image("cat.jpg")                    # float32 [1, 3, 224, 224]
    out = s.run({s.inputs[0].name: x})                 # {output name: ndarray}
    out, tensors = s.run({s.inputs[0].name: x}, dump=True)   # + every layer's output
    print(quint.compare(tensors, "dump-pytorch"))      # layer-by-layer metrics, as `quint compare`

Everything that fails raises quint.Error (a RuntimeError) with the CLI's message, except wrong
argument types and values (TypeError, ValueError).
"""
import json as _json
import unicodedata

from ._quint import Error, Session, TensorInfo, __version__, load_dump, load_image
from ._quint import _compare

__all__ = ["Error", "Session", "TensorInfo", "CompareReport", "compare", "format_explanation",
           "load_dump", "load_image", "__version__"]


class CompareReport(dict):
    """The result of compare(): the same fields as `quint compare --json` (pass, first_divergent,
    tensors: [{name, reference_name, op, shape, dtype, integer, count, exact, exact_pct,
    diff_lsb_histogram, max_diff_lsb, saturated, max_abs_error, mean_abs_error, cosine, sqnr_db,
    worst_channels, worst_elements, pass}], only_in_a, only_in_b, a, b, mode). str() gives the CLI's text table."""

    def __init__(self, data, text):
        super().__init__(data)
        self.text = text

    @property
    def passed(self):
        """True when every compared tensor is within tolerance."""
        return bool(self["pass"])

    def tensor(self, name):
        """The statistics of one tensor, by A's or B's name (KeyError when not compared)."""
        for t in self["tensors"]:
            if name in (t["name"], t["reference_name"]):
                return t
        raise KeyError(name)

    def __str__(self):
        return self.text

    def _repr_pretty_(self, p, cycle):  # IPython / Jupyter display
        p.text(self.text)


def compare(a, b, *, names=None, tensors=None, tolerance_lsb=0, atol=1e-5):
    """Compares two dumps layer by layer with the metrics of `quint compare` (B is the reference).

    a, b: each a dump folder's path (quint's or models/dump_pytorch.py's), the tensor list of
          Session.run(..., dump=True) / load_dump(), or a dict {name: array} (not quantized).
          A tensor dict is dict(name, array[, op, node, scale, zero_point, axis]).
    names: {A name: B name} for tensors named differently in the two dumps.
    tensors: compare only these tensors (named as in either dump); default: every common one.
    tolerance_lsb: largest |difference| in quantization steps that still passes (same 8-bit type,
          scale and zero point on both sides: compared as integers).
    atol: float tensors pass when max|a - b| <= atol + 1e-5 * max|b|.
    Returns a CompareReport (a dict; print it for the table).
    """
    data, text = _compare(a, b, dict(names or {}), None if tensors is None else list(tensors),
                          int(tolerance_lsb), float(atol))
    return CompareReport(_json.loads(data), text)


def _width(text):
    """Terminal columns of `text`, as the CLI's display_width() (tools/text.cc) counts them: none
    for combining marks and zero-width characters, two for East Asian wide ones, else one."""
    w = 0
    for c in text:
        if unicodedata.category(c) in ("Mn", "Me", "Cf"):
            continue
        w += 2 if unicodedata.east_asian_width(c) in ("W", "F") else 1
    return w


def _pad(text, width):
    """Left-justified to `width` display columns, as the CLI pads ('·', '→', '×' take one)."""
    return text + " " * max(0, width - _width(text))


def format_explanation(e):
    """Session.explain()'s dict as the text `quint explain` prints."""
    lines = [f"{e['op_type']} '{e['node']}' -> {e['tensor']}[{', '.join(map(str, e['index']))}]", ""]
    lines += e["details"] + [""]
    for s in e["schemes"]:
        mark = "   (this run's arithmetic)" if s["arith"] == e["session_arith"] else ""
        lines.append(f"arithmetic {_pad(s['arith'], 8)} -> {s['result']}{mark}")
        for st in s["steps"]:
            lines.append(f"    {_pad(st['label'], 22)} {_pad(st['formula'], 58)} {st['value']}")
        if s["note"]:
            lines.append(f"    note: {s['note']}")
    lines.append(f"\nquint computed {e['actual']} (arithmetic {e['session_arith']})")
    if e["pitfalls"]:
        lines.append("\nwhat common mistakes give instead (ONNX Runtime's arithmetic otherwise):")
        for p in e["pitfalls"]:
            lines.append(f"    {_pad(p['label'], 48)} {_pad(p['formula'], 60)} -> {p['value']}")
    return "\n".join(lines)
