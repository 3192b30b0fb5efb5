"""``python -m scratchcnn`` lists every command the package has, from the package itself."""

import re

import pytest
from conftest import REPO_ROOT, run_python

PACKAGE = REPO_ROOT / "scratchcnn"


def command_modules() -> set[str]:
    """What runs as ``python -m scratchcnn.NAME``: the modules directly in scratchcnn/ with a
    __main__ block, and the subpackages with a __main__.py."""
    modules = {
        path.stem
        for path in PACKAGE.glob("*.py")
        if path.stem != "__main__" and 'if __name__ == "__main__":' in path.read_text()
    }
    return modules | {path.parent.name for path in PACKAGE.glob("*/__main__.py")}


def test_the_known_commands_are_there():
    assert {"train", "evaluate", "predict", "synthetic"} <= command_modules()


def test_python_m_scratchcnn_lists_every_command_with_a_summary():
    result = run_python(["-m", "scratchcnn"])
    assert result.returncode == 0, result.stderr
    listed = dict(re.findall(r"^  python -m scratchcnn\.(\w+) +(\S.*)$", result.stdout, re.M))
    assert set(listed) == command_modules()
    assert all(len(summary) > 10 for summary in listed.values()), listed
    # A summary says what the command does, not where its code lives.
    assert not [s for s in listed.values() if re.search(r"python -m|lives in|:mod:", s)], listed
    assert re.search(r"^  python examples/webcam\.py +\S", result.stdout, re.M)


def test_a_new_command_module_appears_in_the_list(tmp_path, monkeypatch):
    """The list is read from the folder: a new module with a __main__ block is listed."""
    import scratchcnn.__main__ as entry

    for path in PACKAGE.glob("*.py"):
        (tmp_path / path.name).write_text(path.read_text())
    (tmp_path / "score.py").write_text(
        '"""Score the reader on a synthetic video."""\nif __name__ == "__main__":\n    pass\n'
    )
    (tmp_path / "helpers.py").write_text('"""Not a command: no __main__ block."""\n')
    (tmp_path / "tools").mkdir()
    (tmp_path / "tools" / "__main__.py").write_text('"""Tools, one per subcommand."""\n')
    monkeypatch.setattr(entry, "PACKAGE", tmp_path)
    assert entry.commands()["score"] == "Score the reader on a synthetic video"
    assert entry.commands()["tools"] == "Tools, one per subcommand"
    assert "helpers" not in entry.commands() and "cli" not in entry.commands()
    assert "python -m scratchcnn.score" in entry.listing()


@pytest.mark.parametrize("name", sorted(command_modules()))
def test_every_listed_command_runs_by_either_spelling(name):
    for args in (["-m", f"scratchcnn.{name}", "--help"], ["-m", "scratchcnn", name, "--help"]):
        result = run_python(args, timeout=120)
        assert result.returncode == 0, result.stderr
        assert result.stdout.startswith("usage:"), result.stdout


def test_an_unknown_command_is_an_error_with_the_list():
    result = run_python(["-m", "scratchcnn", "fit"])
    assert result.returncode == 2
    assert "no command 'fit'" in result.stderr and "python -m scratchcnn.train" in result.stderr
