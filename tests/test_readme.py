"""Every code block of the README runs as pasted, or this file says why not and what runs instead.

How each kind of block is run:

* ```python blocks: each one alone, as ``python README-line<N>.py`` in a fresh interpreter and an
  empty temporary folder, so a block can use nothing another block made.
* ```bash blocks: each line is one command, run in order by ``bash -c`` in a fresh temporary
  folder holding copies of ``examples/`` and ``benchmarks/`` (as in a clone), so the commands of
  one block share their files and nothing else. Every command must be a row of COMMANDS:
  ``Run()`` as pasted; ``Run(instead=...)``, the command actually run and why (a shorter run, a
  video for the camera, ``--headless`` for the window); or ``NotRun(why, check)``.
* blocks with no language show what a command prints: each must be a row of OUTPUTS, which names
  the code block that prints it and how its text is compared with what that block printed.

Every run has ``python`` = this interpreter, this checkout on ``PYTHONPATH``, ``SCRATCHCNN_DATA``
= the folder whose ``mnist/`` holds MNIST (so nothing is downloaded) and no other ``SCRATCHCNN_*``
variable.

A block or command that needs a file it does not make first gets it from PROVIDED (a trained
model, your own photos) — and the README must name that file in the block or in its section
before it: no snippet depends on another without saying so.

For a README author: a new ```python block needs nothing here, unless it needs a file that is not
in PROVIDED. A new ```bash command needs a row in COMMANDS (``test_every_block_is_known`` fails
and says so until it has one); a new output block a row in OUTPUTS. A row whose command or output
is no longer in the README fails that test too, so the tables stay the README's.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest
from conftest import REPO_ROOT

README = REPO_ROOT / "README.md"
TIMEOUT = 900  # seconds for one command, on a busy two-core machine


# -- the README, cut into blocks -------------------------------------------------------------------
@dataclass(frozen=True)
class Block:
    lang: str  # "python", "bash", or "" for what a command prints
    text: str
    line: int  # of the opening fence, counted from 1
    section: str  # the heading above the block
    before: str  # the README's text from that heading to the block

    @property
    def id(self) -> str:
        return f"line{self.line}-{self.lang or 'output'}"

    def commands(self) -> list[str]:
        """A bash block's commands: one per line, without comments (a trailing \\ continues)."""
        commands, pending = [], ""
        for raw in self.text.splitlines():
            line = pending + re.sub(r"(^|\s+)#.*$", "", raw).strip()
            if line.endswith("\\"):
                pending = line[:-1].rstrip() + " "
                continue
            pending = ""
            if line:
                commands.append(line)
        return commands


def readme_blocks(text: str | None = None) -> list[Block]:
    text = README.read_text() if text is None else text
    blocks, section, section_start = [], "", 0
    lines = text.splitlines(keepends=True)
    i = 0
    while i < len(lines):
        line = lines[i]
        if line.startswith("#"):
            section, section_start = line.strip("# \n"), i
        elif line.startswith("```"):
            lang = line[3:].strip()
            end = next(j for j in range(i + 1, len(lines)) if lines[j].startswith("```"))
            blocks.append(
                Block(
                    lang=lang,
                    text="".join(lines[i + 1 : end]),
                    line=i + 1,
                    section=section,
                    before="".join(lines[section_start:i]),
                )
            )
            i = end
        i += 1
    return blocks


BLOCKS = readme_blocks()


# -- the bash commands ------------------------------------------------------------------------------
@dataclass(frozen=True)
class Run:
    """Run the README's command, or ``instead`` (say ``why``); ``needs``: files it reads without
    naming them; ``makes``: files it must leave; ``prints``: a regex its stdout must match."""

    instead: str | None = None
    why: str = ""
    needs: tuple[str, ...] = ()
    makes: tuple[str, ...] = ()
    prints: str | None = None


@dataclass(frozen=True)
class NotRun:
    """Not run, because ``why``; ``check()`` asserts what can be checked in its place."""

    why: str
    check: Callable[[], None]


def extras_exist(*names: str) -> Callable[[], None]:
    def check():
        project = (REPO_ROOT / "pyproject.toml").read_text()
        extras = project.split("[project.optional-dependencies]")[1].split("\n[")[0]
        declared = set(re.findall(r"^([\w-]+)\s*=", extras, re.M))
        assert set(names) <= declared, f"pyproject.toml has the extras {declared}, not {names}"

    return check


