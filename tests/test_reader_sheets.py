"""Issue #14: real handwriting as a person reads it, on rendered sheets — touching digits, tiny
and page-filling digits, sideways photos, unsure detections, the number as text — and the
reader's answers to careless input (#13) and its window and files (#16)."""

import json
import os
import signal
import struct
import subprocess
import sys
import time
import zlib

import cv2
import numpy as np
import pytest
from conftest import REPO_ROOT, run_python

from scratchcnn.reader.annotate import LabelPlacer, debug_view, draw_detections
from scratchcnn.reader.ink import noise_level, paper_brightness, to_gray
from scratchcnn.reader.results import Detection, text_of
from scratchcnn.reader.sources import SourceError, camera_problem, image_size, read_image
from scratchcnn.reader.synthetic import (
    RenderConfig,
    SheetRenderer,
    SheetRow,
    iou,
    narrow_pairs,
    tight_crop,
    tight_number,
    truth_path_for,
)
from scratchcnn.reader.vision import DigitReader, ReaderConfig

WEBCAM = REPO_ROOT / "examples" / "webcam.py"


class FakeModel:
    """predict_proba answering ``digit`` with ``confidence`` for every crop."""

    def __init__(self, digit=3, confidence=0.9):
        self.digit, self.confidence, self.calls = digit, confidence, 0

    def predict_proba(self, x):
        self.calls += 1
        p = np.full((len(x), 10), (1 - self.confidence) / 9, dtype=np.float32)
        p[:, self.digit] = self.confidence
        return p


def read_right(truth, detections) -> list[bool]:
    """For each truth digit: does a sure detection overlap it (IoU >= 0.5) with its digit?"""
    return [
        any(iou(t.box, d.box) >= 0.5 and d.digit == t.digit for d in detections if not d.unsure)
        for t in truth
    ]


def pairs_read(reader, frames) -> tuple[int, float]:
    """How many pairs (truth digits 0-1, 2-3, ...) ``frames`` [(frame, truth)] hold, and the
    fraction of them ``reader`` reads as two correct digits."""
    pairs = good = 0
    for frame, truth in frames:
        right = read_right(truth, reader.read(frame).detections)
        for a in range(0, len(truth) - 1, 2):
            pairs += 1
            good += right[a] and right[a + 1]
    return pairs, good / pairs


def pick(rng, n, count):
    return tuple(int(i) for i in rng.choice(n, size=count, replace=False))


@pytest.fixture(scope="module")
def sheets(mnist_test_set):
    return SheetRenderer(*mnist_test_set)


# -- touching digits ---------------------------------------------------------------------------
@pytest.mark.slow
def test_touching_pairs_are_read_as_two_digits(sheets):
    """Pairs whose inks meet: at least 90% read as two correct digits (issue #14) by the reader
    with the model users get, the bundled one (trained with touching pairs shown as no digit,
    ``--touching-pairs``); almost none without segmentation by recognition (the box of both is
    read as one digit). 93% here; before the training showed touching pairs, 87-89% on such
    sheets (benchmarks/PROFILE.md)."""
    from scratchcnn.pretrained import load_bundled_model

    model = load_bundled_model()
    rng = np.random.default_rng(11)
    n = len(sheets.images)
    frames = []
    for _ in range(16):
        rows = [
            SheetRow(pick(rng, n, 6), rng.uniform(45, 65), (None, 1.3) * 3, overlap=0.0)
            for _ in range(4)
        ]
        frames.append(sheets.render(rng, rows, size=(800, 600))[:2])
    results = {}
    for split in (True, False):
        reader = DigitReader(model, min_confidence=0.5, split=split)
        pairs, results[split] = pairs_read(reader, frames)
    print(f"touching pairs read as two correct digits: {results}")
    assert pairs >= 160
    assert results[False] <= 0.1
    assert results[True] >= 0.9, results


def test_a_network_shown_touching_pairs_as_no_digit_doubts_them(mnist_test_set, digit_model):
    """The tests' one-epoch LeNet-5, trained as the train command trains by default (touching
    pairs shown as no digit), reads MNIST test digits drawn touching at 0.22 on average, the
    digits themselves at 0.97 (trained without the pairs: 0.69 and 0.98; the bundled model 0.14
    and 0.99, 0.77 before): what segmentation by recognition weighs a split against."""
    from scratchcnn.data import to_float_images
    from scratchcnn.training.touching import touching_pairs

    images, labels = mnist_test_set
    digits = to_float_images(images[:2000])
    pairs = touching_pairs(digits, np.random.default_rng(0), 500)
    on_pairs = digit_model.predict_proba(pairs).max(axis=1)
    on_digits = digit_model.predict_proba(digits)
    assert on_pairs.mean() < 0.4 and np.mean(on_pairs > 0.9) < 0.05, on_pairs.mean()
    assert on_digits.max(axis=1).mean() > 0.95
    assert np.mean(on_digits.argmax(axis=1) == labels[:2000]) > 0.97


