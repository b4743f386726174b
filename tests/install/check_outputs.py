#!/usr/bin/python3
"""Checks example.cc's printout against the CLI: the same inputs (float32 inputs hold
(i % 23) / 11 - 1, others zeros; symbolic dims 1) run with `quint run --input ... --out DIR`, and
every printed value must equal the CLI's output exactly.
    check_outputs.py MODEL EXAMPLE_OUTPUT.txt QUINT_CLI WORK_DIR"""
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx

model, printed, cli, work = sys.argv[1], Path(sys.argv[2]), sys.argv[3], Path(sys.argv[4])
work.mkdir(parents=True, exist_ok=True)
g = onnx.load(model, load_external_data=False).graph
initializers = {i.name for i in g.initializer}
args = []
for inp in g.input:
    if inp.name in initializers:
        continue
    t = inp.type.tensor_type
    shape = [d.dim_value if d.HasField("dim_value") else 1 for d in t.shape.dim]
    dtype = onnx.mapping.TENSOR_TYPE_TO_NP_TYPE[t.elem_type]
    x = np.zeros(shape, dtype)
    if dtype == np.float32:
        i = np.arange(x.size)
        x = (np.float32(1) * (i % 23).astype(np.float32) / np.float32(11) - np.float32(1)).reshape(shape)
    np.save(work / f"{inp.name}.npy", x)
    args += ["--input", f"{inp.name}={work / (inp.name + '.npy')}"]
subprocess.run([cli, "run", model, *args, "--top", "0", "--out", str(work / "out")], check=True,
               stdout=subprocess.DEVNULL)

lines = printed.read_text().split("\n")
outputs, k = {}, 0
while k < len(lines) and lines[k]:
    name, desc = lines[k].rsplit(" ", 1)
    dims = [int(d) for d in desc[desc.index("[") + 1:-1].split(",") if d]
    n = int(np.prod(dims)) if dims else 1
    outputs[name] = np.array([float(v) for v in lines[k + 1:k + 1 + n]])
    k += 1 + n
expected = [o.name for o in g.output]
assert sorted(outputs) == sorted(expected), (sorted(outputs), expected)
for name in expected:
    ref = np.load(work / "out" / (name.replace("/", "_").replace(":", "_").replace("\\", "_") + ".npy"))
    got = outputs[name].astype(ref.dtype)
    if not np.array_equal(got.reshape(ref.shape), ref):
        raise SystemExit(f"{model}: output {name} differs from the CLI's ({np.sum(got.reshape(ref.shape) != ref)} values)")
print(f"install test: {Path(model).name}: {len(expected)} outputs equal the CLI's "
      f"({', '.join(f'{n} {outputs[n].size} values' for n in expected)})")