def ci_runs(command: str) -> Callable[[], None]:
    def check():
        lines = (REPO_ROOT / ".ci" / "run").read_text().splitlines()
        assert command in [line.strip() for line in lines], f".ci/run does not run {command}"

    return check


SHORT_TRAIN = "--epochs 1 --train-size 1000 --val-size 500"
TRAIN_WHY = "the default run is 15 epochs of 55,000 images (8 minutes): here one epoch of 1,000"
CAMERA = "no camera here: a video of a sheet of digits stands in for the camera"
WINDOW = (
    "no screen here: --headless for the window (tests/test_vision_pipeline.py shows it under Xvfb)"
)
MODEL = ("models/scratchcnn.npz",)  # where the readers look by default

COMMANDS: dict[str, Run | NotRun] = {
    'pip install -e ".[test]"': NotRun(
        "installs packages; .ci/run installs the project from a clean clone before this suite",
        extras_exist("test"),
    ),
    "python -m scratchcnn.data download": Run(
        prints=r"mnist: 4 files verified in .* \(0 downloaded, 4 already there\)"
    ),
    "python -m pytest": NotRun("runs this very suite; .ci/run runs exactly it", ci_runs("python -m pytest")),
    "python -m scratchcnn": Run(prints=r"python -m scratchcnn\.train "),
    "python -m scratchcnn.train": Run(
        f"python -m scratchcnn.train {SHORT_TRAIN}", TRAIN_WHY, makes=MODEL
    ),
    "python -m scratchcnn.evaluate models/scratchcnn.npz": Run(prints=r"test accuracy: \d"),
    "python -m scratchcnn.train --resume models/scratchcnn.ckpt.npz": Run(
        makes=MODEL, prints=r"resuming .*scratchcnn\.ckpt\.npz"
    ),
    "python -m scratchcnn.train --backend numba": Run(
        f"python -m scratchcnn.train --backend numba {SHORT_TRAIN}", TRAIN_WHY, makes=MODEL,
        prints="backend numba",
    ),
    "SCRATCHCNN_BACKEND=numpy python examples/webcam.py": Run(
        "SCRATCHCNN_BACKEND=numpy python examples/webcam.py --video sheet.mp4 --headless "
        "--max-frames 3", f"{CAMERA}; {WINDOW}", needs=MODEL, prints='"frame": 2',
    ),
    "SCRATCHCNN_THREADS=1 python -m scratchcnn.train": Run(
        f"SCRATCHCNN_THREADS=1 python -m scratchcnn.train {SHORT_TRAIN}", TRAIN_WHY, makes=MODEL
    ),
    'pip install -e ".[reference,plots]"': NotRun(
        "installs Keras and TensorFlow (about 600 MB); .ci/run installs this extra",
        extras_exist("reference", "plots"),
    ),
    "python benchmarks/compare.py --epochs 3 --out benchmarks/results/compare": Run(
        "python benchmarks/compare.py --quick --systems numpy --images 500 --test-images 500 "
        "--out benchmarks/results/compare",
        "3 epochs of four systems take 10 minutes and Keras is an optional extra: one quick "
        "epoch of the numpy system on 500 images",
        makes=("benchmarks/results/compare/results.json",),
    ),
    "python -m scratchcnn.train --output scratchcnn/pretrained/scratchnet-mnist.npz": Run(
        f"python -m scratchcnn.train --output scratchcnn/pretrained/scratchnet-mnist.npz {SHORT_TRAIN}",
        f"{TRAIN_WHY}, into the block's own folder (tests/test_bundled_model.py checks the real "
        "file's settings against the defaults)",
        makes=("scratchcnn/pretrained/scratchnet-mnist.npz",),
    ),
    "pip install torch --index-url https://download.pytorch.org/whl/cpu": NotRun(
        "installs PyTorch (a CPU build, a few hundred MB), optional and not installed by .ci/run",
        extras_exist("torch"),
    ),
    "python benchmarks/kernels.py": Run(
        "python benchmarks/kernels.py --quick --backends numpy",
        "--quick: a few repeats of each kernel, one backend",
    ),
    "python benchmarks/epoch_time.py": Run(
        "python benchmarks/epoch_time.py --images 512 --backends numpy --threads 1 "
        "--profile-batches 2 --latency-calls 20 --memory-images 256 --skip jit",
        "the full run trains whole epochs on every backend and thread count: a small one",
    ),
    "python examples/webcam.py": Run(
        "python examples/webcam.py --video sheet.mp4 --headless --max-frames 3",
        f"{CAMERA}; {WINDOW}", needs=MODEL, prints='"frame": 2',
    ),
    "python examples/webcam.py --camera 1 --min-confidence 0.8": Run(
        "python examples/webcam.py --video sheet.mp4 --min-confidence 0.8 --headless "
        "--max-frames 3", f"{CAMERA}; {WINDOW}", needs=MODEL, prints='"frame": 2',
    ),
    "python examples/webcam.py --video sheet.mp4 --save-video annotated.avi": Run(
        "python examples/webcam.py --video sheet.mp4 --save-video annotated.avi --headless",
        WINDOW, needs=MODEL, makes=("annotated.avi",),
    ),
    "python examples/webcam.py --image sheet.jpg": Run(
        "python examples/webcam.py --image sheet.jpg --headless", WINDOW, needs=MODEL,
        prints='"frame": 0',
    ),
    "python examples/webcam.py --video sheet.mp4 --headless > detections.jsonl": Run(
        needs=MODEL, makes=("detections.jsonl",)
    ),
    "python -m scratchcnn.predict sheet1.jpg sheet2.png": Run(
        needs=MODEL, prints='"file": "sheet2.png"'
    ),
    "python -m scratchcnn.predict sheet1.jpg --rotate auto --annotate annotated/": Run(
        needs=MODEL, makes=("annotated/sheet1.png",), prints='"file": "sheet1.jpg"'
    ),
    "python -m scratchcnn.synthetic demo.avi --frames 100 --digits 6": Run(
        "python -m scratchcnn.synthetic demo.avi --frames 10 --digits 6",
        "100 frames take half a minute: 10", makes=("demo.avi", "demo.truth.json"),
    ),
    "python examples/webcam.py --video demo.avi --headless > demo.jsonl": Run(
        needs=MODEL, makes=("demo.jsonl",)
    ),
    "python -m scratchcnn.score demo.truth.json demo.jsonl": Run(
        prints=r"10 frames, 60 digits: found \d+ \(\d"
    ),
    "python examples/webcam.py --video demo.avi --loop": Run(
        "python examples/webcam.py --video demo.avi --loop --headless --max-frames 15",
        f"{WINDOW}; --loop replays for ever: 15 frames, past the 10-frame video's end",
        needs=MODEL, prints='"frame": 14',
    ),
}  # fmt: skip


