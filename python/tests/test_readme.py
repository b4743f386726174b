"""The README's quick-start examples, run as written (ctest: python_readme_example).

Blocks are found by the HTML comment `<!-- example: NAME -->` just before their fence. Shell blocks
run with bash in a scratch folder; the only edits are paths: `build/` becomes the build tree under
test, `models/` and `../shared/testdata` the checkout's, so `out/` lands in the scratch folder.
"""
import os
import re
import subprocess
import sys

import pytest

from conftest import BUILD_DIR, MOBILENET, SOURCE_DIR, TESTDATA

README = SOURCE_DIR / "README.md"


def example(name):
    m = re.search(r"<!-- example: " + re.escape(name) + r" -->\n```\w*\n(.*?)```", README.read_text(), re.S)
    assert m, f"README.md has no block marked <!-- example: {name} -->"
    return m.group(1)


def localize(code):
    code = re.sub(r"(?<![\w/.])build/", f"{BUILD_DIR}/", code)
    code = re.sub(r"(?<![\w/.])models/", f"{SOURCE_DIR}/models/", code)
    return code.replace("../shared/testdata", str(TESTDATA))


def sh(code, cwd):
    p = subprocess.run(["bash", "-euo", "pipefail", "-c", localize(code)], cwd=cwd, capture_output=True, text=True)
    assert p.returncode == 0, f"exit {p.returncode}\n{p.stdout}\n{p.stderr}"
    return p


@pytest.mark.skipif(not MOBILENET.exists(), reason="../shared/testdata is absent")
def test_cli_example(tmp_path):
    (tmp_path / "out").mkdir()
    p = sh(example("cli"), tmp_path)
    assert "2 images, 0 failed" in p.stderr
    rows = (tmp_path / "out" / "classes.csv").read_text().splitlines()
    assert rows[0].startswith("file,error,top1_index,top1_label,top1_score,top1_prob,top2_index")
    assert [r.split(",")[0].rsplit("/", 1)[1] for r in rows[1:]] == ["cat.jpg", "fish-bike.jpg"]
    assert rows[1].split(",")[2:4] == ["282", "tiger cat"]


def test_cpp_example_is_the_install_test():
    """The C++ blocks are tests/install's files, which the install_consumer test builds and runs."""
    assert example("cpp") == (SOURCE_DIR / "tests" / "install" / "example.cc").read_text()
    cmake = (SOURCE_DIR / "tests" / "install" / "CMakeLists.txt").read_text()
    lines = [l for l in example("cmake").splitlines() if l.strip()]
    pos = 0
    for line in lines:
        pos = cmake.index(line + "\n", pos)  # in order, verbatim


def test_python_example(tmp_path):
    """Exports the ResNet50 and dumps PyTorch's layers (slow: about a minute), then runs the
    notebook example with the module under test."""
    sh(example("python-setup"), tmp_path)
    env = dict(os.environ, PYTHONPATH=str(BUILD_DIR / "python"))
    p = subprocess.run([sys.executable, "-c", example("python")], cwd=tmp_path, env=env, capture_output=True,
                       text=True)
    assert p.returncode == 0, f"{p.stdout}\n{p.stderr}"
    assert "layer1.0.conv1" in p.stdout and "arithmetic onnx" in p.stdout
