"""``python -m scratchcnn``: list the commands; ``python -m scratchcnn NAME ...`` runs one.

The list is read from the package itself, so a new command appears in it as soon as it exists: a
command is a module directly in ``scratchcnn/`` that runs as ``python -m scratchcnn.NAME`` (it has
an ``if __name__ == "__main__":`` block) or a subpackage with a ``__main__.py``, summed up by the
first line of its docstring. The example programs of a clone (``examples/*.py``) are listed the
same way when they are there. Nothing is imported to make the list, so it comes at once.
"""

from __future__ import annotations

import ast
import runpy
import sys
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent
EXAMPLES = PACKAGE.parent / "examples"  # only in a clone of the repository


def _summary(path: Path, always: bool = False) -> str | None:
    """The first line of the docstring of a script that runs as a program (one with a
    ``__main__`` block, or ``always``), else None."""
    source = path.read_text(encoding="utf-8")
    if not always and '__name__ == "__main__"' not in source:
        return None
    doc = ast.get_docstring(ast.parse(source)) or ""
    return doc.strip().split("\n", 1)[0].rstrip(".")


def commands() -> dict[str, str]:
    """``{name: summary}`` of every ``python -m scratchcnn.NAME`` command, by name."""
    found = {}
    for path in PACKAGE.glob("*.py"):
        if path.stem != "__main__" and (summary := _summary(path)) is not None:
            found[path.stem] = summary
    for path in PACKAGE.glob("*/__main__.py"):  # python -m scratchcnn.<subpackage>
        found[path.parent.name] = _summary(path, always=True)
    return dict(sorted(found.items()))


def examples() -> dict[str, str]:
    """``{path: summary}`` of the example programs next to the package (a clone's examples/)."""
    if not EXAMPLES.is_dir():
        return {}
    found = {}
    for path in sorted(EXAMPLES.glob("*.py")):
        if (summary := _summary(path)) is not None:
            found[f"examples/{path.name}"] = summary
    return found


def listing() -> str:
    rows = [(f"python -m scratchcnn.{name}", summary) for name, summary in commands().items()]
    extra = [(f"python {path}", summary) for path, summary in examples().items()]
    width = max(len(command) for command, _ in rows + extra) + 2
    lines = ["scratchcnn: a CNN from scratch in NumPy that learns MNIST and reads digits.", ""]
    lines.append("commands (add --help to any for its options):")
    lines += [f"  {command:<{width}}{summary}" for command, summary in rows]
    if extra:
        lines += ["", "in a clone of the repository:"]
        lines += [f"  {command:<{width}}{summary}" for command, summary in extra]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] in ("-h", "--help"):
        print(listing())
        return 0
    name, rest = argv[0], argv[1:]
    if name not in commands():
        print(listing(), file=sys.stderr)
        print(f"\npython -m scratchcnn: error: no command {name!r}", file=sys.stderr)
        return 2
    sys.argv = [f"python -m scratchcnn.{name}", *rest]
    runpy.run_module(f"scratchcnn.{name}", run_name="__main__", alter_sys=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