# -- what commands print ---------------------------------------------------------------------------
NUMBER = r"-?\d[\d,]*(?:\.\d+)?(?:e[+-]?\d+)?"


def same_lines(shown: str, run: BlockRun) -> None:
    """The README shows exactly these lines, in this order, in what the block printed."""
    assert shown.strip() in run.stdout, f"printed:\n{run.stdout}"


def same_form(shown: str, run: BlockRun) -> None:
    """Every line shown (but "...") starts a printed line once its numbers are set free: the
    same words, fields and order, from a shorter run."""
    printed = run.stdout.splitlines()
    for line in shown.strip().splitlines():
        if line.strip() == "...":
            continue
        parts = re.split(NUMBER, line)
        pattern = NUMBER.join(re.escape(part) for part in parts)
        assert any(re.match(pattern, out) for out in printed), (
            f"no printed line has the form of:\n{line}\nprinted:\n{run.stdout}"
        )


def same_json(shown: str, run: BlockRun) -> None:
    """The README's JSON line has the keys and value types of the JSON lines the block printed
    (compared with the first that holds a detection)."""

    def form(value):
        if isinstance(value, dict):
            return {key: form(v) for key, v in value.items()}
        if isinstance(value, list):
            return [form(value[0])] if value else []
        return type(value).__name__

    printed = [form(json.loads(line)) for line in run.stdout.splitlines() if line.startswith("{")]
    with_detections = [p for p in printed if p.get("detections")]
    assert with_detections, f"no JSON line with detections among:\n{run.stdout[-3000:]}"
    assert form(json.loads(shown)) == with_detections[0]


@dataclass(frozen=True)
class Output:
    """What a code block prints: the block is the first that contains ``printed_by``."""

    printed_by: str
    check: Callable[[str, BlockRun], None]


