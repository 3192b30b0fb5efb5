"""Digits found and read end to end on rendered sheets, case by case, by two versions of the reader.

Cases (all rendered from MNIST *test* digits, or from handwriting fonts, never training digits):

* ``camera``: the webcam-like frames of ``scratchcnn.synthetic`` (1-10 digits, uneven light,
  perspective, blur, noise, JPEG);
* ``touching``: rows of digit pairs whose inks touch or overlap a little;
* ``meeting``: rows of digit pairs whose inks meet without overlapping (16 sheets, drawn with a
  random generator of their own, so the other cases are the same with or without them);
  ``narrow``: the same with a "1" in every pair, beside a "1", "4", "7" or "9" (12 sheets, a
  generator of their own): pairs often no wider than one wide digit;
* ``size-N``: rows of digits N pixels tall, N from 10 to 120;
* ``single``: one dark digit on light paper filling 80-100% of a small image (a pre-cropped digit,
  ``scratchcnn.reader.synthetic.tight_crop``); ``crops``: 160 more of them, and ``numbers``: 40
  numbers of 2-4 digits cropped to their height (``tight_number``), each drawn with a random
  generator of its own;
* ``tilted``: sheets rotated by 8-20 degrees; ``sideways``: sheets photographed turned by a
  quarter or half turn (read with ``--rotate auto`` where the reader has it);
* ``fonts``: digits in the Debian handwriting fonts installed here.

Every image is written as PNG and read by ``python -m scratchcnn.predict`` of each version (a git
commit, unpacked into a temporary folder, or this checkout), the same model for both unless
``--before-model`` gives the other version its own. A truth
digit is *read* when a sure detection (not flagged unsure) overlaps its box with IoU >= 0.5 and
gives its digit. Reported per case: digits, found (matched), read end to end, spurious detections
(matching no digit) per 100 digits, and for the three cases of pairs the pairs read as two
correct digits.

    python benchmarks/reader_cases.py --model models/scratchcnn.npz --before bd63eb1 \\
        --json benchmarks/results/reader_cases.json
"""

from __future__ import annotations

import argparse
import io
import json
import os
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

SIZES = (10, 12, 15, 20, 30, 45, 70, 120)


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", type=Path, default=Path("models/scratchcnn.npz"))
    p.add_argument(
        "--before",
        default="bd63eb1",
        help="git commit of the reader to compare with (default bd63eb1, main before issue #14)",
    )
    p.add_argument(
        "--before-model",
        type=Path,
        help="the model the --before version reads with (default: --model): a retrained model "
        "against the one it replaces",
    )
    p.add_argument("--no-before", action="store_true", help="measure this checkout only")
    p.add_argument("--data-dir", type=Path, help="MNIST folder (default: as load_mnist finds it)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--keep", type=Path, help="write the case images and truth into this folder")
    p.add_argument("--json", type=Path, help="write the results here as JSON")
    return p.parse_args(argv)


# -- the cases ----------------------------------------------------------------------------------
def pick(rng, n_images, count):
    return tuple(int(i) for i in rng.choice(n_images, size=count, replace=False))


