"""Segmentation by recognition: where a candidate too wide for one digit can be cut into two
(paths through the least ink, cuts through one contact, its separate pieces), and how convincing
a reading of the parts is against a reading of the whole.

The network reads two touching digits as one digit, and half a digit as a digit, about as surely
as it reads one digit; so every reading is weighed by how plausible its box is for the digit read
(MNIST's widths per digit), a split's parts by how nearly each is as tall as the whole, and a cut
by the strokes it crosses. :meth:`scratchcnn.reader.vision.DigitReader._segment` runs the loop:
it reads the parts these functions make in one batch and keeps the split that beats the whole.

Inks are float32 (h, w) darkness in [0, 1] (0 = paper), boxes ``(x, y, w, h)`` in frame pixels.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np

from scratchcnn.reader.boxes import Box


@dataclass
class Candidate:
    """A digit candidate while it is read: its box, its ink (float32 (h, w) in [0, 1], 0 = paper)
    and the pen's stroke width, the contours it came from, its crop and the network's answer."""

    box: Box
    ink: np.ndarray
    stroke: float
    contours: list = field(default_factory=list)
    crop: np.ndarray | None = None
    probabilities: np.ndarray | None = None
    depth: int = 0

    @property
    def confidence(self) -> float:
        return float(self.probabilities.max())


# Width / height of MNIST's training digits (ink above 90 of 255), per class: the 90th and 99th
# percentiles. A box much wider than its digit usually is holds more than one digit.
ASPECT_PERCENTILES = {
    0: (1.11, 1.43),
    1: (0.70, 0.95),
    2: (1.25, 1.67),
    3: (1.00, 1.25),
    4: (1.00, 1.25),
    5: (1.25, 1.67),
    6: (0.95, 1.17),
    7: (1.00, 1.25),
    8: (1.00, 1.25),
    9: (0.85, 1.05),
}


# Segmentation by recognition weighs every reading (of a whole candidate, of a part of it) by
# how plausible its box is for the digit read. The network reads halves of one digit surely, and
# two touching digits as one digit just as surely: its confidence alone cannot choose.
MIN_SPLIT_HEIGHT = 20  # pixels: shorter candidates are read whole (MNIST's digits are 20 tall)
NARROW = 0.75  # width / height: a candidate narrower than this (a "1" touching a "7") looks like
# one digit, so it is tried in parts only when the network doubts it as one:
SURE_WHOLE = 0.99  # ... read at this or more, a narrow candidate is one digit (the frame rate)
MIN_SPLIT_SCORE = 0.3  # a split needs two readings about as sure as a detection (0.55 each):
# the network, trained to doubt two touching digits (scratchcnn.training.touching), reads such a
# whole at 0.1-0.3, so its confidence alone is too low a bar
KEEPS_READING_TO_BEAT = 0.84  # what a split whose part reads the whole's digit must score: two
# sure readings across one stroke (0.92 each), or nearly certain ones across two (0.995 each)
CONTACT_FACTOR = 0.95  # a cut through one contact weighs a little less than a clean one (at 1.0
# it won over better cuts as often as it helped)
MIN_PLAUSIBILITY = 0.05  # a box far wider than its digit ever is: nearly no evidence left
CROSSING_FACTOR = 0.85  # a cut's parts weigh this much less for every stroke past the first
MIN_PART_HEIGHT = 0.7  # a part of a split shorter than this fraction of the whole is a scrap
FULL_HEIGHT = 0.9  # digits of a row are about as tall as each other: a part this tall is whole
SHORT_WEIGHT = 0.5  # ... and one MIN_PART_HEIGHT as tall (the shortest kept) weighs half as much


def shape_plausibility(box: Box, digit: int) -> float:
    """1 for a box no wider (relative to its height) than 90% of MNIST's ``digit``s, falling
    linearly, 0.25 for every step from their 90th to their 99th percentile, down to
    ``MIN_PLAUSIBILITY``: a digit written a little wide, or rotated, is still one digit; one
    several steps wider than MNIST's widest is two."""
    p90, p99 = ASPECT_PERCENTILES[digit]
    aspect = box[2] / float(max(box[3], 1))
    return min(1.0, max(MIN_PLAUSIBILITY, 1.0 - 0.25 * (aspect - p90) / (p99 - p90)))


def height_weight(height: int, whole_height: int) -> float:
    """1 for a part at least ``FULL_HEIGHT`` of its whole's height, falling linearly to
    ``SHORT_WEIGHT`` at ``MIN_PART_HEIGHT`` (the shortest part a split keeps): two touching
    digits of one row are both about as tall as the box holding them, while a cut through one
    digit often leaves a shorter piece (the arc of a 0, the stem of a 4)."""
    ratio = height / float(max(whole_height, 1))
    fall = (FULL_HEIGHT - ratio) / (FULL_HEIGHT - MIN_PART_HEIGHT)
    return min(1.0, max(SHORT_WEIGHT, 1.0 - (1.0 - SHORT_WEIGHT) * fall))