OUTPUTS: dict[str, Output] = {  # keyed by the output block's first line
    "Sequential: input (None, 1, 28, 28)": Output("model.summary()", same_lines),
    "epoch 1/2  loss": Output("model.summary()", same_form),
    "training scratchnet": Output("python -m scratchcnn.train", same_form),
    # the headless lines of the synthetic video, read by the provided trained model (the block
    # that redirects them to detections.jsonl reads with its own shortened run: few digits)
    '{"frame": 0, "detections"': Output("python examples/webcam.py --video demo.avi", same_json),
}


# -- files a block may need ------------------------------------------------------------------------
PROVIDED = {
    "models/scratchcnn.npz": "a trained model where python -m scratchcnn.train saves it: the "
    "suite's LeNet-5 after one epoch (conftest.digit_model_path)",
    "sheet.mp4": "your video of digits on paper: 8 rendered frames of MNIST test digits",
    "sheet.jpg": "your photo of digits on paper: a rendered frame",
    "sheet1.jpg": "your photo: a rendered frame",
    "sheet2.png": "your photo: a rendered frame",
    "models/scratchcnn.ckpt.npz": "the checkpoint Ctrl-C leaves: python -m scratchcnn.train "
    "--epochs 2 --train-size 4000 --val-size 500 (INTERRUPTED_RUN), stopped by SIGINT after its "
    "first batch",
}
INTERRUPTED_RUN = ["-m", "scratchcnn.train", "--epochs", "2", "--train-size", "4000"]
INTERRUPTED_RUN += ["--val-size", "500"]


def needed(block: Block) -> list[str]:
    """The files the README's ``block`` reads without making them first: named in it (PROVIDED
    files), or read by default (``Run.needs``), minus what an earlier command of the block makes.
    (Files only a substitute command reads, such as the video standing in for a camera, are the
    test's business, not the reader's.)"""
    if block.lang == "python":
        return [name for name in PROVIDED if name in block.text]
    needs, made = [], set()
    for command in block.commands():
        row = COMMANDS[command]
        if isinstance(row, NotRun):
            continue
        for name in [*row.needs, *(n for n in PROVIDED if n in command)]:
            if name not in made and name not in needs:
                needs.append(name)
        made.update(row.makes)
    return needs


# -- the checks that run nothing -------------------------------------------------------------------
def test_the_readme_has_the_blocks_this_file_knows():
    kinds = {block.lang for block in BLOCKS}
    assert {"python", "bash", ""} <= kinds and len(BLOCKS) >= 10


def unknown(blocks: list[Block]) -> list[str]:
    """What the tables do not cover in ``blocks``, and rows the blocks no longer have."""
    problems = []
    commands = [(b, c) for b in blocks if b.lang == "bash" for c in b.commands()]
    outputs = [b for b in blocks if b.lang == ""]
    for block in blocks:
        if block.lang not in ("python", "bash", ""):
            problems.append(f"README line {block.line}: ```{block.lang} blocks are not run")
    for block, command in commands:
        if command not in COMMANDS:
            problems.append(
                f"README line {block.line}: command {command!r} is not in COMMANDS "
                "(tests/test_readme.py): add Run() to run it as pasted, Run(instead=..., why=...) "
                "for a shorter run, or NotRun(why, check)"
            )
    for block in outputs:
        if output_row(block) is None:
            problems.append(
                f"README line {block.line}: output block {block.text.splitlines()[0]!r} is not "
                "in OUTPUTS (tests/test_readme.py): say which block prints it"
            )
    used = {command for _, command in commands}
    problems += [f"COMMANDS row {c!r} is not in the README" for c in COMMANDS if c not in used]
    for first, row in OUTPUTS.items():
        if not any(b.text.startswith(first) for b in outputs):
            problems.append(f"OUTPUTS row {first!r} is not in the README")
        if printer(row, blocks) is None:
            problems.append(f"OUTPUTS row {first!r}: no code block contains {row.printed_by!r}")
    return problems


def silent_dependencies(blocks: list[Block]) -> list[str]:
    """Files a block needs, does not make, and that neither it nor its section names before it."""
    return [
        f"README line {block.line} ({block.section}) needs {name}, named nowhere before it"
        for block in blocks
        if block.lang in ("python", "bash") and not needs_unknown_commands(block)
        for name in needed(block)
        if name not in block.text and name not in block.before
    ]


def needs_unknown_commands(block: Block) -> bool:
    return block.lang == "bash" and any(c not in COMMANDS for c in block.commands())


def test_every_block_is_known():
    problems = unknown(BLOCKS)
    assert not problems, "\n".join(problems)


