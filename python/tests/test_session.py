"""quint.Session: inputs/outputs, runs checked against numpy and the CLI, dtype handling, errors,
zero-copy outputs, dumps, replacement, threads."""
import gc
import json
import sys
import threading
import time

import numpy as np
import pytest

import quint
from conftest import cli, quantize_ref


def test_version_matches_cli():
    assert quint.__version__ == cli("--version").stdout.split()[1]


def test_io_info(models):
    s = quint.Session(models["multi"])
    assert [i.name for i in s.inputs] == ["a", "b", "u", "idx"]
    assert [i.dtype for i in s.inputs] == [np.float32, np.float32, np.uint8, np.int64]
    assert s.inputs[0].shape == (2, 3)
    assert [o.name for o in s.outputs] == ["sum", "u8f", "i64"]
    assert s.outputs[2].dtype == np.dtype("int64")
    q = quint.Session(models["qdq"])
    assert q.inputs[0].shape == ("N", 4)  # a symbolic dim shows its name
    assert "TensorInfo(name='x'" in repr(q.inputs[0])
    assert s.path == models["multi"] and s.threads == 1 and s.arith == "onnx"


def test_run_matches_numpy(models, rng):
    s = quint.Session(models["multi"])
    a = rng.standard_normal((2, 3)).astype(np.float32)
    b = rng.standard_normal((2, 3)).astype(np.float32)
    u = np.array([0, 1, 127, 128, 255], np.uint8)
    idx = np.array([-5, 0, 2**40], np.int64)
    out = s.run({"a": a, "b": b, "u": u, "idx": idx})
    assert set(out) == {"sum", "u8f", "i64"}
    np.testing.assert_array_equal(out["sum"], a + b)
    assert out["sum"].dtype == np.float32
    np.testing.assert_array_equal(out["u8f"], u.astype(np.float32))
    np.testing.assert_array_equal(out["i64"], idx + 1)
    assert out["i64"].dtype == np.int64


def test_quantize_matches_numpy_any_batch(models, rng):
    s = quint.Session(models["qdq"])
    for n in (1, 3, 7):
        x = (rng.standard_normal((n, 4)) * 10).astype(np.float32)
        x[0, :2] = [0.05, 0.15]  # ties: round half to even
        out = s.run({"x": x})
        q = quantize_ref(x, 0.1, 128)
        np.testing.assert_array_equal(out["q"], q)
        np.testing.assert_array_equal(out["y"], (q.astype(np.float32) - 128) * np.float32(0.1))


def test_outputs_are_not_copies_and_outlive_the_session(models):
    s = quint.Session(models["qdq"])
    out = s.run({"x": np.ones((2, 4), np.float32)})
    y = out["y"]
    assert not y.flags["OWNDATA"] and type(y.base).__name__ == "PyCapsule"
    assert y.flags["C_CONTIGUOUS"] and y.flags["WRITEABLE"]
    del s, out
    gc.collect()
    np.testing.assert_array_equal(y, np.full((2, 4), np.float32(1.0)))
    y[0, 0] = 5  # ours to keep
    assert y[0, 0] == 5


def test_dtype_handling(models):
    s = quint.Session(models["multi"])
    good = {"a": np.zeros((2, 3), np.float32), "b": np.zeros((2, 3), np.float32),
            "u": np.zeros(5, np.uint8), "idx": np.zeros(3, np.int64)}
    # An ndarray of another dtype is refused, with the fix in the message.
    with pytest.raises(TypeError, match=r"input 'a' must be float32, got a float64 array.*astype"):
        s.run({**good, "a": np.zeros((2, 3))})
    with pytest.raises(TypeError, match="input 'u' must be uint8"):
        s.run({**good, "u": np.zeros(5, np.int32)})
    # Lists and scalars are converted to the input's dtype.
    out = s.run({**good, "a": [[1, 2, 3], [4, 5, 6]], "u": [1, 2, 3, 4, 250], "idx": [1, 2, 3]})
    np.testing.assert_array_equal(out["sum"], [[1, 2, 3], [4, 5, 6]])
    np.testing.assert_array_equal(out["u8f"], [1, 2, 3, 4, 250])
    # Non-contiguous, Fortran-ordered, big-endian and read-only arrays are fine.
    base = np.arange(12, dtype=np.float32).reshape(2, 6)
    fortran = np.asfortranarray(np.arange(6, dtype=np.float32).reshape(2, 3))
    big = np.arange(3, dtype=">i8")
    ro = np.ones((2, 3), np.float32)
    ro.flags.writeable = False
    out = s.run({"a": base[:, ::2], "b": fortran, "u": good["u"], "idx": big})
    np.testing.assert_array_equal(out["sum"], base[:, ::2] + fortran)
    np.testing.assert_array_equal(out["i64"], [1, 2, 3])
    out = s.run({**good, "a": ro})
    np.testing.assert_array_equal(out["sum"], ro)
    with pytest.raises(TypeError, match="quint has no dtype"):
        s.run({**good, "zzz": np.zeros(2, np.complex64)})


