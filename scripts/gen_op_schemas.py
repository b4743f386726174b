#!/usr/bin/python3
"""Writes runtime/src/op_schemas.inc: the ONNX operator schemas (attribute names and kinds, input
and output counts, input element types) of every operator quint runs, for the loader's schema
check (runtime/src/op_schema.cc).

Source: the operator schemas of ONNX 1.12 (Debian 12's python3-onnx, opsets 1-17) for ai.onnx;
opset 18 (ONNX 1.13, not in Debian 12) and the com.microsoft operators of ONNX Runtime are
written out below from their published definitions. Run with /usr/bin/python3 from the project
root and commit the result; tests/op_schema_test.cc checks that every registered operator has
a schema here.
"""
import sys

import onnx
import onnx.defs

# ai.onnx operators quint registers (ops/*.cc), plus Constant (folded by the loader).
AI_ONNX_OPS = """
Abs Add And AveragePool BatchNormalization Cast CastLike Ceil Clip Concat Constant ConstantOfShape
Conv ConvInteger DequantizeLinear Div DynamicQuantizeLinear Equal Erf Exp Expand Flatten Floor Gather
Gemm GlobalAveragePool GlobalMaxPool Greater GreaterOrEqual HardSigmoid HardSwish Identity LayerNormalization LeakyRelu Less LessOrEqual Log
LogSoftmax MatMul MatMulInteger Max MaxPool Mean Min Mul Neg Not Or Pad Pow QLinearConv
QLinearMatMul QuantizeLinear Reciprocal ReduceL1 ReduceL2 ReduceLogSum ReduceLogSumExp ReduceMax ReduceMean ReduceMin
ReduceProd ReduceSum ReduceSumSquare Relu Reshape Round Shape Sigmoid Size Slice Softmax Split Sqrt
Squeeze Sub Sum Tanh Tile Transpose Unsqueeze Where Xor Dropout LRN ArgMax ArgMin
""".split()

ELEM = {"float": 1, "uint8": 2, "int8": 3, "uint16": 4, "int16": 5, "int32": 6, "int64": 7,
        "string": 8, "bool": 9, "float16": 10, "double": 11, "uint32": 12, "uint64": 13,
        "complex64": 14, "complex128": 15, "bfloat16": 16}

KIND = {"FLOAT": "f", "INT": "i", "STRING": "s", "TENSOR": "t", "GRAPH": "g", "FLOATS": "F",
        "INTS": "I", "STRINGS": "S", "TENSORS": "T", "GRAPHS": "G", "SPARSE_TENSOR": "p",
        "SPARSE_TENSORS": "P", "TYPE_PROTO": "y", "TYPE_PROTOS": "Y"}

OPTION = {"Single": "1", "Optional": "?", "Variadic": "*"}


def type_mask(type_strs):
    """Bit e set for tensor(e); sequences, maps and optionals are not tensors quint runs."""
    mask = 0
    for t in type_strs:
        if t.startswith("tensor(") and t.endswith(")"):
            mask |= 1 << ELEM[t[len("tensor("):-1]]
    return mask


class Schema:
    def __init__(self, domain, name, since):
        self.domain, self.name, self.since = domain, name, since
        self.attrs = []    # (name, kind, required)
        self.inputs = []   # (name, option, type_param, mask, homogeneous)
        self.outputs = 0, 0

    def copy(self, since):
        s = Schema(self.domain, self.name, since)
        s.attrs, s.inputs, s.outputs = list(self.attrs), list(self.inputs), self.outputs
        return s

    def counts(self):
        lo = sum(1 for p in self.inputs if p[1] == "1")
        if any(p[1] == "*" for p in self.inputs):
            # A variadic parameter needs at least one value (ONNX's default min arity).
            return lo + 1, 2147483647
        return lo, len(self.inputs)


def from_onnx(s):
    out = Schema("ai.onnx", s.name, s.since_version)
    out.attrs = [(n, KIND[a.type.name], bool(a.required)) for n, a in sorted(s.attributes.items())]
    constraints = {t.type_param_str: type_mask(t.allowed_type_strs) for t in s.type_constraints}
    for p in s.inputs:
        if p.typeStr in constraints:
            param, mask = p.typeStr, constraints[p.typeStr]
        else:
            param, mask = "", type_mask([p.typeStr])
        out.inputs.append((p.name, OPTION[p.option.name], param, mask, bool(p.isHomogeneous)))
    out.outputs = s.min_output, s.max_output
    lo, hi = out.counts()
    assert (lo, hi) == (s.min_input, s.max_input), (s.name, s.since_version, lo, hi, s.min_input, s.max_input)
    return out


def onnx_schemas():
    wanted = set(AI_ONNX_OPS)
    found = [from_onnx(s) for s in onnx.defs.get_all_schemas_with_history()
             if s.domain in ("", "ai.onnx") and s.name in wanted]
    missing = wanted - {s.name for s in found}
    assert not missing, missing
    return found


def latest(schemas, name):
    return max((s for s in schemas if s.name == name), key=lambda s: s.since)


def opset18(schemas):
    """The ai.onnx changes of opset 18 (ONNX 1.13) among quint's operators."""
    out = []
    # Pad-18: an optional `axes` input (int32 or int64).
    pad = latest(schemas, "Pad").copy(18)
    pad.inputs.append(("axes", "?", "Tind", type_mask(["tensor(int32)", "tensor(int64)"]), True))
    out.append(pad)
    # Reduce*-18 (all but ReduceSum, changed in 13): `axes` moves from an attribute to an optional
    # int64 input, and noop_with_empty_axes appears.
    for name in ("ReduceL1", "ReduceL2", "ReduceLogSum", "ReduceLogSumExp", "ReduceMax", "ReduceMean", "ReduceMin",
                 "ReduceProd", "ReduceSumSquare"):
        r = latest(schemas, name).copy(18)
        r.attrs = sorted([a for a in r.attrs if a[0] != "axes"] + [("noop_with_empty_axes", "i", False)])
        r.inputs.append(("axes", "?", "", type_mask(["tensor(int64)"]), True))
        out.append(r)
    # Split-18: the num_outputs attribute.
    split = latest(schemas, "Split").copy(18)
    split.attrs = sorted(split.attrs + [("num_outputs", "i", False)])
    out.append(split)
    return out