@pytest.mark.slow
def test_narrow_touching_pairs_are_read_as_two_digits(sheets, digit_model):
    """A "1" touching a "1", "4", "7" or "9": the pair is often no wider than one wide digit, so
    candidates from 0.4 of their height wide are tried in parts (those under 0.75 only when the
    network doubts them as one digit). With 0.75, the old limit, most such pairs are one box."""
    rng = np.random.default_rng(12)
    frames = []
    for _ in range(6):
        rows = [
            SheetRow(
                narrow_pairs(sheets.labels, rng, 3), rng.uniform(45, 65), (None, 1.3) * 3, overlap=0
            )
            for _ in range(4)
        ]
        frames.append(sheets.render(rng, rows, size=(800, 600))[:2])
    results = {}
    for name, split_aspect in (("0.75", 0.75), ("default", ReaderConfig().split_aspect)):
        reader = DigitReader(digit_model, min_confidence=0.5, split_aspect=split_aspect)
        pairs, results[name] = pairs_read(reader, frames)
    print(f"narrow touching pairs read as two correct digits: {results}")
    assert pairs >= 60
    assert results["default"] >= results["0.75"] + 0.08, results  # 76% against 57%


class ShapeModel:
    """Reads crops the way a trained network reads them, confident either way: a narrow ink
    box (narrower than half its height) is a "1", anything else a "0", at 0.99."""

    def predict_proba(self, x):
        p = np.full((len(x), 10), 0.01 / 9, dtype=np.float32)
        for i, crop in enumerate(x[:, 0]):
            ys, xs = np.nonzero(crop > 0.3)
            narrow = len(xs) and np.ptp(xs) + 1 < 0.5 * (np.ptp(ys) + 1)
            p[i, 1 if narrow else 0] = 0.99
        return p


def test_a_one_leaning_on_a_ring_is_read_as_two_digits_a_lone_ring_as_one():
    """A box a little wider than tall, read surely as one digit, is two when its parts read as
    surely, fit their digits' widths and are both as tall as the whole (a "1" touching a "0");
    a ring as wide is not cut into two arcs (each cut crosses two strokes)."""
    frame = np.full((300, 400), 235, np.uint8)
    cv2.line(frame, (36, 114), (36, 46), 20, 9)  # a "1" ...
    cv2.line(frame, (40, 80), (50, 80), 20, 3)  # ... its pen still on the paper ...
    cv2.ellipse(frame, (94, 80), (44, 40), 0, 0, 360, 20, 7)  # ... touching a wide "0"
    cv2.ellipse(frame, (220, 80), (48, 40), 0, 0, 360, 20, 7)  # a lone "0", about as wide
    result = DigitReader(ShapeModel()).read(frame)
    assert [d.digit for d in result.detections] == [1, 0, 0]
    one, zero, ring = (d.box for d in result.detections)
    assert one[0] + one[2] <= zero[0] + 6 and zero[2] > 5 * one[2]
    assert ring[2] >= 95 and [reason for _, reason in result.rejected] == ["split"]


def test_a_one_leaning_on_a_digit_read_surely_as_that_digit_is_still_cut_off():
    """The network reads a "1" touching a "0" as that "0" just as surely as the "0" alone (the
    box is no wider than a "0" often is): the whole's confidence is no evidence against a split
    whose part reads the same digit, and two sure readings across one stroke win."""
    frame = np.full((300, 400), 235, np.uint8)
    cv2.line(frame, (36, 114), (36, 46), 20, 9)  # a "1" ...
    cv2.line(frame, (40, 80), (50, 80), 20, 3)  # ... its pen still on the paper ...
    cv2.ellipse(frame, (80, 80), (28, 34), 0, 0, 360, 20, 7)  # ... touching a narrow "0"
    cv2.ellipse(frame, (220, 80), (28, 34), 0, 0, 360, 20, 7)  # the same "0" alone
    result = DigitReader(ShapeModel()).read(frame)
    whole = result.detections[0].box if result.detections else None
    assert [d.digit for d in result.detections] == [1, 0, 0], whole
    assert [reason for _, reason in result.rejected] == ["split"]