def parts_score(parts: list[Candidate], whole: Candidate) -> float:
    """How convincing a reading of ``whole`` as ``parts`` is, in [0, 1]: the product of the
    parts' confidences, each weighed by its box's plausibility for the digit it reads and by
    its height (:func:`height_weight`). A product, not the least of them: two parts read at
    0.8 are less sure than one."""
    score = 1.0
    for part in parts:
        digit = int(part.probabilities.argmax())
        plausible = shape_plausibility(part.box, digit) * height_weight(part.box[3], whole.box[3])
        score *= part.confidence * plausible
    return score


def score_bound(boxes: list[Box], whole_height: int) -> float:
    """The most :func:`parts_score` can give parts with these ``boxes``, whatever the network
    reads them as: known before reading them (each box at its most plausible digit, its
    height against the whole's)."""
    bound = 1.0
    for box in boxes:
        widest = max(shape_plausibility(box, digit) for digit in ASPECT_PERCENTILES)
        bound *= widest * height_weight(box[3], whole_height)
    return bound


def to_beat(cand: Candidate) -> float:
    """The score a split of ``cand`` must exceed (:func:`parts_score` times a factor for
    crossed strokes): the whole's confidence weighed by how plausible its box is for the digit
    it reads, never less than ``MIN_SPLIT_SCORE``."""
    whole = cand.confidence * shape_plausibility(cand.box, int(cand.probabilities.argmax()))
    return max(whole, MIN_SPLIT_SCORE)


def split_to_beat(whole_to_beat: float, digit: int, parts: list[Candidate]) -> float:
    """The score a split into ``parts`` of a whole read as ``digit`` must exceed: the whole's
    ``whole_to_beat`` (:func:`to_beat`), or at most ``KEEPS_READING_TO_BEAT`` when a part reads that
    same digit. The network reads a "1" leaning on an "8" as that "8", surely; cut apart, the "8"
    is still read, and a "1" more. The whole's confidence is then no evidence against the split,
    which needs two sure readings instead."""
    if any(int(part.probabilities.argmax()) == digit for part in parts):
        return min(whole_to_beat, KEEPS_READING_TO_BEAT)
    return whole_to_beat


def balanced(parts: list[Candidate], whole: Candidate) -> bool:
    """Does every part hold at least 15% of the whole's ink (a digit, not a sliver of one)?"""
    total = float(whole.ink.sum())
    return all(float(p.ink.sum()) >= 0.15 * total for p in parts)


def split_hypotheses(
    cand: Candidate, paths: list[np.ndarray], lowest: float
) -> list[tuple[list[Candidate], float]]:
    """Ways to read an over-wide candidate as two digits that could score above ``lowest``
    (:func:`score_bound`, from the parts' boxes, before the network reads them): ``(parts,
    factor)`` for cuts along its ``paths`` (:func:`cut_paths`), for cuts through one of the
    strokes such a path crosses that part the ink alone (:func:`contact_cuts`), and for
    separating its pieces (a digit-sized shape merged with its neighbour). ``factor`` (at
    most 1) weighs the parts' readings down for a cut that crosses several strokes."""
    x, y, w, h = cand.box
    hypotheses, splits = [], []
    strokes = cand.ink > 0.25
    columns = np.arange(w)[None, :]
    for path in paths:
        # Touching digits meet at one place; a cut through one digit crosses two or more
        # strokes (the top and bottom of a 0, a 2's arc and its base).
        runs = len(crossings(strokes, path)[0])
        left = np.where(columns < path[:, None], cand.ink, 0.0).astype(np.float32)
        right = np.where(columns >= path[:, None], cand.ink, 0.0).astype(np.float32)
        splits.append(((left, right), CROSSING_FACTOR ** max(0, runs - 1)))
    for pieces in contact_cuts(strokes, paths):
        boxes = [cv2.boundingRect(piece.view(np.uint8)) for piece in pieces]
        if CONTACT_FACTOR * score_bound(boxes, h) > lowest:
            splits.append((piece_inks(cand.ink, pieces), CONTACT_FACTOR))
    for inks, factor in splits:
        parts = [part_of(cand, ink) for ink in inks]
        if all(p is not None for p in parts) and balanced(parts, cand):
            hypotheses.append((parts, factor))
    if 2 <= len(cand.contours) <= 4:  # pieces: one apart from the rest
        for cnt in cand.contours:
            bx, by, bw, bh = cv2.boundingRect(cnt)
            if bh < 0.3 * h or bw < 0.2 * h:
                continue
            mine = np.zeros((h, w), np.uint8)
            cv2.drawContours(mine, [cnt], -1, 255, cv2.FILLED, offset=(-x, -y))
            mine = cv2.dilate(mine, np.ones((3, 3), np.uint8)) > 0
            parts = [
                part_of(cand, np.where(mine, cand.ink, 0.0).astype(np.float32)),
                part_of(cand, np.where(mine, 0.0, cand.ink).astype(np.float32)),
            ]
            if all(p is not None for p in parts) and balanced(parts, cand):
                parts.sort(key=lambda p: p.box[0])
                hypotheses.append((parts, 1.0))
    return [
        (parts, factor)
        for parts, factor in hypotheses
        if factor * score_bound([p.box for p in parts], h) > lowest
    ]