def contrib():
    """com.microsoft operators (ONNX Runtime's contrib schemas, version 1)."""
    q8 = type_mask(["tensor(uint8)", "tensor(int8)"])
    f32 = type_mask(["tensor(float)"])
    out = []

    def make(name, attrs, inputs, outputs=(1, 1)):
        s = Schema("com.microsoft", name, 1)
        s.attrs, s.inputs, s.outputs = sorted(attrs), inputs, outputs
        out.append(s)

    binary = [("A", "1", "T", q8, True), ("A_scale", "1", "", f32, True),
              ("A_zero_point", "?", "T", q8, True), ("B", "1", "T", q8, True),
              ("B_scale", "1", "", f32, True), ("B_zero_point", "?", "T", q8, True),
              ("C_scale", "1", "", f32, True), ("C_zero_point", "?", "T", q8, True)]
    make("QLinearAdd", [], binary)
    make("QLinearMul", [], binary)
    make("QLinearGlobalAveragePool", [("channels_last", "i", False)],
         [("X", "1", "T", q8, True), ("x_scale", "1", "", f32, True), ("x_zero_point", "1", "T", q8, True),
          ("y_scale", "1", "", f32, True), ("y_zero_point", "1", "T", q8, True)])
    make("QLinearAveragePool",
         [("auto_pad", "s", False), ("ceil_mode", "i", False), ("channels_last", "i", False),
          ("count_include_pad", "i", False), ("kernel_shape", "I", True), ("pads", "I", False),
          ("strides", "I", False)],
         [("X", "1", "T", q8, True), ("x_scale", "1", "", f32, True), ("x_zero_point", "?", "T", q8, True),
          ("y_scale", "1", "", f32, True), ("y_zero_point", "?", "T", q8, True)])
    make("QLinearSoftmax", [("axis", "i", False), ("opset", "i", True)],
         [("X", "1", "T", q8, True), ("X_scale", "1", "", f32, True), ("x_zero_point", "?", "T", q8, True),
          ("y_scale", "1", "", f32, True), ("y_zero_point", "?", "T", q8, True)])
    lookup = [("X", "1", "T", q8, True), ("X_scale", "1", "", f32, True), ("X_zero_point", "?", "T", q8, True),
              ("Y_scale", "1", "", f32, True), ("Y_zero_point", "?", "T", q8, True)]
    make("QLinearLeakyRelu", [("alpha", "f", False)], lookup)
    make("QLinearSigmoid", [], lookup)
    make("QLinearConcat", [("axis", "i", True)],
         [("Y_scale", "1", "TF", f32, True), ("Y_zero_point", "1", "T8", q8, True),
          ("inputs", "*", "TV", q8 | f32, False)])
    make("QGemm", [("alpha", "f", False), ("transA", "i", False), ("transB", "i", False)],
         [("A", "1", "TA", q8, True), ("a_scale", "1", "T", f32, True), ("a_zero_point", "1", "TA", q8, True),
          ("B", "1", "TB", q8, True), ("b_scale", "1", "T", f32, True), ("b_zero_point", "1", "TB", q8, True),
          ("C", "?", "TC", type_mask(["tensor(int32)"]), True), ("y_scale", "?", "T", f32, True),
          ("y_zero_point", "?", "TYZ", q8, True)])
    return out


def emit(schemas, f):
    f.write("// Generated by scripts/gen_op_schemas.py from ONNX 1.12's operator schemas (ai.onnx opsets\n"
            "// 1-17), ONNX 1.13's opset-18 changes and ONNX Runtime's com.microsoft schemas. Do not edit.\n"
            "// {domain, op_type, since_version, min_outputs, max_outputs,\n"
            "//  {{attribute, kind, required}...}, {{input, option, type_param, allowed element types, homogeneous}...}}\n"
            "// kind: i int, f float, s string, t tensor, g graph, p sparse tensor, y type proto; capital = list.\n"
            "// option: 1 required, ? optional, * variadic. Types: bit e set for ONNX element type e.\n")
    for s in sorted(schemas, key=lambda s: (s.domain, s.name, s.since)):
        attrs = ", ".join('{"%s", \'%s\', %s}' % (n, k, "true" if r else "false") for n, k, r in s.attrs)
        ins = ", ".join('{"%s", \'%s\', "%s", 0x%xu, %s}' % (n, o, t, m, "true" if h else "false")
                        for n, o, t, m, h in s.inputs)
        f.write('{"%s", "%s", %d, %d, %d,\n {%s},\n {%s}},\n' %
                (s.domain, s.name, s.since, s.outputs[0], s.outputs[1], attrs, ins))


def main():
    if onnx.__version__ != "1.12.0":
        sys.exit("expected ONNX 1.12.0 (Debian 12), found " + onnx.__version__)
    base = onnx_schemas()
    schemas = base + opset18(base) + contrib()
    path = sys.argv[1] if len(sys.argv) > 1 else "runtime/src/op_schemas.inc"
    with open(path, "w") as f:
        emit(schemas, f)
    print(f"{path}: {len(schemas)} schemas")


if __name__ == "__main__":
    main()
