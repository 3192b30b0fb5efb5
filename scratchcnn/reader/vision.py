"""Frame -> digit crops normalized the way MNIST was made -> one batched prediction -> detections.

No windows and no camera here: :class:`DigitReader` takes one image (a camera frame, a video frame
or a photo; BGR or grayscale uint8, any size) and returns what it read
(:mod:`scratchcnn.reader.results`), plus the intermediate images a debug view shows. This module
holds the reader and its decisions; the image operations of steps 1-2 are in
:mod:`~scratchcnn.reader.ink`, step 3's box geometry in :mod:`~scratchcnn.reader.boxes`, step 4 in
:mod:`~scratchcnn.reader.normalize`, step 6's cuts and scores in :mod:`~scratchcnn.reader.segment`.
The steps:

1. **Grayscale**, then **background normalization**: the paper's brightness is estimated by a
   grayscale closing (which erases dark strokes narrower than its kernel) on a small copy of the
   frame, and every pixel becomes its *relative ink darkness* ``(paper - pixel) / paper``. Uneven
   light, gradients and vignetting divide out.
2. **Threshold**: Otsu's threshold on the darkness image, never below ``min_contrast`` nor below
   what the frame's noise allows (so blank paper with sensor noise has no ink at all), with
   hysteresis: fainter pixels count when they touch strong ones, so a light stretch of a stroke
   does not cut a digit in two. A 3x3 median filter and a small closing clean the mask.
3. **Candidates**: outer contours, also those inside another shape's hole (the dark desk around
   the sheet, a drawn frame); pieces that cannot be part of a digit (specks, oversize shapes,
   frames holding other pieces, anything cut by the frame's edge) are dropped; pieces of one digit
   (a ``5`` whose bar is detached, a stroke cut by a hairline) are merged; boxes are filtered by
   height (at least ``min_height``, and ``min_height_fraction`` of their row's median: the
   smallest digit follows the sheet), aspect ratio and ink density. Every candidate not read is
   kept with its reason, for the debug view. The candidates are also looked for as digits that
   may fill the image (a cropped digit or number, its strokes maybe thicker than the paper
   estimate's kernel, its ink maybe most of the pixels); when such candidates, each at least half
   the image's height, hold everything else found, they are read too, and kept when each is
   sure, or holds nothing else found, or only pieces of it (a thick digit broken apart), or is
   surer than what it holds.
4. **MNIST normalization** of each candidate: its soft darkness (not the hard mask) inside its own
   contours, stretched so the stroke's core is 1.0, fine-pen strokes thickened to MNIST's width,
   fitted into 20x20 keeping its aspect ratio (area interpolation, as MNIST's anti-aliasing),
   padded to 28x28 and shifted so its center of mass is at the center; optionally deskewed.
   Light strokes on black, float32 in [0, 1]: the model's training input.
5. **One** ``model.predict_proba`` call for all crops of the frame.
6. **Segmentation by recognition**: a candidate too wide for one digit is also cut along the
   paths through its ink that cross the fewest strokes; the parts go through the network in a
   second batch, and the split is kept when they read better than the whole (each reading
   weighed by how plausible its box's width is for the digit read, each part by how nearly it
   is as tall as the whole) and about as surely as a detection must be. A network trained with
   touching pairs as no digit (the default training) reads such a whole unsurely.
7. Detections in **reading order**: rows from top to bottom, left to right within a row; those
   below ``min_confidence`` are kept as *unsure*; the frame's text groups a row's digits by their
   spacing. With ``rotate`` the frame is turned first (``"auto"``: all four turns, the most
   convincing reading wins).

Coordinates are pixels of the input frame; boxes are ``(x, y, w, h)`` with (x, y) the top-left
corner.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import cv2
import numpy as np

from scratchcnn.nn.kernels import limit_threads
from scratchcnn.reader import segment
from scratchcnn.reader.boxes import (
    Box,
    edges_touched,
    joins_row,
    median,
    merge_pieces,
    reading_order,
    turn_box,
    union_box,
)
from scratchcnn.reader.ink import (
    darker_around,
    ink_darkness,
    ink_mask,
    noise_level,
    paper_brightness,
    to_gray,
)
from scratchcnn.reader.normalize import normalize_digit, stroke_width
from scratchcnn.reader.results import Detection, FrameResult, empty_result

ROTATIONS = (0, 90, 180, 270)  # clockwise turns DigitReader(rotate=...) applies before reading
MAX_PIXELS = 50_000_000  # default largest image the reader takes (a 50-megapixel photo)
# A candidate with more of the pixels around its ink darker than the ink itself is the edge of a
# darker region (the desk beyond a page's blurred edge: 0.54-0.56), not a stroke on paper (digits
# on the benchmark's sheets: 0.07 at most).
MAX_DARKER_AROUND = 0.25


def _is_number(value) -> bool:
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(
        value, (bool, np.bool_)
    )


@dataclass(frozen=True)
class ReaderConfig:
    """Tunable settings of :class:`DigitReader` (the defaults suit webcam frames, photos and
    scans alike).

    Sizes are in pixels of the input frame unless a name says *fraction*. Every value is checked
    when the config is made: a wrong type or a value out of range is a ``ValueError`` naming it.
    """

    min_height: int = 9  # candidates shorter than this are specks, whatever the sheet
    min_height_fraction: float = 0.4  # ... or shorter than this fraction of their row's median
    max_height_fraction: float = 0.9  # taller than this fraction of the frame: not a digit
    max_aspect: float = 2.5  # width / height above this, after splitting: a line, a smudge
    split: bool = True  # try over-wide candidates as several digits (segmentation by recognition)
    split_aspect: float = 0.4  # candidates wider than this (width / height) are tried in parts
    # (under segment.NARROW, 0.75, only when the network doubts them as one digit)
    max_split_aspect: float = 6.0  # wider than this: not even a row of touching digits
    lone_digit: bool = True  # also read the image as digits filling it (a cropped digit or number)
    min_density: float = 0.04  # ink pixels / box area below this: a thin ring or scribble
    max_blob_density: float = 0.8  # a box at least ~0.4 as wide as tall and denser: a blob
    min_contrast: float = 0.22  # ink must be at least this much darker than its paper (0..1)
    hysteresis: float = 0.6  # faint stroke parts down to this fraction of the threshold count
    min_paper: int = 24  # frames (or regions) darker than this gray level hold no paper
    paper_kernel_fraction: float = 0.08  # background kernel, as a fraction of the short side
    reject_border: bool = True  # drop candidates touching the frame's edge (cut-off digits)
    merge_gap: float = 0.15  # vertical gap (fraction of the taller piece) a fragment may cross
    deskew: bool = False  # straighten slanted digits with their second moments (MNIST was not)
    thicken: bool = True  # dilate strokes much thinner than MNIST's before fitting into 20x20
    min_confidence: float = 0.0  # detections below this probability are reported as unsure
    rotate: int | str = 0  # turn the frame clockwise by 0, 90, 180 or 270 degrees, or "auto"
    max_pixels: int = MAX_PIXELS  # larger frames are refused (ValueError), not read
    predict_threads: int | None = 1  # kernel threads for the crops' batch (None: sc.set_threads's)

    def __post_init__(self):
        ranges = {  # name: (low, high, low inclusive)
            "min_height": (1, None, True),
            "min_height_fraction": (0.0, 1.0, True),
            "max_height_fraction": (0.0, 1.0, False),
            "max_aspect": (0.0, None, False),
            "split_aspect": (0.0, None, False),
            "max_split_aspect": (0.0, None, False),
            "min_density": (0.0, 1.0, True),
            "max_blob_density": (0.0, 1.0, False),
            "min_contrast": (0.0, 1.0, True),
            "hysteresis": (0.0, 1.0, False),
            "min_paper": (0, 255, True),
            "paper_kernel_fraction": (0.0, 1.0, False),
            "merge_gap": (0.0, 1.0, True),
            "min_confidence": (0.0, 1.0, True),
            "max_pixels": (1, None, True),
        }
        integers = {"min_height", "min_paper", "max_pixels"}
        for name, (low, high, inclusive) in ranges.items():
            value = getattr(self, name)
            if not _is_number(value) or (name in integers and float(value) != int(value)):
                kind = "an integer" if name in integers else "a number"
                raise ValueError(f"DigitReader: {name} must be {kind}, got {value!r}")
            if not np.isfinite(value) or (value < low if inclusive else value <= low):
                raise ValueError(
                    f"DigitReader: {name} must be {'>=' if inclusive else '>'} {low}, got {value!r}"
                )
            if high is not None and value > high:
                raise ValueError(f"DigitReader: {name} must be <= {high}, got {value!r}")
        for name in ("split", "lone_digit", "reject_border", "deskew", "thicken"):
            if not isinstance(getattr(self, name), (bool, np.bool_)):
                raise ValueError(
                    f"DigitReader: {name} must be True or False, got {getattr(self, name)!r}"
                )
        if self.rotate != "auto" and (not _is_number(self.rotate) or self.rotate not in ROTATIONS):
            raise ValueError(
                f"DigitReader: rotate must be 0, 90, 180, 270 or 'auto', got {self.rotate!r}"
            )
        threads = self.predict_threads
        if threads is not None and (
            not _is_number(threads) or threads != int(threads) or threads < 1
        ):
            raise ValueError(
                f"DigitReader: predict_threads must be None or an integer >= 1, got {threads!r}"
            )


# -- the reader ---------------------------------------------------------------------------------
class DigitReader:
    """Reads every handwritten digit in a frame with one batched call of ``model`` (two when some
    candidates are too wide to be one digit and are tried in parts).

    ``model`` is anything with ``predict_proba(x)`` taking float32 (N, 1, 28, 28) in [0, 1]
    (white digit on black, like MNIST) and returning (N, 10) probabilities — a
    :class:`scratchcnn.Sequential`. ``config`` is a :class:`ReaderConfig`; keyword arguments
    override its fields, e.g. ``DigitReader(model, min_confidence=0.5, rotate="auto")``. A wrong
    option (unknown name, wrong type, out of range) is a ``ValueError`` naming it.
    """

    def __init__(self, model, config: ReaderConfig | None = None, **overrides):
        if not callable(getattr(model, "predict_proba", None)):
            raise ValueError(
                f"DigitReader: the model must have a predict_proba method (a scratchcnn "
                f"Sequential), got {type(model).__name__}"
            )
        if config is not None and not isinstance(config, ReaderConfig):
            raise ValueError(
                f"DigitReader: config must be a ReaderConfig, got {type(config).__name__}"
            )
        self.model = model
        config = config or ReaderConfig()
        if overrides:
            known = set(config.__dataclass_fields__)
            unknown = sorted(set(overrides) - known)
            if unknown:
                raise ValueError(
                    f"DigitReader: unknown option {unknown[0]!r}; options are {', '.join(sorted(known))}"
                )
            config = ReaderConfig(**{**config.__dict__, **overrides})
        self.config = config

    # -- step 3: candidates ---------------------------------------------------------------------
    def candidates(self, gray: np.ndarray) -> tuple[np.ndarray, np.ndarray, list[Box], list]:
        """From a gray frame (H, W) uint8: (darkness, mask, boxes, contour groups), boxes in
        reading order; each group is the list of contours that make one digit."""
        darkness, mask, boxes, groups, _ = self._find(gray, self.config)
        return darkness, mask, boxes, groups

    def _find(self, gray: np.ndarray, c: ReaderConfig, filled: bool = False):
        """:meth:`candidates`, plus the rejected candidates as ``(box, reason)``. ``filled``: the
        image may be one digit filling it, its ink most of the image (the noise is measured on
        the paper's side alone, :func:`noise_level`)."""
        h, w = gray.shape
        paper = paper_brightness(gray, c.paper_kernel_fraction)
        darkness, absolute = ink_darkness(gray, paper, c.min_paper)
        noise = noise_level(gray, paper, filled=filled)
        mask, strong = ink_mask(darkness, absolute, c.min_contrast, c.hysteresis, noise)
        rejected: list[tuple[Box, str]] = []
        # Outer boundaries, including those inside another shape's hole: a digit must not vanish
        # because something (the dark edge of the desk around the sheet, a drawn frame) rings it.
        contours, hierarchy = cv2.findContours(mask, cv2.RETR_CCOMP, cv2.CHAIN_APPROX_SIMPLE)
        if not contours:
            return darkness, mask, [], [], rejected
        links = hierarchy[0]
        # Before merging, drop pieces that cannot be (part of) a digit: a few pixels of noise,
        # faint smudges without strong ink, shapes too large (the dark desk around the sheet, a
        # shadow), with reject_border anything cut by the frame's edge, and frames: shapes whose
        # hole holds another piece (a digit's holes are empty). One such piece left in would
        # swallow every digit near it.
        tiny = max(2, c.min_height // 5)
        max_h = c.max_height_fraction * h
        wide = max(c.max_aspect, c.max_split_aspect if c.split else 0.0)
        pieces, holes = [], []
        for i, cnt in enumerate(contours):
            if links[i][3] >= 0:  # a hole: remember the big ones, with their owner
                hx, hy, hw, hh = cv2.boundingRect(cnt)
                if hh >= c.min_height and hw >= tiny:
                    holes.append((links[i][3], (hx, hy, hx + hw, hy + hh)))
                continue
            x, y, bw, bh = box = cv2.boundingRect(cnt)
            if max(bw, bh) < tiny:
                continue
            if bh > max_h or bw > wide * max_h:
                rejected.append((box, "too large"))
                continue
            if c.reject_border and edges_touched(box, (w, h)):
                if bh >= c.min_height:
                    rejected.append((box, "cut by the edge"))
                continue
            if cv2.countNonZero(strong[y : y + bh, x : x + bw]):
                pieces.append((i, cnt, box))
            elif bh >= c.min_height:
                rejected.append((box, "faint"))
        frames = {
            owner
            for owner, (x0, y0, x1, y1) in holes
            for _, _, (x, y, bw, bh) in pieces
            if bh >= c.min_height // 2 and x0 <= x and y0 <= y and x + bw <= x1 and y + bh <= y1
        }
        rejected += [(box, "frame") for i, _, box in pieces if i in frames]
        pieces = [(cnt, box) for i, cnt, box in pieces if i not in frames]
        piece_boxes = [b for _, b in pieces]
        boxes, groups = [], []
        for members in merge_pieces(piece_boxes, c.merge_gap):
            box = piece_boxes[members[0]]
            for m in members[1:]:
                box = union_box(box, piece_boxes[m])
            x, y, bw, bh = box
            reason = None
            if bh < c.min_height:
                reason = "small" if bh >= tiny * 2 else None
            elif bh > max_h:
                reason = "too large"
            elif bw > wide * bh:
                reason = "too wide"
            elif c.reject_border and edges_touched(box, (w, h)):
                reason = "cut by the edge"
            else:
                density = cv2.countNonZero(mask[y : y + bh, x : x + bw]) / float(bw * bh)
                if density < c.min_density:
                    reason = "sparse"
                elif density > c.max_blob_density and bw > 0.4 * bh:
                    reason = "blob"
                elif darker_around(gray, mask, box) > MAX_DARKER_AROUND:
                    reason = "edge of a darker region"
            if reason is None and bh >= c.min_height:
                boxes.append(box)
                groups.append([pieces[m][0] for m in members])
            elif reason is not None:
                rejected.append((box, reason))
        boxes, groups, small = self._relative_sizes(boxes, groups, c)
        rejected += [(box, "small for its row") for box in small]
        order = reading_order(boxes)
        return darkness, mask, [boxes[i] for i in order], [groups[i] for i in order], rejected

    @staticmethod
    def _relative_sizes(boxes, groups, c: ReaderConfig):
        """Drop candidates shorter than ``min_height_fraction`` of their row's median height, and
        lone ones in a row of their own shorter than 0.3 of the frame's median: the minimum size
        follows the sheet, so 10-pixel digits read on a sheet of 10-pixel digits, while specks
        beside larger digits do not."""
        if len(boxes) < 2 or c.min_height_fraction <= 0:
            return boxes, groups, []
        order = reading_order(boxes)
        rows: list[list[int]] = []
        for i in order:
            if (
                rows
                and boxes[i][0] >= boxes[rows[-1][-1]][0]
                and joins_row(boxes[i], [boxes[j] for j in rows[-1]])
            ):
                rows[-1].append(i)
            else:
                rows.append([i])
        frame_median = median([b[3] for b in boxes])
        drop = set()
        for row in rows:
            row_median = median([boxes[i][3] for i in row])
            for i in row:
                if boxes[i][3] < c.min_height_fraction * row_median:
                    drop.add(i)
                elif len(row) == 1 and boxes[i][3] < 0.3 * frame_median:
                    drop.add(i)
        keep = [i for i in range(len(boxes)) if i not in drop]
        return [boxes[i] for i in keep], [groups[i] for i in keep], [boxes[i] for i in sorted(drop)]

    # -- step 4: crops ----------------------------------------------------------------------------
    def crop(self, darkness: np.ndarray, mask: np.ndarray, box: Box, contours: list) -> np.ndarray:
        """The 28x28 float32 MNIST-normalized image of the digit in ``box`` made of ``contours``."""
        ink, stroke = self._own_ink(darkness, mask, box, contours)
        return self._normalize(ink, stroke)

    @staticmethod
    def _own_ink(darkness, mask, box: Box, contours: list) -> tuple[np.ndarray, float]:
        """The darkness inside the digit's own (slightly dilated) contours, float32 (h, w), and
        the pen's mean stroke width in pixels.

        A neighbour's stroke reaching into the box is left out. The darkness is stretched so the
        median of the thresholded stroke pixels becomes 1.0: MNIST strokes have a saturated core
        and soft edges, while a camera's ink is grayer and uneven.
        """
        x, y, bw, bh = box
        region = darkness[y : y + bh, x : x + bw]
        own = np.zeros((bh, bw), dtype=np.uint8)
        cv2.drawContours(own, contours, -1, 255, thickness=cv2.FILLED, offset=(-x, -y))
        strokes = region[(own > 0) & (mask[y : y + bh, x : x + bw] > 0)]
        reference = float(np.median(strokes)) if strokes.size else float(region.max())
        stroke = stroke_width(
            float(strokes.size), sum(cv2.arcLength(cnt, True) for cnt in contours)
        )
        own = cv2.dilate(own, np.ones((3, 3), np.uint8))
        ink = cv2.bitwise_and(region, own).astype(np.float32)
        ink *= 1.0 / max(reference, 1.0)
        np.minimum(ink, 1.0, out=ink)
        return ink, stroke

    def _normalize(self, ink: np.ndarray, stroke: float) -> np.ndarray:
        if self.config.thicken:
            ink = self._thicken(ink, stroke)
        return normalize_digit(ink, self.config.deskew)

    @staticmethod
    def _thicken(ink: np.ndarray, width: float) -> np.ndarray:
        """Dilate strokes far thinner than MNIST's (about 2.5 px of the 20-px box, i.e. 12% of
        the digit's longer side), as a fine pen on a large digit draws them."""
        target = 0.12 * max(ink.shape)
        if width >= 0.5 * target:
            return ink
        k = int(round(target - width)) | 1
        if k < 3:
            return ink
        ellipse = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (k, k))
        pad = k // 2 + 1  # room to grow: a thin "1" is as wide as its box
        grown = cv2.dilate(
            cv2.copyMakeBorder(ink, pad, pad, pad, pad, cv2.BORDER_CONSTANT), ellipse
        )
        x, y, w, h = cv2.boundingRect((grown > 0).astype(np.uint8))
        return grown[y : y + h, x : x + w]

    def _predict(self, crops: np.ndarray) -> np.ndarray:
        if self.config.predict_threads:
            with limit_threads(self.config.predict_threads):
                probabilities = self.model.predict_proba(crops)
        else:
            probabilities = self.model.predict_proba(crops)
        return np.asarray(probabilities, dtype=np.float32)

    def _classify(self, cands: list[segment.Candidate]) -> None:
        """Crop and predict every candidate without an answer yet, in one batch."""
        todo = [cand for cand in cands if cand.probabilities is None]
        if not todo:
            return
        for cand in todo:
            if cand.crop is None:
                cand.crop = self._normalize(cand.ink, cand.stroke)
        probabilities = self._predict(np.stack([cand.crop for cand in todo])[:, None])
        for cand, p in zip(todo, probabilities, strict=True):
            cand.probabilities = p

    def _may_split(self, cand: segment.Candidate) -> bool:
        """Is ``cand`` (read already) wide enough to be two digits (a part of an earlier split:
        wider than tall), and tall enough to cut? Shorter than MNIST's 20-pixel box, its parts
        would be scraps of a few pixels, enlarged, which the network reads surely and wrongly.
        Narrower than ``segment.NARROW`` (two narrow digits touching, or one digit), it is
        tried only when the network is less than ``segment.SURE_WHOLE`` sure of it as one."""
        c, (w, h) = self.config, cand.box[2:]
        if not (c.split and cand.depth < 2 and h >= segment.MIN_SPLIT_HEIGHT):
            return False
        if cand.depth > 0:
            return w > max(1.0, c.split_aspect) * h
        surely_one = w <= segment.NARROW * h and cand.confidence >= segment.SURE_WHOLE
        return w > c.split_aspect * h and not surely_one

    def _segment(self, cands: list[segment.Candidate], rejected: list) -> list[segment.Candidate]:
        """Segmentation by recognition (:mod:`scratchcnn.reader.segment`): an over-wide
        candidate is replaced by the parts of its most convincing split when the parts read
        better than the whole (``parts_score`` against ``split_to_beat``: confidence, the box's
        plausibility for the digit read, the parts' heights, and whether a part reads the
        whole's digit); parts still too wide are tried once more. The parts of every wide
        candidate of the frame are read in one batch."""
        c = self.config
        for _ in range(2):
            wide = [i for i, cand in enumerate(cands) if self._may_split(cand)]
            trials = []
            for i, paths in zip(
                wide, segment.cut_paths_many([cands[i].ink for i in wide]), strict=True
            ):
                to_beat = segment.to_beat(cands[i])
                # Only the cuts that could win are read (the frame rate).
                lowest = min(to_beat, segment.KEEPS_READING_TO_BEAT)
                hypotheses = segment.split_hypotheses(cands[i], paths, lowest)
                if hypotheses:
                    trials.append((i, hypotheses, to_beat))
            if not trials:
                break
            self._classify([p for _, hyps, _ in trials for parts, _ in hyps for p in parts])
            replaced = {}
            for i, hypotheses, to_beat in trials:
                cand = cands[i]
                digit = int(cand.probabilities.argmax())
                best, best_margin = None, 0.0
                for parts, factor in hypotheses:
                    margin = factor * segment.parts_score(parts, cand) - segment.split_to_beat(
                        to_beat, digit, parts
                    )
                    if margin > best_margin:
                        best, best_margin = parts, margin
                if best is not None:
                    replaced[i] = best
                    rejected.append((cand.box, "split"))
                else:
                    cand.depth = 2  # keep it whole: not tried again
            if not replaced:
                break
            cands = [p for i, cand in enumerate(cands) for p in replaced.get(i, [cand])]
        kept = []
        for cand in cands:
            if cand.box[2] > c.max_aspect * cand.box[3]:
                rejected.append((cand.box, "too wide"))
            else:
                kept.append(cand)
        return kept

    # -- the whole frame --------------------------------------------------------------------------
    def read(self, frame: np.ndarray) -> FrameResult:
        """Read all digits of ``frame`` (BGR, BGRA or gray, uint8 preferred; see :func:`to_gray`).

        With ``rotate`` the frame is first turned clockwise by that many degrees; ``"auto"`` reads
        it under all four turns and keeps the reading with the best evidence (the network's mean
        confidence, and digits taller than wide). Boxes are in ``frame``'s pixels either way.
        Blank, saturated, tiny or malformed frames give an empty result, never an exception; a
        frame of more than ``max_pixels`` pixels is a ``ValueError``.
        """
        start = time.perf_counter()
        gray = to_gray(frame)
        if gray is not None and gray.size > self.config.max_pixels:
            raise ValueError(
                f"DigitReader: a {gray.shape[1]}x{gray.shape[0]} frame has more than max_pixels="
                f"{self.config.max_pixels} pixels; shrink it or raise max_pixels"
            )
        if gray is None or min(gray.shape) < self.config.min_height + 2:
            return empty_result(gray.shape if gray is not None else (0, 0))
        rotate = self.config.rotate
        if rotate == "auto":
            readings = [self._read_turned(gray, angle) for angle in ROTATIONS]
            result = max(readings, key=_evidence)
        else:
            result = self._read_turned(gray, int(rotate))
        result.timings["candidates"] += 1e3 * (time.perf_counter() - start) - sum(
            result.timings.values()
        )
        return result

    __call__ = read

    def _read_turned(self, gray: np.ndarray, angle: int) -> FrameResult:
        """Read ``gray`` turned clockwise by ``angle`` degrees; boxes back in ``gray``'s pixels."""
        turns = (angle // 90) % 4
        if not turns:
            return self._read_upright(gray)
        upright = np.ascontiguousarray(np.rot90(gray, -turns))
        result = self._read_upright(upright)
        size = (upright.shape[1], upright.shape[0])

        def back(box):
            return turn_box(box, size, turns)

        moved = {}
        for det, _ in result._upright:
            moved[id(det)] = Detection(
                back(det.box), det.digit, det.confidence, det.probabilities, det.unsure
            )
        result._upright = [(moved[id(det)], box) for det, box in result._upright]
        result.detections = [moved[id(d)] for d in result.detections]
        result.unsure = [moved[id(d)] for d in result.unsure]
        result.boxes = [back(b) for b in result.boxes]
        result.rejected = [(back(b), reason) for b, reason in result.rejected]
        result.mask = np.ascontiguousarray(np.rot90(result.mask, turns))
        result.rotation = angle
        return result

    def _read_upright(self, gray: np.ndarray) -> FrameResult:
        """Read ``gray`` as found, and as digits that may fill it (a digit or a number cropped
        tight, its strokes thick: see :meth:`_lone_config`); the second reading is made only
        when its candidates could win (:func:`_lone_may_win`), and kept when it does
        (:func:`_prefer_lone`)."""
        start = time.perf_counter()
        result = self._read_found(self._find(gray, self.config), start)
        if self.config.lone_digit:
            lone = self._find(gray, self._lone_config(), filled=True)
            if _lone_may_win(lone[2], lone[1], result):
                lone_result = self._read_found(lone, start)
                if _prefer_lone(result, lone_result, gray.shape):
                    result = lone_result
        return result

    def _read_found(self, found, start: float) -> FrameResult:
        """Crop, classify and segment the candidates :meth:`_find` found."""
        c = self.config
        darkness, mask, boxes, groups, rejected = found
        rejected = list(rejected)
        found_at = time.perf_counter()
        timings = {"candidates": 1e3 * (found_at - start), "crops": 0.0, "predict": 0.0}
        if not boxes:
            result = _no_digits(mask)
            result.rejected = rejected
            result.timings = timings
            return result
        cands = []
        for box, group in zip(boxes, groups, strict=True):
            ink, stroke = self._own_ink(darkness, mask, box, group)
            cands.append(segment.Candidate(box, ink, stroke, group))
        for cand in cands:
            cand.crop = self._normalize(cand.ink, cand.stroke)
        cropped = time.perf_counter()
        self._classify(cands)
        predicted = time.perf_counter()
        cands = self._segment(cands, rejected)
        if not cands:  # every candidate was too wide to be a digit, even in parts
            result = _no_digits(mask)
            result.rejected, result.timings = rejected, timings
            return result
        order = reading_order([cand.box for cand in cands])
        cands = [cands[i] for i in order]
        timings["crops"] = 1e3 * (cropped - found_at)
        timings["predict"] = 1e3 * (predicted - cropped)
        timings["split"] = 1e3 * (time.perf_counter() - predicted)
        crops = np.stack([cand.crop for cand in cands])[:, None]
        probabilities = np.stack([cand.probabilities for cand in cands]).astype(np.float32)
        detections, unsure, upright = [], [], []
        for cand in cands:
            digit = int(cand.probabilities.argmax())
            confidence = float(cand.probabilities[digit])
            box = tuple(int(v) for v in cand.box)
            det = Detection(
                box, digit, confidence, cand.probabilities, confidence < c.min_confidence
            )
            (unsure if det.unsure else detections).append(det)
            upright.append((det, box))
        return FrameResult(
            detections,
            mask,
            crops,
            [tuple(int(v) for v in cand.box) for cand in cands],
            probabilities,
            timings,
            unsure=unsure,
            rejected=rejected,
            _upright=upright,
        )

    def _lone_config(self) -> ReaderConfig:
        """Settings for a digit that may fill the image: edges allowed, any height, and a paper
        estimate coarse enough not to take a thick stroke of a large digit for paper."""
        c = self.config
        return ReaderConfig(
            **{
                **c.__dict__,
                "reject_border": False,
                "max_height_fraction": 1.0,
                "paper_kernel_fraction": max(c.paper_kernel_fraction, 0.5),
            }
        )


def _lone_may_win(boxes: list[Box], mask: np.ndarray, result: FrameResult) -> bool:
    """Could the candidates ``boxes`` found (with ``mask``, uint8 (H, W), 255 = ink) in an image
    read as digits filling it be preferred over ``result`` (:func:`_prefer_lone`)? Known from
    the boxes, before reading them: each is at least half the image's height and not the page's
    edge, a shadow or a gradient, and everything ``result`` read lies inside one of them. A
    digit cropped from a page may touch two of its image's edges, or all four when it fills the
    image (a tight crop): a box touching three or four is a digit only when it fills 0.8 of the
    image's width and height and ink covers less than 60% of the image's border (a tight crop's
    strokes touch the border here and there, 45% at most in 480 of them; the desk framing a
    photographed page runs all along it)."""
    height, width = mask.shape
    if not boxes or any(h < 0.5 * height for _, _, _, h in boxes):
        return False
    for box in boxes:
        if edges_touched(box, (width, height)) > 2:
            if box[2] < 0.8 * width or box[3] < 0.8 * height or _framed(mask):
                return False
    return _covered([d.box for d in result.all_detections], boxes)


def _framed(mask: np.ndarray) -> bool:
    """Is ink (``mask`` uint8 (H, W), 255 = ink) on 60% or more of the image's border?"""
    border = np.concatenate([mask[0], mask[-1], mask[:, 0], mask[:, -1]])
    return np.count_nonzero(border) >= 0.6 * border.size


def _prefer_lone(result: FrameResult, lone: FrameResult, shape) -> bool:
    """Is the reading of the image as digits filling it (``lone``, a digit or a number cropped
    tight) better than the ordinary one (``result``)? When every digit of ``lone`` is at least
    half the image's height, everything the ordinary reading found lies inside one of them, and
    each of them is sure (0.8), or holds nothing the ordinary reading found (it was too large
    for it), or holds two or more pieces, none 0.7 as tall, or is surer than what it holds: a
    large digit whose thick strokes the finer paper estimate broke apart is read, sure or not,
    rather than its pieces. (One smaller detection inside a less sure one is a digit of its
    own.)"""
    dets = lone.all_detections
    if not dets or any(d.box[3] < 0.5 * shape[0] for d in dets):
        return False
    found = result.all_detections
    if not _covered([f.box for f in found], [d.box for d in dets]):
        return False
    for d in dets:
        inside = [f for f in found if _within(f.box, d.box)]
        pieces = len(inside) > 1 and all(f.box[3] < 0.7 * d.box[3] for f in inside)
        surer = all(d.confidence > f.confidence for f in inside)
        if inside and not pieces and not surer and d.confidence < 0.8:
            return False
    return True


def _covered(boxes: list[Box], outers: list[Box]) -> bool:
    """Does each of ``boxes`` lie inside one of ``outers`` (:func:`_within`)?"""
    return all(any(_within(box, outer) for outer in outers) for box in boxes)


def _within(box: Box, outer: Box) -> bool:
    """Does ``box`` lie inside ``outer``, give or take 5% of the outer box's longer side?"""
    x, y, w, h = outer
    pad = 0.05 * max(w, h)
    return (
        box[0] >= x - pad
        and box[1] >= y - pad
        and box[0] + box[2] <= x + w + pad
        and box[1] + box[3] <= y + h + pad
    )


def _evidence(result: FrameResult) -> float:
    """How convincing a reading is, to choose among rotations: the network's mean confidence over
    the digits read, plus a bonus for digits taller than wide (upright handwriting mostly is),
    both scaled by how many digits there are relative to the others' (a reading with no digits
    has none)."""
    dets = result.all_detections
    if not dets:
        return -1.0
    confidence = float(np.mean([d.confidence for d in dets]))
    upright = float(np.mean([box[3] >= box[2] for _, box in result._upright]))
    return confidence + 0.25 * upright + 0.01 * min(len(dets), 10)


def _no_digits(mask: np.ndarray) -> FrameResult:
    result = empty_result(mask.shape)
    result.mask = mask
    return result