def test_touching_shapes_shorter_than_mnist_digits_are_not_cut(monkeypatch):
    """Below 20 pixels the parts of a cut are scraps of a few pixels that the network reads
    surely and wrongly: such a candidate is read whole."""
    from scratchcnn.reader import segment

    frame = np.full((300, 400), 235, np.uint8)
    cv2.line(frame, (36, 114), (36, 46), 20, 9)  # the "1" touching a wide "0" read as two
    cv2.line(frame, (40, 80), (50, 80), 20, 3)  # digits when they are 89 pixels tall
    cv2.ellipse(frame, (94, 80), (44, 40), 0, 0, 360, 20, 7)
    small = cv2.resize(frame, None, fx=0.2, fy=0.2, interpolation=cv2.INTER_AREA)
    small = cv2.copyMakeBorder(small, 20, 20, 20, 20, cv2.BORDER_CONSTANT, value=235)
    reader = DigitReader(ShapeModel(), min_height=5)
    result = reader.read(small)
    assert [d.digit for d in result.detections] == [0] and result.detections[0].box[3] < 20
    monkeypatch.setattr(segment, "MIN_SPLIT_HEIGHT", 1)  # as before: cut, and read as "10"
    assert [d.digit for d in reader.read(small).detections] == [1, 0]


def test_a_cut_between_two_touching_shapes_follows_the_contact():
    """Two rings touching at one point: the split finds the cut through the contact."""
    from scratchcnn.reader.segment import cut_paths

    ink = np.zeros((60, 100), np.float32)
    cv2.circle(ink, (25, 30), 22, 1.0, 5)
    cv2.circle(ink, (72, 30), 24, 1.0, 5)  # the rings overlap around column 48
    paths = cut_paths(ink)
    assert len(paths) >= 3
    assert any(44 <= np.median(p) <= 54 for p in paths)  # one goes through the contact


def test_cut_paths_of_a_frame_s_candidates_at_once_are_each_one_s_own():
    """One pass of the dynamic programming for inks of different sizes (padded to the largest)
    finds for each the paths it finds alone."""
    from scratchcnn.reader.segment import cut_paths, cut_paths_many

    rng = np.random.default_rng(3)
    inks = [
        (rng.random((h, w)) < 0.3).astype(np.float32) * rng.random((h, w), dtype=np.float32)
        for h, w in [(60, 90), (25, 70), (110, 40), (40, 200), (8, 4)]
    ]
    together = cut_paths_many(inks)
    assert [len(paths) for paths in together] == [len(cut_paths(ink)) for ink in inks]
    assert len(together[0]) >= 3 and together[-1] == []  # 4 pixels wide: no room for a cut
    for ink, paths in zip(inks, together, strict=True):
        for path, alone in zip(paths, cut_paths(ink), strict=True):
            assert np.array_equal(path, alone) and len(path) == ink.shape[0]


def test_a_cut_through_the_contact_alone_leaves_other_strokes_whole():
    """A "1" touching a ring whose tail runs left under the "1"'s foot: a path between them
    crosses the contact and the tail. Its own split would cut the tail off; cutting the contact
    alone parts the ink into the "1" and the ring with all of its tail."""
    from scratchcnn.reader.segment import contact_cuts

    ink = np.zeros((90, 90), np.float32)
    cv2.line(ink, (30, 10), (30, 68), 1.0, 5)  # a "1"
    cv2.circle(ink, (57, 40), 23, 1.0, 5)  # touching a ring at its left
    cv2.line(ink, (57, 63), (57, 78), 1.0, 5)  # whose tail runs down ...
    cv2.line(ink, (57, 78), (8, 78), 1.0, 5)  # ... and left, under the "1"
    strokes = ink > 0.25
    path = np.full(90, 33)  # crosses the contact (rows 10-70) and the tail (rows 75-80)
    [(left, right)] = contact_cuts(strokes, [path])
    ys, xs = np.nonzero(left)
    assert xs.max() <= 34 and ys.max() <= 71  # the "1" alone
    ys, xs = np.nonzero(right)
    assert xs.min() <= 6 and ys.max() >= 80  # the ring, its tail whole
    assert not np.any(left & right)
    assert set(np.nonzero(strokes & ~left & ~right)[1].tolist()) == {33}  # the cut alone
    # A path crossing one ring twice: cutting either crossing leaves it in one piece.
    ring = np.zeros((60, 60), np.float32)
    cv2.circle(ring, (30, 30), 20, 1.0, 5)
    assert contact_cuts(ring > 0.25, [np.full(60, 30)]) == []