def part_of(cand: Candidate, ink: np.ndarray) -> Candidate | None:
    """The part of ``cand`` whose ink is ``ink`` (same shape, zeros elsewhere), cropped to
    its ink; None when it is too small to be a digit of its own."""
    x, y, w, h = cand.box
    ys, xs = np.nonzero(ink > 0.25)
    if len(ys) < 4:
        return None
    y0, y1, x0, x1 = ys.min(), ys.max() + 1, xs.min(), xs.max() + 1
    if y1 - y0 < MIN_PART_HEIGHT * h or x1 - x0 < 2:
        return None
    part = np.ascontiguousarray(ink[y0:y1, x0:x1])
    box = (x + int(x0), y + int(y0), int(x1 - x0), int(y1 - y0))
    return Candidate(box, part, cand.stroke, depth=cand.depth + 1)


def cut_paths(ink: np.ndarray) -> list[np.ndarray]:
    """Top-to-bottom paths (one column per row, int (h,)) through ``ink`` (h, w) that cross as
    little ink as possible near evenly spaced columns, each side keeping at least 0.12 of the
    height (a narrow "1"): where two touching digits can be cut apart.

    From each of up to 12 starting columns, a path may wander 0.15 of the height sideways;
    dynamic programming over the rows finds the cheapest (a cell's cost is its ink, plus a little
    for every step and for straying from the start), for all starting columns at once. Identical
    paths are given once.
    """
    return cut_paths_many([ink])[0]


def cut_paths_many(inks: list[np.ndarray]) -> list[list[np.ndarray]]:
    """:func:`cut_paths` of each of ``inks``, all in one pass of the dynamic programming: its
    loop over the rows is the cost, and one frame's candidates share it."""
    bands, columns, ends = [], [], []
    for ink in inks:
        h, w = ink.shape
        margin = max(2, int(0.12 * h))  # a "1" is about this wide
        lo, hi = margin, w - margin
        radius = max(2, int(0.15 * h))
        if hi <= lo:
            seeds = np.zeros(0, np.int64)
        else:
            count = int(np.clip(round((hi - lo) / max(2.0, 0.1 * h)), 1, 12))
            seeds = np.unique(np.linspace(lo, hi - 1, count).round().astype(np.int64))
        offsets = np.arange(-radius, radius + 1)
        cols = seeds[:, None] + offsets[None, :]  # (S, K)
        band = np.transpose(ink[:, np.clip(cols, 0, w - 1)], (1, 0, 2))  # (S, h, K)
        band = band + np.float32(0.02) + np.float32(0.01) * np.abs(offsets) / radius
        inside = (cols >= lo) & (cols < hi)
        bands.append(np.where(inside[:, None, :], band, np.float32(np.inf)).astype(np.float32))
        columns.append(cols)
        ends.append(np.full(len(seeds), h))
    # Every ink's starting columns side by side, padded to the tallest and widest band with
    # cells that cost inf (never on a path).
    n_seeds = sum(len(c) for c in columns)
    h_max = max((b.shape[1] for b in bands), default=1)
    k = max((c.shape[1] for c in columns), default=1)
    band = np.full((n_seeds, h_max, k), np.inf, np.float32)
    column = np.zeros((n_seeds, k), np.int64)
    start = 0
    for b, c in zip(bands, columns, strict=True):
        band[start : start + len(c), : b.shape[1], : b.shape[2]] = b
        column[start : start + len(c), : c.shape[1]] = c
        start += len(c)
    end = np.concatenate(ends).astype(np.int64) if ends else np.zeros(0, np.int64)
    step = np.float32(0.01)
    # costs[r, s, 1 + j]: the cheapest way down to row r ending at offset j of starting column
    # s; the two edge columns stay inf (nothing arrives from outside the band).
    costs = np.full((h_max, n_seeds, k + 2), np.inf, np.float32)
    costs[0, :, 1:-1] = band[:, 0]
    for r in range(1, h_max):
        above, here = costs[r - 1], costs[r, :, 1:-1]
        np.minimum(above[:, :-2], above[:, 2:], out=here)  # from the left or right neighbour
        here += step
        np.minimum(here, above[:, 1:-1], out=here)  # or straight on
        here += band[:, r]
    # Each row's move, all rows at once. Ties go left, then straight on.
    above = costs[:-1]
    left, straight, right = above[..., :-2] + step, above[..., 1:-1], above[..., 2:] + step
    best = np.minimum(np.minimum(left, straight), right)
    moves = np.zeros((h_max, n_seeds, k), np.int8)
    moves[1:] = np.where(left == best, -1, np.where(straight == best, 0, 1))
    # Back up from each ink's own last row.
    seed = np.arange(n_seeds)
    last = costs[end - 1, seed, 1:-1]  # (S, K)
    position = last.argmin(axis=1)
    ok = np.isfinite(last[seed, position])
    paths = np.zeros((n_seeds, h_max), np.int64)
    for r in range(h_max - 1, -1, -1):
        on = r < end
        paths[on, r] = column[seed[on], position[on]]
        position[on] += moves[r, seed[on], position[on]]
    found, start = [], 0
    for c, h in zip(columns, (b.shape[1] for b in bands), strict=True):
        unique, seen = [], set()
        for s in range(start, start + len(c)):
            key = paths[s, :h].tobytes()
            if ok[s] and key not in seen:
                seen.add(key)
                unique.append(paths[s, :h].copy())
        found.append(unique)
        start += len(c)
    return found