def test_errors(models, tmp_path):
    s = quint.Session(models["multi"])
    good = {"a": np.zeros((2, 3), np.float32), "b": np.zeros((2, 3), np.float32),
            "u": np.zeros(5, np.uint8), "idx": np.zeros(3, np.int64)}
    with pytest.raises(quint.Error, match="missing input 'idx'"):
        s.run({k: v for k, v in good.items() if k != "idx"})
    with pytest.raises(quint.Error, match="the model has no input 'c'"):
        s.run({**good, "c": np.zeros(1, np.float32)})
    with pytest.raises(quint.Error, match=r"input 'a' must have shape \[2,3\]"):
        s.run({**good, "a": np.zeros((3, 2), np.float32)})
    assert issubclass(quint.Error, RuntimeError)
    missing = tmp_path / "missing.onnx"
    with pytest.raises(quint.Error, match="missing.onnx"):
        quint.Session(missing)
    junk = tmp_path / "junk.onnx"
    junk.write_bytes(b"\x08\x07garbage" * 10)
    with pytest.raises(quint.Error, match="junk.onnx"):
        quint.Session(str(junk))
    for kw, msg in [({"arith": "foo"}, "arith must be"), ({"isa": "sse"}, "isa must be"),
                    ({"qdq": "half"}, "qdq must be"), ({"threads": 0}, "threads must be")]:
        with pytest.raises(ValueError, match=msg):
            quint.Session(models["qdq"], **kw)


def test_run_matches_cli(models, tmp_path, rng):
    x = rng.standard_normal((1, 2, 6, 6)).astype(np.float32)
    np.save(tmp_path / "x.npy", x)
    for arith in ("onnx", "qnnpack"):
        cli("run", models["qconv"], "--input", tmp_path / "x.npy", "--out", tmp_path / arith, "--arith", arith)
        out = quint.Session(models["qconv"], arith=arith).run({"x": x})
        for name in ("y", "yc"):
            np.testing.assert_array_equal(out[name], np.load(tmp_path / arith / f"{name}.npy"))


def test_dump_matches_cli_dump(models, tmp_path, rng):
    x = rng.standard_normal((1, 2, 6, 6)).astype(np.float32)
    np.save(tmp_path / "x.npy", x)
    cli("dump", models["qconv"], "--input", tmp_path / "x.npy", "--out", tmp_path / "cli")
    s = quint.Session(models["qconv"])
    out, tensors = s.run({"x": x}, dump=True)
    manifest = json.loads((tmp_path / "cli" / "manifest.json").read_text())["tensors"]
    assert [t["name"] for t in tensors] == [m["name"] for m in manifest]
    assert tensors[0]["op"] == "Input" and tensors[0]["array"] is not None
    for t, m in zip(tensors, manifest):
        assert (t["op"], t["node"]) == (m["op"], m["node"])
        np.testing.assert_array_equal(t["array"], np.load(tmp_path / "cli" / m["file"]))
        assert str(t["array"].dtype) == m["dtype"]
        if m["scale"] is None:
            assert t["scale"] is None and t["zero_point"] is None and t["axis"] is None
        elif isinstance(m["scale"], list):
            np.testing.assert_array_equal(t["scale"], np.array(m["scale"], np.float32))
            np.testing.assert_array_equal(t["zero_point"], m["zero_point"])
            assert t["axis"] == m["axis"] == 1
        else:
            assert t["scale"] == np.float32(m["scale"]) and t["zero_point"] == m["zero_point"]
            assert t["axis"] is None
    conv = next(t for t in tensors if t["name"] == "conv")
    assert conv["op"] == "QLinearConv" and conv["array"].dtype == np.uint8
    assert conv["scale"] == np.float32(0.05) and conv["zero_point"] == 100
    np.testing.assert_array_equal(tensors[-1]["array"], out["yc"])
    # Session.dump writes the same folder as the CLI.
    assert s.dump({"x": x}, tmp_path / "py") == len(manifest)
    py_manifest = json.loads((tmp_path / "py" / "manifest.json").read_text())["tensors"]
    assert [m["name"] for m in py_manifest] == [m["name"] for m in manifest]
    loaded = quint.load_dump(tmp_path / "py")
    for a, b in zip(loaded, tensors):
        assert a["name"] == b["name"]
        np.testing.assert_array_equal(a["array"], b["array"])