def test_no_block_depends_on_another_without_saying_so():
    """A file a block needs and does not make must be named in the block or in its section's
    text before it: the reader is told where it comes from."""
    silent = silent_dependencies(BLOCKS)
    assert not silent, "\n".join(silent)


def test_a_new_block_is_caught_until_it_is_listed():
    """What a README author meets: the same README plus one new block of each kind."""
    text = README.read_text() + (
        "\n## New\n\n```bash\npython -m scratchcnn.train --epochs 99\n```\n\n"
        "```\nsomething printed\n```\n\n```console\n$ ls\n```\n\n"
        "## Elsewhere\n\n```bash\npython examples/webcam.py\n```\n"
    )
    blocks = readme_blocks(text)
    problems = "\n".join(unknown(blocks))
    assert "command 'python -m scratchcnn.train --epochs 99' is not in COMMANDS" in problems
    assert "output block 'something printed' is not in OUTPUTS" in problems
    assert "```console blocks are not run" in problems
    assert silent_dependencies(blocks) == [  # the camera command, far from "train first"
        f"README line {blocks[-1].line} (Elsewhere) needs models/scratchcnn.npz, named nowhere "
        "before it"
    ]
    stale = unknown(readme_blocks(text.replace("python -m scratchcnn.evaluate", "python -m x")))
    assert (
        "COMMANDS row 'python -m scratchcnn.evaluate models/scratchcnn.npz' is not in the README"
        in stale
    )


def test_every_file_the_readme_names_in_this_repository_exists():
    named = set(
        re.findall(
            r"(?<![\w./~-])((?:scratchcnn|tests|benchmarks|examples)/[\w./-]*\w)",
            README.read_text(),
        )
    )
    missing = sorted(path for path in named if not (REPO_ROOT / path).exists())
    assert not missing, f"the README names files that do not exist: {missing}"


def test_the_block_parser_sees_commands_outputs_and_sections():
    text = "# A\n\nprose\n\n```bash\nrun one   # note\n\n# a comment\nrun \\\n  two\n```\n## B\n```\nout\n```\n"
    bash, out = readme_blocks(text)
    assert bash.commands() == ["run one", "run two"] and bash.section == "A" and bash.line == 5
    assert "prose" in bash.before and out.lang == "" and out.section == "B" and out.text == "out\n"


# -- running the blocks ----------------------------------------------------------------------------
@dataclass
class BlockRun:
    folder: Path
    stdout: str = ""
    error: str | None = None
    commands: list[str] = field(default_factory=list)


def output_row(block: Block) -> Output | None:
    return next((row for first, row in OUTPUTS.items() if block.text.startswith(first)), None)


def printer(row: Output, blocks: list[Block] | None = None) -> Block | None:
    return next(
        (
            b
            for b in (BLOCKS if blocks is None else blocks)
            if b.lang in ("python", "bash") and row.printed_by in b.text
        ),
        None,
    )


