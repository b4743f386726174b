"""quint.load_image (the CLI's preprocessing) and quint.compare (the metrics of `quint compare`)."""
import json
import sys

import numpy as np
import pytest
from PIL import Image

import quint
from conftest import CAT, MOBILENET, SOURCE_DIR, cli


@pytest.fixture(scope="module")
def png(tmp_path_factory):
    """A 300x200 RGB PNG with smooth gradients and noise."""
    rng = np.random.default_rng(7)
    h, w = 200, 300
    yy, xx = np.mgrid[0:h, 0:w]
    img = np.stack([xx * 255 / w, yy * 255 / h, (xx + yy) % 256], axis=-1) + rng.normal(0, 10, (h, w, 3))
    path = tmp_path_factory.mktemp("img") / "photo.png"
    Image.fromarray(np.clip(img, 0, 255).astype(np.uint8)).save(path)
    return path


def test_load_image_equals_torchvision_recipe(png):
    sys.path.insert(0, str(SOURCE_DIR / "models"))
    try:
        from preprocess import preprocess_file  # bit-identical to torchvision's pipeline
    finally:
        sys.path.pop(0)
    x = quint.load_image(png)
    assert x.shape == (1, 3, 224, 224) and x.dtype == np.float32 and x.flags["C_CONTIGUOUS"]
    ref = np.asarray(preprocess_file(png)).reshape(1, 3, 224, 224)
    np.testing.assert_array_equal(x, ref)  # lossless input: bit for bit


def test_load_image_options_match_the_cli(png, models, tmp_path):
    # The tiny classifier's [N,3,8,8] input: `quint dump` writes the CLI's preprocessed input.
    cli("dump", models["classifier"], png, "--size", "12", "--crop", "8", "--mean", "0.5,0.5,0.5",
        "--std", "0.25,0.5,1", "--out", tmp_path / "d")
    x = quint.load_image(png, size=12, crop=8, mean=(0.5, 0.5, 0.5), std=(0.25, 0.5, 1))
    np.testing.assert_array_equal(x, np.load(tmp_path / "d" / "img.npy"))
    assert quint.load_image(png, size=0, crop=0).shape == (1, 3, 200, 300)
    assert quint.load_image(png, size=100, crop=0).shape == (1, 3, 100, 150)


def test_load_image_errors(tmp_path):
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 40)
    with pytest.raises(quint.Error, match="bad.png"):
        quint.load_image(bad)
    with pytest.raises(quint.Error, match="cannot open image"):
        quint.load_image(tmp_path / "none.jpg")
    with pytest.raises(ValueError, match="std"):
        quint.load_image(bad, std=(1, 0, 1))
    with pytest.raises(ValueError, match="size and crop"):
        quint.load_image(bad, crop=-1)


def dump_of(models, x):
    return quint.Session(models["qconv"]).run({"x": x}, dump=True)[1]


def test_compare_identical_and_perturbed(models, rng):
    x = rng.standard_normal((1, 2, 6, 6)).astype(np.float32)
    a = dump_of(models, x)
    r = quint.compare(a, a)
    assert r.passed and r["first_divergent"] is None
    assert [t["name"] for t in r["tensors"]] == [t["name"] for t in a[1:]]  # inputs are not compared
    conv = r.tensor("conv")
    assert conv["integer"] and conv["exact"] == conv["count"] == 108 and conv["exact_pct"] == 100
    assert "conv" in str(r)

    b = [dict(t) for t in a]
    k = next(i for i, t in enumerate(b) if t["name"] == "conv")
    arr = b[k]["array"].copy()
    arr[0, 1, 2, 3] = arr[0, 1, 2, 3] + 1 if arr[0, 1, 2, 3] < 255 else 254
    arr[0, 2, 0, 0] = arr[0, 2, 0, 0] + 3 if arr[0, 2, 0, 0] < 250 else 240
    b[k]["array"] = arr
    r = quint.compare(a, b)
    assert not r.passed and r["first_divergent"] == "conv"
    conv = r.tensor("conv")
    assert conv["count"] - conv["exact"] == 2 and conv["max_diff_lsb"] >= 3
    assert conv["diff_lsb_histogram"]["1"] == 1
    assert conv["worst_elements"][0]["index"] == [0, 2, 0, 0]
    assert not quint.compare(a, b, tolerance_lsb=2).passed
    assert quint.compare(a, b, tolerance_lsb=10).passed
    # Only some tensors; renamed tensors.
    r = quint.compare(a, b, tensors=["y"])
    assert [t["name"] for t in r["tensors"]] == ["y"] and r.passed
    renamed = [dict(t, name="conv_ref") if t["name"] == "conv" else t for t in a]
    r = quint.compare(a, renamed, names={"conv": "conv_ref"}, tensors=["conv"])
    assert r.passed and r.tensor("conv")["reference_name"] == "conv_ref"
    with pytest.raises(quint.Error, match="neither dump holds a tensor named 'nope'"):
        quint.compare(a, b, tensors=["nope"])


def test_compare_float_dicts():
    a = {"t": np.array([1.0, 2.0, 3.0], np.float32)}
    r = quint.compare(a, {"t": np.array([1.0, 2.0, 3.5], np.float32)})
    t = r.tensor("t")
    assert not r.passed and t["max_abs_error"] == pytest.approx(0.5) and not t["integer"]
    assert quint.compare(a, {"t": np.array([1.0, 2.0, 3.5], np.float32)}, atol=0.6).passed
    with pytest.raises(TypeError):
        quint.compare(a, 42)
    with pytest.raises(TypeError, match="needs at least 'name' and 'array'"):
        quint.compare(a, [{"name": "t"}])


def test_compare_equals_cli_compare(models, tmp_path, rng):
    """Two dump folders compared by the module and by `quint compare --json` give the same report."""
    s = quint.Session(models["qconv"])
    s.dump({"x": rng.standard_normal((1, 2, 6, 6)).astype(np.float32)}, tmp_path / "a")
    s2 = quint.Session(models["qconv"], arith="qnnpack")
    s2.dump({"x": rng.standard_normal((1, 2, 6, 6)).astype(np.float32)}, tmp_path / "b")
    p = cli("compare", tmp_path / "a", tmp_path / "b", "--json", tmp_path / "r.json", check=False)
    assert p.returncode in (0, 3)
    want = json.loads((tmp_path / "r.json").read_text())
    got = quint.compare(tmp_path / "a", str(tmp_path / "b"))
    assert dict(got) == want
    assert got.passed == (p.returncode == 0)
    # Folders and in-memory lists mix.
    assert dict(quint.compare(quint.load_dump(tmp_path / "a"), tmp_path / "b")) == {**want, "a": "in-memory dump"}


@pytest.mark.skipif(not MOBILENET.exists(), reason="../shared/testdata is absent")
def test_mobilenet_matches_cli(tmp_path):
    cli("run", MOBILENET, CAT, "--out", tmp_path / "out")
    cli("dump", MOBILENET, CAT, "--out", tmp_path / "dump")
    s = quint.Session(MOBILENET, threads=2)
    x = quint.load_image(CAT)
    out, tensors = s.run({"input": x}, dump=True)
    np.testing.assert_array_equal(out["output"], np.load(tmp_path / "out" / "output.npy"))
    assert int(out["output"].argmax()) == 282  # tiger cat
    r = quint.compare(tensors, tmp_path / "dump")
    assert r.passed and r["only_in_a"] == [] and r["only_in_b"] == []
    assert all(t["exact"] == t["count"] for t in r["tensors"])