def build_cases(data_dir, seed: int) -> dict[str, list[dict]]:
    """Case name -> list of {"image", "truth": [(digit, box)], "text", "pairs"}."""
    from scratchcnn.data.fonts import render_font_digits
    from scratchcnn.reader.synthetic import (
        FrameRenderer,
        RenderConfig,
        SheetRenderer,
        SheetRow,
        TruthDigit,
        mnist_test_digits,
        narrow_pairs,
        tight_crop,
        tight_number,
    )

    images, labels = mnist_test_digits(data_dir)
    rng = np.random.default_rng(seed)
    n = len(images)
    cases: dict[str, list[dict]] = {}

    def entry(frame, truth, text="", pairs=()):
        return {
            "image": frame,
            "truth": [(int(t.digit), [int(v) for v in t.box]) for t in truth],
            "text": text,
            "pairs": list(pairs),
        }

    camera = FrameRenderer(images, labels)
    cases["camera"] = [entry(*camera.render(rng, int(rng.integers(1, 11)))) for _ in range(40)]

    sheets = SheetRenderer(images, labels)

    def pairs_sheet(generator, overlap: float, chosen=pick) -> dict:
        """Four rows of three touching pairs, 40-70 pixels tall, digits ``chosen(generator, n,
        6)``."""
        rows = [
            SheetRow(
                chosen(generator, n, 6), generator.uniform(40, 70), (None, 1.3) * 3, overlap=overlap
            )
            for _ in range(4)
        ]
        frame, truth, text = sheets.render(generator, rows, size=(800, 600))
        return entry(frame, truth, text, [(i, i + 1) for i in range(0, len(truth) - 1, 2)])

    cases["touching"] = [pairs_sheet(rng, SheetRow.overlap) for _ in range(12)]

    small_light = RenderConfig(blur_sigma=(0.3, 0.7), noise_sigma=(1.0, 3.0), jpeg_quality=(75, 92))
    for height in SIZES:
        renderer = SheetRenderer(images, labels, small_light if height < 20 else None)
        size = (640, 480) if height <= 30 else (1280, 960)
        count = 8 if height <= 45 else 6
        found = []
        for _ in range(2):
            rows = [SheetRow(pick(rng, n, count), height, (0.6,) * count) for _ in range(6)]
            found.append(entry(*renderer.render(rng, rows, size=size)))
        cases[f"size-{height}"] = found

    def tight_crops(generator, count: int) -> list[dict]:
        """``count`` digits cropped tight (``tight_crop``), one per image."""
        crops = []
        for _ in range(count):
            index = int(generator.integers(n))
            image, box = tight_crop(images[index], generator)
            truth = [TruthDigit(int(labels[index]), box, index)]
            crops.append(entry(image, truth, str(labels[index])))
        return crops

    cases["single"] = tight_crops(rng, 40)

    tilted, sideways = [], []
    for i in range(10):
        rows = [SheetRow(pick(rng, n, 5), rng.uniform(40, 60), (0.6,) * 5) for _ in range(4)]
        angle = rng.choice([-1, 1]) * rng.uniform(8, 20)
        tilted.append(entry(*sheets.render(rng, rows, size=(640, 560), tilt=angle)))
        rows = [SheetRow(pick(rng, n, 5), rng.uniform(40, 60), (0.6,) * 5) for _ in range(4)]
        turns = (1, 3, 1, 3, 2)[i % 5]
        sideways.append(entry(*sheets.render(rng, rows, size=(600, 640), quarter_turns=turns)))
    cases["tilted"] = tilted
    cases["sideways"] = sideways

    font_images, font_labels = render_font_digits()
    if len(font_images):
        fonts = SheetRenderer(font_images, font_labels)
        cases["fonts"] = []
        for _ in range(10):
            rows = [
                SheetRow(pick(rng, len(font_images), 6), rng.uniform(30, 70), (0.5,) * 6)
                for _ in range(4)
            ]
            cases["fonts"].append(entry(*fonts.render(rng, rows, size=(900, 700))))

    own = np.random.default_rng([seed, 1])
    cases["meeting"] = [pairs_sheet(own, 0.0) for _ in range(16)]
    # More digits cropped tight, as "single" draws them: 40 are too few to tell 97% from 99%.
    cases["crops"] = tight_crops(np.random.default_rng([seed, 2]), 160)
    own = np.random.default_rng([seed, 3])
    cases["numbers"] = []
    for _ in range(40):
        chosen = pick(own, n, int(own.integers(2, 5)))
        image, boxes = tight_number([images[i] for i in chosen], own)
        truth = [TruthDigit(int(labels[i]), box, i) for i, box in zip(chosen, boxes, strict=True)]
        cases["numbers"].append(entry(image, truth, "".join(str(labels[i]) for i in chosen)))
    own = np.random.default_rng([seed, 4])

    def narrow(generator, _n_images, count):
        return narrow_pairs(labels, generator, count // 2)

    cases["narrow"] = [pairs_sheet(own, 0.0, narrow) for _ in range(12)]
    return cases


# -- reading them --------------------------------------------------------------------------------
def unpack_commit(commit: str, into: Path) -> Path:
    """The repository's files at ``commit``, unpacked into ``into`` (git archive)."""
    data = subprocess.run(
        ["git", "archive", "--format=tar", commit],
        cwd=REPO_ROOT,
        capture_output=True,
        check=True,
    ).stdout
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        tar.extractall(into, filter="data")
    return into


def has_option(source: Path, option: str) -> bool:
    text = (source / "scratchcnn" / "reader" / "options.py").read_text()
    return option in text


def read_with(source: Path, model: Path, paths: list[Path], rotate: bool) -> tuple[list, float]:
    """One JSON object per image from ``source``'s predict command, and the seconds it took."""
    env = {**os.environ, "PYTHONPATH": str(source), "PYTHONUNBUFFERED": "1"}
    args = [sys.executable, "-m", "scratchcnn.predict", "--model", str(model)]
    if rotate and has_option(source, '"--rotate"'):
        args += ["--rotate", "auto"]
    start = time.perf_counter()
    result = subprocess.run(
        [*args, *map(str, paths)], capture_output=True, text=True, env=env, cwd=source
    )
    seconds = time.perf_counter() - start
    if result.returncode != 0:
        raise RuntimeError(f"predict from {source} failed: {result.stderr.strip()[-400:]}")
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    if len(lines) != len(paths):
        raise RuntimeError(f"predict from {source} printed {len(lines)} lines for {len(paths)}")
    return lines, seconds


def score(case: list[dict], lines: list[dict]) -> dict:
    from scratchcnn.reader.synthetic import MatchCounts, TruthDigit

    counts = MatchCounts()
    pairs_ok = pairs = 0
    for item, line in zip(case, lines, strict=True):
        truth = [TruthDigit(d, tuple(b), -1) for d, b in item["truth"]]
        sure = [d for d in line["detections"] if not d.get("unsure", False)]
        correct = counts_correct(truth, sure)
        counts.add(truth, sure)
        for a, b in item["pairs"]:
            pairs += 1
            pairs_ok += int(a in correct and b in correct)
    row = {
        "images": len(case),
        "digits": counts.truths,
        "found": counts.matched,
        "read": counts.correct,
        "spurious": counts.false_positives,
        "found_pct": round(100.0 * counts.matched / max(counts.truths, 1), 1),
        "read_pct": round(100.0 * counts.correct / max(counts.truths, 1), 1),
        "spurious_per_100": round(100.0 * counts.false_positives / max(counts.truths, 1), 1),
    }
    if pairs:
        row["pairs"] = pairs
        row["pairs_read_pct"] = round(100.0 * pairs_ok / pairs, 1)
    return row


def counts_correct(truth, detections, min_iou: float = 0.5) -> set[int]:
    """Indices of ``truth`` matched (greedily by IoU, as MatchCounts does) and read right."""
    from scratchcnn.reader.synthetic import match_boxes

    boxes = [tuple(d["box"]) for d in detections]
    matches = match_boxes([t.box for t in truth], boxes, min_iou)
    return {i for i, j in matches if detections[j]["digit"] == truth[i].digit}


def run(args) -> dict:
    from scratchcnn.cli import CLIError

    if not args.model.exists():
        raise CLIError(f"{args.model}: no such model (train one: python -m scratchcnn.train)")
    if args.before_model is not None and not args.before_model.exists():
        raise CLIError(f"--before-model {args.before_model}: no such model")
    cases = build_cases(args.data_dir, args.seed)
    results = {
        "benchmark": "reader_cases",
        "model": str(args.model),
        "seed": args.seed,
        "readers": {},
        "cases": list(cases),
    }
    with tempfile.TemporaryDirectory() as tmp:
        folder = args.keep or Path(tmp) / "cases"
        paths = {}
        for name, case in cases.items():
            (folder / name).mkdir(parents=True, exist_ok=True)
            paths[name] = []
            for i, item in enumerate(case):
                path = folder / name / f"{i:03d}.png"
                cv2.imwrite(str(path), item["image"])
                paths[name].append(path)
            truth = [{k: v for k, v in item.items() if k != "image"} for item in case]
            (folder / name / "truth.json").write_text(json.dumps(truth))
        readers = {}  # label -> (source folder, model file)
        model = args.model.resolve()
        if not args.no_before:
            before_model = (args.before_model or args.model).resolve()
            source = unpack_commit(args.before, Path(tmp) / "before")
            readers[f"before ({args.before})"] = (source, before_model)
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=REPO_ROOT, capture_output=True, text=True
        ).stdout.strip()
        readers[f"after ({head or 'this checkout'})"] = (REPO_ROOT, model)
        results["models"] = {label: str(path) for label, (_, path) in readers.items()}
        for label, (source, model) in readers.items():
            rows, seconds = {}, 0.0
            for name, case in cases.items():
                lines, took = read_with(source, model, paths[name], rotate=name == "sideways")
                seconds += took
                rows[name] = score(case, lines)
                print(f"{label:>24} {name:>10}: {rows[name]}", flush=True)
            results["readers"][label] = {"cases": rows, "seconds": round(seconds, 1)}
    return results