# -- sizes -------------------------------------------------------------------------------------
@pytest.mark.slow
def test_ten_pixel_digits_are_read_on_a_sheet_of_them(sheets, digit_model):
    rng = np.random.default_rng(12)
    clean = RenderConfig(blur_sigma=(0.3, 0.6), noise_sigma=(1.0, 2.5), jpeg_quality=(80, 92))
    small = SheetRenderer(sheets.images, sheets.labels, clean)
    right, old = [], []
    for _ in range(3):
        rows = [SheetRow(pick(rng, len(sheets.images), 8), 10, (0.6,) * 8) for _ in range(6)]
        frame, truth, _ = small.render(rng, rows, size=(480, 360))
        right += read_right(
            truth, DigitReader(digit_model, min_confidence=0.5).read(frame).all_detections
        )
        main_like = DigitReader(digit_model, min_confidence=0.5, min_height=14)  # as before #14
        old += read_right(truth, main_like.read(frame).detections)
    assert len(right) >= 100
    assert np.mean(old) < 0.1
    assert np.mean(right) >= 0.7, np.mean(right)


def test_specks_beside_large_digits_are_not_digits():
    frame = np.full((300, 400), 235, np.uint8)
    for x in (60, 160, 260):
        cv2.putText(frame, "8", (x, 200), cv2.FONT_HERSHEY_SIMPLEX, 4, 20, 9)
    cv2.circle(frame, (370, 190), 6, 20, 2)  # a 14-pixel ring at the end of the row
    result = DigitReader(FakeModel()).read(frame)
    assert len(result.detections) == 3
    assert any(reason == "small for its row" for _, reason in result.rejected)


@pytest.mark.slow
def test_a_digit_filling_the_whole_image_is_read(mnist_test_set, digit_model):
    """Pre-cropped digits, dark on light, touching the image's top and bottom."""
    images, labels = mnist_test_set
    reader = DigitReader(digit_model, min_confidence=0.5)
    old = DigitReader(digit_model, min_confidence=0.5, lone_digit=False)
    right = right_before = 0
    for i in range(30):
        digit = images[i]
        ys, xs = np.nonzero(digit > 60)
        ink = digit[ys.min() : ys.max() + 1, xs.min() : xs.max() + 1]
        big = cv2.resize(ink, None, fx=6, fy=6, interpolation=cv2.INTER_CUBIC)
        pad = big.shape[0] // 6
        page = cv2.copyMakeBorder(255 - big, 0, 0, pad, pad, cv2.BORDER_CONSTANT, value=255)
        result = reader.read(page)
        right += [d.digit for d in result.detections] == [int(labels[i])]
        right_before += [d.digit for d in old.read(page).detections] == [int(labels[i])]
    assert right >= 26, right
    assert right_before <= 3  # too large for a digit, or pieces of it: so it was before #14


@pytest.mark.slow
def test_digits_cropped_tight_and_written_thick_are_read_as_one_digit(mnist_test_set, digit_model):
    """Photos of one digit cropped tight, 28-320 pixels square (:func:`tight_crop`): scaled up,
    a digit's strokes are up to 30 pixels wide, wider than the paper estimate's kernel, and its
    ink can be most of the image. Each is read as one digit, the right one, with no other
    detection (82% before: the thick strokes came apart into pieces read as digits of their own,
    or nothing was read when the ink's median pixel made the noise estimate hide every stroke)."""
    images, labels = mnist_test_set
    rng = np.random.default_rng(100)
    reader = DigitReader(digit_model, min_confidence=0.5)
    right = []
    for _ in range(80):
        i = int(rng.integers(len(images)))
        image, box = tight_crop(images[i], rng)
        dets = reader.read(image).all_detections
        right.append(len(dets) == 1 and dets[0].digit == labels[i] and iou(dets[0].box, box) > 0.5)
    assert np.mean(right) >= 0.95, np.mean(right)


@pytest.mark.slow
def test_a_number_cropped_to_its_digits_height_is_read(mnist_test_set, digit_model):
    """Two digits side by side, the image cropped to their height (:func:`tight_number`): they
    touch its top and bottom, so the ordinary reading finds nothing but specks (too large, cut
    by the edge), and the reading of the image as digits filling it gives both (29 of 30 here;
    15 when it was tried only when nothing at all was found, none when it had to be one
    digit)."""
    images, labels = mnist_test_set
    rng = np.random.default_rng(30)
    reader = DigitReader(digit_model, min_confidence=0.5)
    right = 0
    for _ in range(30):
        chosen = rng.choice(len(images), size=2, replace=False)
        image, _ = tight_number([images[i] for i in chosen], rng)
        right += [d.digit for d in reader.read(image).detections] == [labels[i] for i in chosen]
    assert right >= 27, right