def crossings(strokes: np.ndarray, path: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The strokes (bool (h, w)) ``path`` (int (h,), a column per row) crosses: the rows where
    each crossing starts and where it ends (exclusive), int arrays of one length."""
    on = np.zeros(len(path) + 2, bool)  # a row of paper above and below
    on[1:-1] = strokes[np.arange(len(path)), path]
    return np.flatnonzero(on[1:-1] & ~on[:-2]), np.flatnonzero(on[1:-1] & ~on[2:]) + 1


def contact_cuts(
    strokes: np.ndarray, paths: list[np.ndarray]
) -> list[tuple[np.ndarray, np.ndarray]]:
    """Splits of the ``strokes`` (bool (h, w)) that cut only one of the strokes a path (int
    (h,), a column per row) of ``paths`` crosses, where it crosses two or more, as (left pieces,
    right pieces) bool masks: those where that one cut alone parts the strokes into two pieces
    of at least 15% each.

    There the digits touch, and the strokes crossing the path elsewhere stay whole with their
    own digit (the loop of a "9" reaching over the foot of the "1" beside it), where the path's
    own split would cut them off. Smaller pieces go with the nearer of the two. A crossing
    shared by several paths is cut once.
    """
    rows = np.arange(strokes.shape[0])
    total = np.count_nonzero(strokes)
    seen, splits = set(), []
    for path in paths:
        starts, ends = crossings(strokes, path)
        if len(starts) < 2:
            continue  # one crossing: the path's own split is the same
        for r0, r1 in zip(starts, ends, strict=True):
            key = (r0, path[r0:r1].tobytes())
            if key in seen:
                continue
            seen.add(key)
            cut = strokes.copy()
            cut[rows[r0:r1], path[r0:r1]] = False
            # 4-connected: a path stepping diagonally leaves no gap a piece could slip through.
            n, labels, stats, centers = cv2.connectedComponentsWithStats(
                cut.view(np.uint8), connectivity=4
            )
            if n < 3:
                continue
            a, b = np.argsort(stats[1:, cv2.CC_STAT_AREA])[::-1][:2] + 1
            if stats[b, cv2.CC_STAT_AREA] < 0.15 * total:
                continue
            if centers[a, 0] > centers[b, 0]:
                a, b = b, a
            nearer = np.abs(centers[:, 0] - centers[a, 0]) <= np.abs(centers[:, 0] - centers[b, 0])
            with_left, with_right = nearer.copy(), ~nearer
            with_left[0] = with_right[0] = False
            splits.append((with_left[labels], with_right[labels]))
    return splits


def piece_inks(ink: np.ndarray, pieces: tuple[np.ndarray, np.ndarray]) -> tuple[np.ndarray, ...]:
    """The ink (float32 (h, w)) of each of two pieces (bool masks of their strokes), with the
    soft edges of their strokes (ink below the stroke threshold) and the pixels of the cut
    between them."""
    grow = np.ones((3, 3), np.uint8)
    left, right = pieces
    left_zone = cv2.dilate(left.view(np.uint8), grow).view(bool) & ~right
    right_zone = cv2.dilate(right.view(np.uint8), grow).view(bool) & ~left
    return (
        np.where(left_zone, ink, 0.0).astype(np.float32),
        np.where(right_zone, ink, 0.0).astype(np.float32),
    )
