"""The README's Python examples run as written."""

import re

from conftest import REPO_ROOT


def python_blocks():
    text = (REPO_ROOT / "README.md").read_text()
    return re.findall(r"```python\n(.*?)```", text, flags=re.S)


def test_readme_examples_run(tmp_path, monkeypatch, mnist_dir):
    blocks = python_blocks()
    assert len(blocks) >= 2
    monkeypatch.chdir(tmp_path)  # the example saves a model file
    monkeypatch.setenv("SCRATCHCNN_DATA", str(mnist_dir))  # never download in tests
    namespace = {}
    for block in blocks:
        exec(compile(block, "README.md", "exec"), namespace)
    assert (tmp_path / "my_model.npz").exists()
    assert max(namespace["errors"].values()) < 1e-6