def test_the_noise_of_a_digit_filling_its_image_is_the_paper_s(mnist_test_set):
    """Zeros cropped tight: in some, ink is most of the pixels, so the plain noise estimate (a
    median absolute deviation) measures the ink's shading, tens of gray levels, and no stroke
    would stand out of it. ``filled`` measures the paper's grain there (sigma 2, plus the paper
    estimate's slope), and never more than the plain estimate; on blank paper the two agree."""
    images, labels = mnist_test_set
    rng = np.random.default_rng(7)
    mostly_ink = 0
    for i in np.flatnonzero(labels == 0)[:100]:
        gray = to_gray(tight_crop(images[i], rng)[0])
        paper = paper_brightness(gray, 0.5)
        plain, filled = noise_level(gray, paper), noise_level(gray, paper, filled=True)
        assert filled <= plain
        if plain > 20:
            mostly_ink += 1
            assert filled < 5, (i, plain, filled)
    assert mostly_ink >= 5
    blank = np.clip(220 + rng.normal(0, 2, (200, 200)), 0, 255).astype(np.uint8)
    paper = paper_brightness(blank, 0.5)
    assert noise_level(blank, paper, filled=True) == noise_level(blank, paper) < 5


# -- orientation -------------------------------------------------------------------------------
@pytest.mark.slow
@pytest.mark.parametrize("turns", [1, 3, 2])
def test_a_sideways_sheet_is_read_with_rotate_auto(sheets, digit_model, turns):
    rng = np.random.default_rng(20 + turns)
    rows = [
        SheetRow(pick(rng, len(sheets.images), 5), rng.uniform(40, 55), (0.6,) * 5)
        for _ in range(4)
    ]
    frame, truth, text = sheets.render(rng, rows, size=(560, 600), quarter_turns=turns)
    plain = DigitReader(digit_model, min_confidence=0.5).read(frame)
    auto = DigitReader(digit_model, min_confidence=0.5, rotate="auto").read(frame)
    assert auto.rotation == (90 * turns) % 360
    assert np.mean(read_right(truth, auto.detections)) >= 0.9  # boxes in the frame's pixels
    assert np.mean(read_right(truth, plain.detections)) < 0.5
    assert auto.mask.shape == frame.shape[:2]
    lines = auto.text.split("\n")
    assert len(lines) == len(text.split("\n")) == 4


def test_a_fixed_rotation_maps_boxes_back_to_the_frame():
    frame = np.full((300, 200), 235, np.uint8)
    cv2.circle(frame, (100, 120), 30, 20, 6)  # a ring: as wide as tall, turned or not
    upright = DigitReader(FakeModel()).read(frame)
    turned = DigitReader(FakeModel(), rotate=90).read(frame)
    assert len(upright.detections) == len(turned.detections) == 1
    assert iou(upright.detections[0].box, turned.detections[0].box) > 0.8
    assert turned.rotation == 90


# -- unsure, second best, text -----------------------------------------------------------------
def test_unsure_detections_are_reported_not_dropped():
    frame = np.full((200, 300), 235, np.uint8)
    cv2.putText(frame, "8", (120, 140), cv2.FONT_HERSHEY_SIMPLEX, 3, 20, 8)
    result = DigitReader(FakeModel(confidence=0.4), min_confidence=0.5).read(frame)
    assert result.detections == [] and len(result.unsure) == 1
    det = result.unsure[0]
    assert det.unsure and det.to_dict()["unsure"] is True
    assert det.to_dict()["second"]["digit"] != det.digit
    assert result.all_detections == [det] and result.text == "?"
    sure = DigitReader(FakeModel(confidence=0.6), min_confidence=0.5).read(frame)
    assert len(sure.detections) == 1 and sure.unsure == [] and sure.text == "3"


def test_text_has_rows_and_groups_split_by_spacing():
    def det(digit, x, y, h=40):
        probs = np.full(10, 0.01, np.float32)
        probs[digit] = 0.91
        return Detection((x, y, 25, h), digit, 0.91, probs, unsure=digit == 9)

    row1 = [det(0, 10, 10), det(5, 40, 12), det(2, 70, 10), det(2, 100, 11)]
    row1 += [det(1, 180, 10), det(8, 210, 9), det(5, 240, 10), det(9, 270, 12)]
    row2 = [det(4, 15, 90), det(2, 45, 92)]
    items = [(d, d.box) for d in row1 + row2]
    assert text_of(items) == "0522 185?\n42"


