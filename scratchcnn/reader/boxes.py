"""Step 3's geometry: boxes ``(x, y, w, h)`` (pixels, (x, y) the top-left corner) — which pieces
of ink belong to one digit, reading order (rows top to bottom, left to right), and boxes under
quarter turns of the image."""

from __future__ import annotations

import numpy as np

Box = tuple[int, int, int, int]


def union_box(a: Box, b: Box) -> Box:
    x0, y0 = min(a[0], b[0]), min(a[1], b[1])
    x1, y1 = max(a[0] + a[2], b[0] + b[2]), max(a[1] + a[3], b[1] + b[3])
    return (x0, y0, x1 - x0, y1 - y0)


def edges_touched(box: Box, size: tuple[int, int]) -> int:
    """How many of the four edges of an image ``size`` (width, height) ``box`` touches: 0 for a
    box inside it, 1-2 for a digit cut off (or cropped from a page), 4 for one filling it."""
    x, y, w, h = box
    return (x <= 0) + (y <= 0) + (x + w >= size[0]) + (y + h >= size[1])


def _belong_together(a: Box, b: Box, merge_gap: float) -> bool:
    """Are two pieces parts of one digit?

    Pieces that overlap vertically join when they also overlap horizontally by half the narrower
    one, or when the smaller is a *fragment* (at most 0.4 of the other's height: the detached
    bar of a 5, a dot). Pieces one above the other join across a hairline gap (a stroke cut in
    two), or a fragment across a gap of up to ``merge_gap`` of the taller one's height. Two rows
    of digits, or neighbours in a row, stay apart.
    """
    tall, short = max(a[3], b[3]), min(a[3], b[3])
    overlap = min(a[0] + a[2], b[0] + b[2]) - max(a[0], b[0])
    if overlap <= 0:
        return False
    gap = max(a[1], b[1]) - min(a[1] + a[3], b[1] + b[3])  # negative when they overlap
    narrow_overlap = overlap >= 0.5 * min(a[2], b[2])
    fragment = short <= 0.4 * tall
    if gap <= 0:
        return narrow_overlap or fragment
    if not narrow_overlap:
        return False
    if gap <= 0.1 * tall and short > 0.4 * tall:  # a stroke cut by a hairline
        return True
    if not fragment or gap > merge_gap * tall:
        return False
    merged = union_box(a, b)
    return merged[3] <= 1.5 * tall and merged[2] <= 1.6 * merged[3]


def merge_pieces(boxes: list[Box], merge_gap: float = 0.15) -> list[list[int]]:
    """Group indices of ``boxes`` that are pieces of one digit; returns the groups (lists of
    indices into ``boxes``), each group's members sorted. Repeats until no two groups join."""
    groups = [[i] for i in range(len(boxes))]
    merged_boxes = list(boxes)
    changed = True
    while changed:
        changed = False
        order = sorted(range(len(groups)), key=lambda g: -merged_boxes[g][3])  # tall ones first
        for ii, gi in enumerate(order):
            if not groups[gi]:
                continue
            for gj in order[ii + 1 :]:
                if groups[gj] and _belong_together(merged_boxes[gi], merged_boxes[gj], merge_gap):
                    groups[gi] += groups[gj]
                    groups[gj] = []
                    merged_boxes[gi] = union_box(merged_boxes[gi], merged_boxes[gj])
                    changed = True
        keep = [g for g in range(len(groups)) if groups[g]]
        groups = [groups[g] for g in keep]
        merged_boxes = [merged_boxes[g] for g in keep]
    return [sorted(g) for g in groups]


def median(values: list[float]) -> float:
    ordered = sorted(values)
    mid = len(ordered) // 2
    return ordered[mid] if len(ordered) % 2 else 0.5 * (ordered[mid - 1] + ordered[mid])


def joins_row(box: Box, row: list[Box]) -> bool:
    """Does ``box`` belong to ``row``? Its vertical center must lie within half the row's median
    height (or half its own height, if larger) of the row's mean center."""
    cy = box[1] + box[3] / 2
    row_cy = sum(b[1] + b[3] / 2 for b in row) / len(row)
    row_h = median([b[3] for b in row])
    return abs(cy - row_cy) <= 0.5 * max(row_h, box[3] * 0.5)


def reading_order(boxes: list[Box]) -> list[int]:
    """Indices of ``boxes`` in reading order: rows from top to bottom, left to right in a row.

    Boxes are taken by their vertical center; one joins the current row when its center lies
    within half the row's median height of the row's mean center (so rows may tilt or wobble a
    little), otherwise it starts the next row. Within a row, boxes go by their left edge.
    """
    by_center = sorted(range(len(boxes)), key=lambda i: boxes[i][1] + boxes[i][3] / 2)
    rows: list[list[int]] = []
    for i in by_center:
        if rows and joins_row(boxes[i], [boxes[j] for j in rows[-1]]):
            rows[-1].append(i)
        else:
            rows.append([i])
    return [i for row in rows for i in sorted(row, key=lambda j: (boxes[j][0], boxes[j][1]))]


def rows_of_boxes(items: list) -> list[list]:
    """Split ``(anything, box)`` pairs, already in reading order, into their rows."""
    rows: list[list] = []
    for item in items:
        box = item[1]
        if rows and box[0] >= rows[-1][-1][1][0] and joins_row(box, [b for _, b in rows[-1]]):
            rows[-1].append(item)
        else:
            rows.append([item])
    return rows


def quarter_turn_points(points: np.ndarray, size: tuple[int, int], turns: int) -> np.ndarray:
    """Coordinates ``points`` (K, 2) (x, y) in an image of ``size`` (width, height), after the
    image is turned by ``np.rot90(image, turns)`` (counterclockwise quarter turns)."""
    w, h = size
    points = np.asarray(points, dtype=np.float64)
    x, y = points[:, 0], points[:, 1]
    turns %= 4
    if turns == 1:
        return np.stack([y, w - x], axis=1)
    if turns == 2:
        return np.stack([w - x, h - y], axis=1)
    if turns == 3:
        return np.stack([h - y, x], axis=1)
    return points


def turn_box(box: Box, size: tuple[int, int], turns: int) -> Box:
    """``box`` of an image of ``size`` (width, height) in the image ``np.rot90(image, turns)``."""
    x, y, w, h = box
    corners = quarter_turn_points(np.float64([[x, y], [x + w, y + h]]), size, turns)
    (x0, y0), (x1, y1) = corners.min(axis=0), corners.max(axis=0)
    return (int(round(x0)), int(round(y0)), int(round(x1 - x0)), int(round(y1 - y0)))
