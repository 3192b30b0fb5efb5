"""``python -m scratchcnn.score TRUTH.json DETECTIONS.jsonl``: how well a reader did on a
rendered video (or set of images) whose ground truth is known.

``TRUTH.json`` is what ``python -m scratchcnn.synthetic`` writes beside its video; the
detections are the JSON lines ``examples/webcam.py --headless`` (``"frame"``) or
``python -m scratchcnn.predict`` (``"file"``, matched to the truth's frames in order) printed.
A digit is *found* when a sure detection (not flagged unsure) overlaps its box with an
intersection over union of at least 0.5 (``--min-iou``), *read* when that detection also gives
its digit; detections that match no digit are *spurious*. Prints one line (``--json PATH``
writes the numbers).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from scratchcnn.cli import EXIT_INTERRUPTED, CLIError, run_cli
from scratchcnn.reader.synthetic import MatchCounts, TruthDigit

PROG = "python -m scratchcnn.score"


def load_truth(path: Path) -> list[list[TruthDigit]]:
    """Every frame's truth from a ``scratchcnn-truth`` JSON file; :class:`CLIError` naming the
    file when it is not one."""
    try:
        document = json.loads(Path(path).read_text())
        if document.get("format") != "scratchcnn-truth":
            raise ValueError("not a scratchcnn-truth file")
        return [
            [TruthDigit(int(d["digit"]), tuple(int(v) for v in d["box"]), -1) for d in f["digits"]]
            for f in document["frames"]
        ]
    except FileNotFoundError as err:
        raise CLIError(f"{path}: no such file") from err
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as err:
        raise CLIError(
            f"{path}: not a ground-truth file of python -m scratchcnn.synthetic ({err})"
        ) from err


def load_detections(path: Path) -> list[dict]:
    """The JSON lines a reader printed (``-`` for standard input), in order."""
    try:
        text = sys.stdin.read() if str(path) == "-" else Path(path).read_text()
    except FileNotFoundError as err:
        raise CLIError(f"{path}: no such file") from err
    lines = []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
            if not isinstance(record.get("detections"), list):
                raise ValueError("no detections list")
        except (ValueError, AttributeError) as err:
            raise CLIError(f"{path}, line {number}: not a reader's JSON line ({err})") from err
        lines.append(record)
    return lines


def score(truths: list[list[TruthDigit]], lines: list[dict], min_iou: float = 0.5) -> dict:
    """The counts over every frame both sides have (``frame`` numbers when the lines carry them,
    else the lines' order)."""
    counts = MatchCounts()
    frames = 0
    for position, line in enumerate(lines):
        index = line.get("frame", position)
        if not isinstance(index, int) or not 0 <= index < len(truths):
            continue
        sure = [d for d in line["detections"] if not d.get("unsure", False)]
        counts.add(truths[index], sure, min_iou)
        frames += 1
    return {
        "frames": frames,
        "digits": counts.truths,
        "found": counts.matched,
        "read": counts.correct,
        "spurious": counts.false_positives,
        "found_rate": round(counts.matched / max(counts.truths, 1), 4),
        "read_rate": round(counts.correct / max(counts.truths, 1), 4),
        "read_of_found": round(counts.correct / max(counts.matched, 1), 4),
    }


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog=PROG, description=__doc__.split("\n\n")[0].replace("``", ""))
    p.add_argument("truth", type=Path, help="TRUTH.json written by python -m scratchcnn.synthetic")
    p.add_argument("detections", type=Path, help="the reader's JSON lines (- for stdin)")
    p.add_argument("--min-iou", type=float, default=0.5, help="box overlap to match (0.5)")
    p.add_argument("--json", type=Path, help="write the numbers here as JSON")

    def run() -> int:
        if not 0 < args.min_iou <= 1:
            raise CLIError(f"--min-iou must be in (0, 1], got {args.min_iou}")
        truths = load_truth(args.truth)
        result = score(truths, load_detections(args.detections), args.min_iou)
        if result["frames"] < len(truths):
            print(
                f"{PROG}: warning: {result['frames']} of {len(truths)} frames have detections",
                file=sys.stderr,
            )
        print(
            f"{result['frames']} frames, {result['digits']} digits: found {result['found']} "
            f"({result['found_rate']:.1%}), read {result['read']} end to end "
            f"({result['read_rate']:.1%}; {result['read_of_found']:.1%} of those found), "
            f"{result['spurious']} spurious detections"
        )
        if args.json:
            args.json.write_text(json.dumps(result, indent=2) + "\n")
        return 0

    try:
        args = p.parse_args(argv)
        return run_cli(PROG, run)
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())