@pytest.mark.slow
def test_the_text_of_a_rendered_sheet(sheets, digit_model):
    rng = np.random.default_rng(31)
    n = len(sheets.images)
    rows = [SheetRow(pick(rng, n, 6), 50, (0.3, 0.3, 1.4, 0.3, 0.3)) for _ in range(3)]
    frame, truth, text = sheets.render(rng, rows, size=(800, 480))
    result = DigitReader(digit_model, min_confidence=0.5).read(frame)
    assert text.count(" ") == 3 and text.count("\n") == 2
    shape = "".join("#" if c.isdigit() or c == "?" else c for c in result.text)
    assert shape == "### ###\n### ###\n### ###"
    agree = sum(a == b for a, b in zip(result.text, text, strict=True))
    assert agree >= len(text) - 2


# -- bad arguments and inputs ------------------------------------------------------------------
@pytest.mark.parametrize(
    ("options", "name"),
    [
        ({"min_confidence": 5}, "min_confidence"),
        ({"min_confidence": float("nan")}, "min_confidence"),
        ({"min_height": "12"}, "min_height"),
        ({"min_height": 2.5}, "min_height"),
        ({"rotate": 45}, "rotate"),
        ({"max_pixels": 0}, "max_pixels"),
        ({"split": "yes"}, "split"),
        ({"predict_threads": 0}, "predict_threads"),
        ({"colour": 1}, "colour"),
    ],
)
def test_bad_reader_options_are_refused_by_name(options, name):
    with pytest.raises(ValueError, match=name):
        DigitReader(FakeModel(), **options)


def test_a_model_without_predict_proba_is_refused():
    with pytest.raises(ValueError, match="predict_proba"):
        DigitReader(object())
    with pytest.raises(ValueError, match="min_confidence"):
        ReaderConfig(min_confidence=-0.1)


def test_a_frame_larger_than_max_pixels_is_refused():
    reader = DigitReader(FakeModel(), max_pixels=1000)
    with pytest.raises(ValueError, match="max_pixels"):
        reader.read(np.full((40, 40), 255, np.uint8))


def transparent_drawing() -> np.ndarray:
    """BGRA: a black "8" drawn on a fully transparent black canvas (ink only in alpha)."""
    image = np.zeros((200, 300, 4), np.uint8)
    alpha = np.zeros((200, 300), np.uint8)
    cv2.putText(alpha, "8", (120, 150), cv2.FONT_HERSHEY_SIMPLEX, 3.5, 255, 10)
    image[:, :, 3] = alpha
    return image


def test_ink_in_the_alpha_channel_is_read_on_white(tmp_path):
    drawing = transparent_drawing()
    gray = to_gray(drawing)
    assert gray[5, 5] == 255 and gray.min() == 0
    assert len(DigitReader(FakeModel()).read(drawing).detections) == 1
    path = tmp_path / "drawing.png"
    cv2.imwrite(str(path), drawing)
    image = read_image(path)
    assert image.shape == (200, 300, 3) and image[5, 5].tolist() == [255, 255, 255]
    assert len(DigitReader(FakeModel()).read(image).detections) == 1


def png_declaring(width, height) -> bytes:
    """A small PNG whose header declares ``width`` x ``height`` pixels (a decompression bomb's
    header: the data is a few zero rows, the decoder would allocate the whole image)."""

    def chunk(kind, data):
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    rows = zlib.compress(b"\x00" * (width + 1) * 4)
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", rows) + chunk(b"IEND", b"")
    )


def test_image_sizes_are_read_from_headers(tmp_path):
    image = np.zeros((37, 53, 3), np.uint8)
    for ext in (".png", ".jpg", ".bmp", ".webp", ".tiff"):
        ok, data = cv2.imencode(ext, image)
        assert ok and image_size(data.tobytes()) == (53, 37), ext
    assert image_size(b"P5\n53 37\n255\n") == (53, 37)
    assert image_size(png_declaring(30000, 30000)) == (30000, 30000)
    assert image_size(b"not an image at all") is None


def test_an_image_declaring_too_many_pixels_is_refused_before_decoding(tmp_path):
    bomb = tmp_path / "bomb.png"
    bomb.write_bytes(png_declaring(30000, 30000))
    start = time.perf_counter()
    with pytest.raises(SourceError, match="30000x30000 pixels is more than the limit"):
        read_image(bomb)
    assert time.perf_counter() - start < 1.0
    small = tmp_path / "small.png"
    small.write_bytes(png_declaring(400, 300))
    with pytest.raises(SourceError, match="--max-pixels"):
        read_image(small, max_pixels=100_000)