def test_replace_feeds_later_nodes(models, rng):
    s = quint.Session(models["qconv"])
    x = rng.standard_normal((1, 2, 6, 6)).astype(np.float32)
    conv = np.full((1, 3, 6, 6), 110, np.uint8)
    out, tensors = s.run({"x": x}, dump=True, replace={"conv": conv})
    computed = next(t for t in tensors if t["name"] == "conv")["array"]
    assert not np.array_equal(computed, conv)  # the observer still sees what was computed
    np.testing.assert_array_equal(out["y"], np.full((1, 3, 6, 6), np.float32(10 * 0.05)))
    with pytest.raises(quint.Error, match="replacement for 'conv'"):
        s.run({"x": x}, replace={"conv": np.zeros((1, 3, 6, 6), np.int8)})


def test_threads_and_concurrent_runs(models, rng):
    s1 = quint.Session(models["qconv"])
    s2 = quint.Session(models["qconv"], threads=2)
    xs = [rng.standard_normal((1, 2, 6, 6)).astype(np.float32) for _ in range(8)]
    expected = [s1.run({"x": x})["yc"] for x in xs]
    results = [[None] * len(xs) for _ in range(4)]
    errors = []

    def work(t):
        try:
            for i, x in enumerate(xs):
                for _ in range(10):
                    results[t][i] = s2.run({"x": x})["yc"]
        except Exception as e:  # pragma: no cover - reported below
            errors.append(e)

    threads = [threading.Thread(target=work, args=(t,)) for t in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    for r in results:
        for got, want in zip(r, expected):
            np.testing.assert_array_equal(got, want)


def test_gil_is_released_during_runs(tmp_path):
    """While one thread is inside run(), another Python thread keeps running: the longest pause of
    a Python loop in the main thread stays far below the length of one run."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper
    g = helper.make_graph([helper.make_node("MatMul", ["x", "w"], ["y"])], "mm",
                          [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 1024])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 1024])],
                          [numpy_helper.from_array(np.ones((1024, 1024), np.float32), "w")])
    onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)]), str(tmp_path / "mm.onnx"))
    s = quint.Session(tmp_path / "mm.onnx")
    x = np.ones((4096, 1024), np.float32)
    t0 = time.perf_counter()
    s.run({"x": x})
    one_run = time.perf_counter() - t0
    done = threading.Event()
    t = threading.Thread(target=lambda: (s.run({"x": x}), done.set()))
    t.start()
    last, longest = time.perf_counter(), 0.0
    while not done.is_set():
        now = time.perf_counter()
        longest = max(longest, now - last)
        last = now
    t.join()
    assert longest < one_run / 2, (longest, one_run)


def test_explain_matches_cli(models, tmp_path, rng):
    x = rng.standard_normal((1, 2, 6, 6)).astype(np.float32)
    np.save(tmp_path / "x.npy", x)
    s = quint.Session(models["qconv"])
    e = s.explain({"x": x}, "conv", (0, 1, 2, 3))
    assert e["tensor"] == "conv" and e["op_type"] == "QLinearConv" and e["index"] == (0, 1, 2, 3)
    assert e["actual"] == s.run({"x": x}, dump=True)[1][2]["array"][0, 1, 2, 3]
    onnx_scheme = next(sc for sc in e["schemes"] if sc["arith"] == "onnx")
    assert onnx_scheme["result"] == e["actual"] and onnx_scheme["steps"]
    text = cli("explain", models["qconv"], "--input", tmp_path / "x.npy", "--tensor", "conv", "--at", "0,1,2,3").stdout
    assert quint.format_explanation(e).strip() == text.strip()
    many = s.explain({"x": x}, "conv", [(0, 0, 0, 0), (0, 2, 5, 5)])
    assert [m["index"] for m in many] == [(0, 0, 0, 0), (0, 2, 5, 5)]
    with pytest.raises(quint.Error, match="explain covers"):
        s.explain({"x": x}, "y", (0, 0, 0, 0))