def table(results: dict) -> str:
    labels = list(results["readers"])
    models = results.get("models", {})
    if len(set(models.values())) > 1:
        model = "; ".join(f"{label} reads with {path}" for label, path in models.items())
    else:
        model = f"model {results['model']}"
    head = f"{'case':>10} {'digits':>6}  " + "  ".join(f"{label[:26]:>26}" for label in labels)
    lines = [
        f"digits read end to end (found) [spurious per 100 digits], {model}",
        head,
        "-" * len(head),
    ]
    for name in results["cases"]:
        first = results["readers"][labels[0]]["cases"][name]
        cells = []
        for label in labels:
            r = results["readers"][label]["cases"][name]
            cell = f"{r['read_pct']:5.1f}% ({r['found_pct']:5.1f}%) [{r['spurious_per_100']:.1f}]"
            cells.append(f"{cell:>26}")
        lines.append(f"{name:>10} {first['digits']:>6}  " + "  ".join(cells))
    for name in ("touching", "meeting", "narrow"):
        for label in labels:
            pairs = results["readers"][label]["cases"].get(name, {}).get("pairs_read_pct")
            if pairs is not None:
                lines.append(f"{name} pairs read as two correct digits, {label}: {pairs}%")
    return "\n".join(lines)


def main(argv=None) -> int:
    from scratchcnn.cli import run_cli

    args = parse_args(argv)

    def go() -> int:
        results = run(args)
        print(table(results))
        if args.json:
            args.json.write_text(json.dumps(results, indent=2) + "\n")
            args.json.with_suffix(".md").write_text("```\n" + table(results) + "\n```\n")
            print(f"wrote {args.json} and {args.json.with_suffix('.md')}")
        return 0

    return run_cli("reader_cases.py", go)


if __name__ == "__main__":
    sys.exit(main())