def test_jpeg_exif_orientation_is_honoured(tmp_path):
    pil = pytest.importorskip("PIL.Image")
    image = np.full((40, 80, 3), 255, np.uint8)
    picture = pil.fromarray(image)
    exif = picture.getexif()
    exif[0x0112] = 6  # "rotate 90 degrees clockwise to display"
    path = tmp_path / "sideways.jpg"
    picture.save(path, exif=exif)
    assert read_image(path).shape[:2] == (80, 40)


def test_camera_indices_are_checked():
    assert "number >= 0" in camera_problem(-1)
    assert "number >= 0" in camera_problem(True)
    if sys.platform.startswith("linux"):
        assert "/dev/video97" in camera_problem(97)


@pytest.mark.parametrize("camera", ["-1", "97"])
def test_webcam_bad_camera_is_one_line(tmp_path, camera):
    import scratchcnn as sc

    model = tmp_path / "m.npz"
    sc.save_model(sc.build_model("lenet5", seed=0), model)
    result = run_python([WEBCAM, "--camera", camera, "--headless", "--model", model])
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"webcam.py: error: camera {camera}")
    assert "WARN" not in result.stderr and "Traceback" not in result.stderr


# -- the predict command: bombs among good files, annotations, Ctrl-C ------------------------------
@pytest.fixture(scope="module")
def sheet_png(tmp_path_factory, sheets):
    rng = np.random.default_rng(40)
    rows = [SheetRow(pick(rng, len(sheets.images), 4), 50, (0.6,) * 4) for _ in range(2)]
    frame, truth, _ = sheets.render(rng, rows, size=(480, 320))
    path = tmp_path_factory.mktemp("sheet") / "sheet.png"
    cv2.imwrite(str(path), frame)
    return path, truth


@pytest.mark.slow
def test_predict_refuses_a_bomb_in_one_line_and_reads_the_rest(
    tmp_path, sheet_png, digit_model_path
):
    bomb = tmp_path / "bomb.png"
    bomb.write_bytes(png_declaring(30000, 30000))
    path, truth = sheet_png
    annotated = tmp_path / "annotated"
    result = run_python(
        [
            "-m",
            "scratchcnn.predict",
            bomb,
            path,
            "--model",
            digit_model_path,
            "--annotate",
            annotated,
        ]
    )
    assert result.returncode == 2
    errors = result.stderr.strip().splitlines()
    assert len(errors) == 1 and "bomb.png: 30000x30000 pixels" in errors[0]
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert [line["file"] for line in lines] == [str(path)]
    assert len(lines[0]["detections"]) >= len(truth) - 1 and "text" in lines[0]
    assert all({"unsure", "second"} <= set(d) for d in lines[0]["detections"])
    drawn = cv2.imread(str(annotated / "sheet.png"))
    assert drawn.shape == cv2.imread(str(path)).shape
    green = (drawn[:, :, 1] > 200) & (drawn[:, :, 0] < 60) & (drawn[:, :, 2] < 60)
    assert green.sum() > 200


@pytest.mark.slow
def test_ctrl_c_in_predict_is_one_line_and_exit_130(tmp_path, sheet_png, digit_model_path):
    path, _ = sheet_png
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT), "PYTHONUNBUFFERED": "1"}
    # As at a terminal: Python's own Ctrl-C handler, even when the tests run as a background job
    # (whose SIGINT the shell ignores, and so, inherited, does every program it starts).
    start = (
        "import runpy, signal, sys; signal.signal(signal.SIGINT, signal.default_int_handler); "
        "sys.argv[0] = 'predict'; runpy.run_module('scratchcnn.predict', run_name='__main__')"
    )
    process = subprocess.Popen(
        [sys.executable, "-c", start, "--model", str(digit_model_path)] + [str(path)] * 500,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=REPO_ROOT,
    )  # fmt: skip
    try:
        assert process.stdout.readline().startswith('{"file"')  # reading, past the imports
        process.send_signal(signal.SIGINT)
        _, stderr = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 130
    assert stderr.strip().splitlines() == ["python -m scratchcnn.predict: interrupted"]