class Runner:
    """Runs README blocks, each once per session, in folders of their own."""

    def __init__(self, tmp_factory, mnist_dir: Path, provide: Callable[[str, Path, dict], None]):
        self.tmp_factory, self.provide = tmp_factory, provide
        self.bin = tmp_factory.mktemp("bin")
        python = self.bin / "python"  # a script, not a link: a link would lose a virtualenv
        python.write_text(f'#!/bin/sh\nexec "{sys.executable}" "$@"\n')
        python.chmod(0o755)
        env = {k: v for k, v in os.environ.items() if not k.startswith("SCRATCHCNN_")}
        self.env = {
            **env,
            "PATH": f"{self.bin}{os.pathsep}{env.get('PATH', '')}",
            "PYTHONPATH": str(REPO_ROOT),
            "PYTHONUNBUFFERED": "1",
            "SCRATCHCNN_DATA": str(mnist_dir.parent),  # datasets live in its subfolders
        }
        self.runs: dict[int, BlockRun] = {}

    def run(self, block: Block) -> BlockRun:
        if block.line not in self.runs:
            folder = self.tmp_factory.mktemp(f"readme-line{block.line}")
            run = self.runs[block.line] = BlockRun(folder)
            try:
                if block.lang == "python":
                    self._python(block, run)
                else:
                    self._bash(block, run)
            except AssertionError as err:
                run.error = str(err)
        run = self.runs[block.line]
        assert run.error is None, f"README line {block.line} ({block.section}): {run.error}"
        return run

    def _shell(self, command: str, run: BlockRun) -> subprocess.CompletedProcess:
        run.commands.append(command)
        result = subprocess.run(
            ["bash", "-c", command], cwd=run.folder, env=self.env, capture_output=True,
            text=True, timeout=TIMEOUT,
        )  # fmt: skip
        run.stdout += result.stdout
        assert result.returncode == 0, (
            f"`{command}` exited with {result.returncode}:\n{result.stderr[-3000:]}"
        )
        return result

    def _provide(self, names, run: BlockRun) -> None:
        for name in names:
            if not (run.folder / name).exists():
                self.provide(name, run.folder, self.env)

    def _python(self, block: Block, run: BlockRun) -> None:
        self._provide(needed(block), run)
        script = run.folder / f"README-line{block.line}.py"
        script.write_text("\n" * block.line + block.text)  # tracebacks give README's line numbers
        self._shell(f"python {script.name}", run)

    def _bash(self, block: Block, run: BlockRun) -> None:
        for folder in ("examples", "benchmarks"):  # the scripts a clone has, nothing they wrote
            (run.folder / folder).mkdir()
            for script in (REPO_ROOT / folder).glob("*.py"):
                shutil.copy(script, run.folder / folder)
        for command in block.commands():
            row = COMMANDS[command]
            if isinstance(row, NotRun):
                row.check()
                continue
            text = row.instead or command
            self._provide([*row.needs, *(n for n in PROVIDED if n in text)], run)
            result = self._shell(text, run)
            for name in row.makes:
                assert (run.folder / name).exists(), f"`{text}` did not make {name}"
            if row.prints is not None:
                assert re.search(row.prints, result.stdout), (
                    f"`{text}` did not print {row.prints!r}:\n{result.stdout[-3000:]}"
                )


@pytest.fixture(scope="module")
def sheets(mnist_test_set):
    """Frames of MNIST test digits on paper: the photos and the video a reader brings."""
    from scratchcnn.reader.synthetic import FrameRenderer

    renderer = FrameRenderer(*mnist_test_set)
    rng = np.random.default_rng(16)
    return [renderer.render(rng, n_digits=5)[0] for _ in range(8)]


@pytest.fixture(scope="module")
def runner(tmp_path_factory, mnist_dir, digit_model_path, sheets):
    import cv2

    def provide(name: str, folder: Path, env: dict) -> None:
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if name == "models/scratchcnn.ckpt.npz":
            interrupt_a_run(folder, env)
        elif name == "models/scratchcnn.npz":
            shutil.copy(digit_model_path, path)
        elif name.endswith(".mp4"):
            h, w = sheets[0].shape[:2]
            writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 5, (w, h))
            for frame in sheets:
                writer.write(frame)
            writer.release()
        else:  # each photo its own frame
            cv2.imwrite(str(path), sheets[list(PROVIDED).index(name)])
        assert path.exists(), f"could not provide {name}"

    return Runner(tmp_path_factory, mnist_dir, provide)


def interrupt_a_run(folder: Path, env: dict) -> None:
    """Start a training run in ``folder`` and press Ctrl-C (SIGINT) once its first batch is
    done, leaving the checkpoint a user would have."""
    proc = subprocess.Popen(
        [sys.executable, *INTERRUPTED_RUN], cwd=folder, env=env, text=True,
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )  # fmt: skip
    seen = ""
    try:
        while not re.search(r"\| *[1-9]\d*/\d+ ", seen):  # the progress bar's first batch
            chunk = proc.stderr.read(64)
            assert chunk, f"the run ended before its first batch:\n{seen[-3000:]}"
            seen += chunk
        proc.send_signal(signal.SIGINT)
        seen += proc.communicate(timeout=TIMEOUT)[1]
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130 and "--resume" in seen, seen[-3000:]


def blocks_of(*langs: str):
    return [pytest.param(b, id=b.id) for b in BLOCKS if b.lang in langs]


@pytest.mark.slow
@pytest.mark.parametrize("block", blocks_of("python", "bash"))
def test_code_block_runs_as_pasted(runner, block):
    if needs_unknown_commands(block):
        pytest.fail(f"README line {block.line}: a command is not in COMMANDS (see above)")
    runner.run(block)


@pytest.mark.slow
@pytest.mark.parametrize("block", blocks_of(""))
def test_output_block_is_what_its_command_prints(runner, block):
    row = output_row(block)
    assert row is not None, f"README line {block.line}: not in OUTPUTS"
    row.check(block.text, runner.run(printer(row)))