# -- the window's drawing ----------------------------------------------------------------------
def test_labels_never_overlap_each_other_or_the_info_bar():
    image = np.full((300, 500, 3), 255, np.uint8)
    placer = LabelPlacer(image, 0.6)
    placer.reserve((0, 0, 260, 30))
    boxes = [(10 + 28 * i, 20 + (i % 2) * 6, 26, 40) for i in range(16)]  # a crowded row
    placed = [placer.place(f"{i % 10} 99%", box, (0, 255, 0)) for i, box in enumerate(boxes)]
    rects = placer.taken[1:]
    assert len(rects) == sum(placed) >= 8
    for i, a in enumerate(placer.taken):
        for b in placer.taken[i + 1 :]:
            assert not (a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]), (a, b)


def test_a_large_photo_is_drawn_scaled_with_boxes_in_frame_pixels():
    frame = np.full((3000, 4000, 3), 230, np.uint8)
    probs = np.full(10, 0.01, np.float32)
    probs[7] = 0.91
    det = Detection((2000, 1000, 400, 600), 7, 0.91, probs)
    shown = draw_detections(frame, [det], scale=0.25)
    assert shown.shape == (750, 1000, 3)
    green = (shown[:, :, 1] > 200) & (shown[:, :, 0] < 60) & (shown[:, :, 2] < 60)
    ys, xs = np.nonzero(green)
    assert 595 <= xs.max() <= 602 and 395 <= ys.max() <= 402  # the box's far corner, scaled
    assert det.to_dict()["box"] == [2000, 1000, 400, 600]


def test_debug_view_shows_rejected_candidates_with_a_reason():
    frame = np.full((240, 320), 235, np.uint8)
    cv2.putText(frame, "8", (120, 170), cv2.FONT_HERSHEY_SIMPLEX, 3, 20, 8)
    cv2.rectangle(frame, (0, 60), (30, 140), 20, 5)  # cut by the frame's edge
    result = DigitReader(FakeModel()).read(frame)
    assert [reason for _, reason in result.rejected] == ["cut by the edge"]
    view = debug_view(frame, result, strip_rows=2)
    red = (view[:, :, 2] > 200) & (view[:, :, 1] < 60) & (view[:, :, 0] < 60)
    assert red[:240].sum() > 100
    assert view.shape[0] == debug_view(frame, result, strip_rows=2).shape[0] > 240


def test_window_fits_the_screen():
    module = load_webcam()
    assert module.fit_scale((4000, 3000), (1920, 1080), debug=False) * 3000 <= 0.9 * 1080
    assert module.fit_scale((640, 480), (1920, 1080), debug=True) == 1.0
    big = module.fit_scale((4000, 3000), (1280, 800), debug=True)
    assert 3000 * big + 2 * (28 * 3 + 26) <= 800


def load_webcam():
    import importlib.util

    spec = importlib.util.spec_from_file_location("webcam_example", WEBCAM)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
def test_headless_debug_screenshot_is_the_debug_view(tmp_path, sheet_png, digit_model_path):
    path, _ = sheet_png
    shot = tmp_path / "shot.png"
    result = run_python(
        [WEBCAM, "--image", path, "--headless", "--debug", "--screenshot", shot,
         "--model", digit_model_path]
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    height = cv2.imread(str(path)).shape[0]
    assert cv2.imread(str(shot)).shape[0] > height  # the mask above the strip of crops


# -- ground truth of the synthetic video and the scoring command ------------------------------
@pytest.mark.slow
def test_synthetic_video_has_ground_truth_that_score_reads(tmp_path, mnist_dir, digit_model_path):
    video = tmp_path / "demo.avi"
    made = run_python(
        ["-m", "scratchcnn.synthetic", video, "--frames", "4", "--digits", "3",
         "--data-dir", mnist_dir]
    )  # fmt: skip
    assert made.returncode == 0, made.stderr
    truth = truth_path_for(video)
    document = json.loads(truth.read_text())
    assert document["format"] == "scratchcnn-truth" and len(document["frames"]) == 4
    assert all(len(f["digits"]) == 3 for f in document["frames"])
    read = run_python([WEBCAM, "--video", video, "--headless", "--model", digit_model_path])
    assert read.returncode == 0, read.stderr
    lines = tmp_path / "lines.jsonl"
    lines.write_text(read.stdout)
    scored = run_python(["-m", "scratchcnn.score", truth, lines, "--json", tmp_path / "s.json"])
    assert scored.returncode == 0, scored.stderr
    assert "4 frames, 12 digits" in scored.stdout
    numbers = json.loads((tmp_path / "s.json").read_text())
    assert numbers["found"] >= 11 and numbers["read"] >= 10
    wrong = run_python(["-m", "scratchcnn.score", lines, lines])
    assert wrong.returncode == 2 and "not a ground-truth file" in wrong.stderr
