"""The frame pipeline's pieces, without a trained network: MNIST normalization, candidate merging,
reading order, odd frames, frame sources and their errors, the renderer."""

import cv2
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from scratchcnn.reader.annotate import crop_strip, debug_view, draw_detections, window_problem
from scratchcnn.reader.boxes import merge_pieces, reading_order
from scratchcnn.reader.ink import to_gray
from scratchcnn.reader.normalize import MNIST_CENTER, center_of_mass, deskew, normalize_digit
from scratchcnn.reader.sources import SourceError, open_camera, open_image, open_video, read_image
from scratchcnn.reader.vision import DigitReader


class FakeModel:
    """predict_proba that records its calls and answers "3" for every crop."""

    def __init__(self, digit=3, confidence=0.9):
        self.calls = []
        self.digit, self.confidence = digit, confidence

    def predict_proba(self, x):
        self.calls.append(x.copy())
        p = np.full((len(x), 10), (1 - self.confidence) / 9, dtype=np.float32)
        p[:, self.digit] = self.confidence
        return p


def ink_extent(image, level=0.05):
    ys, xs = np.nonzero(image > level)
    return ys.min(), ys.max() + 1, xs.min(), xs.max() + 1


# -- normalization --------------------------------------------------------------------------------
def shape_image(kind, h, w):
    img = np.zeros((h, w), np.uint8)
    t = max(1, min(h, w) // 6)
    if kind == "ellipse":
        cv2.ellipse(
            img, (w // 2, h // 2), (max(1, w // 2 - t), max(1, h // 2 - t)), 0, 0, 360, 255, t
        )
    elif kind == "bar":  # a "1"
        cv2.line(img, (w // 2, 0), (w // 2, h - 1), 255, max(1, w // 2))
    elif kind == "seven":
        cv2.line(img, (0, t // 2), (w - 1, t // 2), 255, t)
        cv2.line(img, (w - 1, 0), (w // 3, h - 1), 255, t)
    return img


@pytest.mark.parametrize(
    ("kind", "h", "w"),
    [
        ("ellipse", 120, 80),
        ("ellipse", 40, 90),  # wider than tall
        ("bar", 200, 14),
        ("bar", 65, 8),  # 2 pixels wide at 20x20: cv2.moments would take it for a point list
        ("seven", 60, 45),
        ("ellipse", 9, 7),  # smaller than the 20-pixel box: scaled up
    ],
)
def test_normalized_digit_is_centered_by_mass_fits_20x20_and_keeps_aspect(kind, h, w):
    ink = shape_image(kind, h, w)
    ys, xs = np.nonzero(ink)
    ink = ink[ys.min() : ys.max() + 1, xs.min() : xs.max() + 1]
    out = normalize_digit(ink)
    assert out.shape == (28, 28) and out.dtype == np.float32
    assert 0.0 <= out.min() and 0.4 < out.max() <= 1.0  # a 1-px stroke shifted by half a pixel: 0.5
    cy, cx = center_of_mass(out)
    assert np.hypot(cy - MNIST_CENTER, cx - MNIST_CENTER) <= 0.5
    y0, y1, x0, x1 = ink_extent(out)
    oh, ow = y1 - y0, x1 - x0
    assert max(oh, ow) <= 21  # 20 pixels, plus one of sub-pixel shift blur
    assert max(oh, ow) >= 19
    expected = ink.shape[1] / ink.shape[0]
    # Aspect kept to within the one-pixel rounding of the shorter side.
    assert abs(ow / oh - expected) <= 2.5 / min(oh, ow) * max(expected, 1)


@settings(max_examples=40, deadline=None)
@given(
    h=st.integers(8, 300),
    aspect=st.floats(0.15, 1.4),
    angle=st.floats(-30, 30),
    thickness=st.integers(1, 12),
)
def test_center_of_mass_within_half_a_pixel_for_random_strokes(h, aspect, angle, thickness):
    w = max(3, int(h * aspect))
    ink = np.zeros((h + 2 * thickness, w + 2 * thickness), np.uint8)
    c = (ink.shape[1] // 2, ink.shape[0] // 2)
    cv2.ellipse(ink, c, (w // 2, h // 2), angle, 30, 300, 255, thickness)
    ys, xs = np.nonzero(ink)
    ink = ink[ys.min() : ys.max() + 1, xs.min() : xs.max() + 1]
    out = normalize_digit(ink)
    cy, cx = center_of_mass(out)
    assert np.hypot(cy - MNIST_CENTER, cx - MNIST_CENTER) <= 0.5
    y0, y1, x0, x1 = ink_extent(out)
    assert max(y1 - y0, x1 - x0) <= 21


def test_normalize_empty_and_blank_ink():
    assert not normalize_digit(np.zeros((0, 5))).any()
    assert not normalize_digit(np.zeros((30, 20), np.uint8)).any()


def test_deskew_straightens_a_slanted_bar():
    img = np.zeros((28, 28), np.float32)
    cv2.line(img, (9, 24), (18, 4), 1.0, 3)
    m = cv2.moments(img)
    straight = deskew(img)
    m2 = cv2.moments(straight)
    assert abs(m2["mu11"] / m2["mu02"]) < 0.1 * abs(m["mu11"] / m["mu02"])
    assert np.allclose(center_of_mass(straight), center_of_mass(img), atol=0.3)


# -- candidates -----------------------------------------------------------------------------------
def test_pieces_of_one_digit_merge_but_neighbours_and_rows_do_not():
    body, bar = (100, 120, 40, 50), (102, 108, 38, 8)  # a 5 whose top bar is detached
    right = (160, 120, 40, 50)  # the next digit in the row
    below = (100, 190, 40, 50)  # the digit under it in the next row
    dot = (115, 140, 6, 6)  # a speck inside the body's box
    groups = merge_pieces([body, bar, right, below, dot])
    assert sorted(groups) == [[0, 1, 4], [2], [3]]


def test_halves_of_a_digit_broken_by_a_hairline_merge():
    top, bottom = (50, 50, 30, 30), (52, 81, 28, 30)
    assert merge_pieces([top, bottom]) == [[0, 1]]


def test_reading_order_rows_top_to_bottom_left_to_right():
    rng = np.random.default_rng(0)
    expected = []
    for row in range(3):
        for col in range(5):
            h = int(rng.integers(30, 60))
            # Rows wobble and tilt a little; heights differ within a row.
            y = 40 + row * 110 + int(rng.integers(-8, 9)) + col * 3
            expected.append((30 + col * 70, y, int(rng.integers(10, 45)), h))
    shuffled = rng.permutation(len(expected))
    boxes = [expected[i] for i in shuffled]
    order = reading_order(boxes)
    assert [boxes[i] for i in order] == expected
    assert reading_order([]) == []


def draw_digits_frame(positions, size=(480, 640), paper=200):
    """A gray frame with a dark "0" ring at each (x, y, h)."""
    frame = np.full(size, paper, np.uint8)
    for x, y, h in positions:
        cv2.ellipse(frame, (x, y), (h // 3, h // 2), 0, 0, 360, 40, max(2, h // 8))
    return frame


def test_one_batched_prediction_per_frame_in_reading_order():
    frame = draw_digits_frame([(400, 100, 60), (100, 110, 50), (250, 300, 80), (100, 320, 40)])
    # Rings 2/3 as wide as tall, read at 0.9: each might be two narrow digits touching, so the
    # parts of all four are read too, in one more batch; read surely, they are not.
    unsure = FakeModel(confidence=0.9)
    DigitReader(unsure).read(frame)
    assert [len(x) for x in unsure.calls] == [4, 8]
    model = FakeModel(confidence=0.995)
    result = DigitReader(model).read(cv2.cvtColor(frame, cv2.COLOR_GRAY2BGR))
    assert len(model.calls) == 1 and model.calls[0].shape == (4, 1, 28, 28)
    assert model.calls[0].dtype == np.float32
    assert [d.box[0] < 200 for d in result.detections] == [True, False, True, False]
    assert [d.box[1] < 200 for d in result.detections] == [True, True, False, False]
    assert all(d.digit == 3 and d.probabilities.shape == (10,) for d in result.detections)
    assert result.text == "3 3\n3 3"  # rows by newlines; the wide gaps split each row in two
    assert result.mask.shape == frame.shape and result.crops.shape == (4, 1, 28, 28)
    d = result.detections[0].to_dict()
    assert set(d) == {"digit", "confidence", "box", "unsure", "second"} and len(d["box"]) == 4


def test_min_confidence_drops_unsure_detections():
    frame = draw_digits_frame([(200, 200, 60)])
    assert (
        len(DigitReader(FakeModel(confidence=0.4), min_confidence=0.5).read(frame).detections) == 0
    )
    assert (
        len(DigitReader(FakeModel(confidence=0.6), min_confidence=0.5).read(frame).detections) == 1
    )


def test_uneven_light_does_not_hide_digits_or_make_new_ones():
    h, w = 480, 640
    ramp = np.linspace(0.35, 1.0, w, dtype=np.float32)[None, :] * np.ones((h, 1), np.float32)
    frame = draw_digits_frame([(120, 240, 70), (500, 240, 70)]).astype(np.float32) * ramp
    rng = np.random.default_rng(0)
    frame = np.clip(frame + rng.normal(0, 4, frame.shape), 0, 255).astype(np.uint8)
    result = DigitReader(FakeModel()).read(frame)
    assert len(result.detections) == 2


@pytest.mark.parametrize("border", [8, 40, 90])
def test_a_sheet_on_a_dark_desk_does_not_swallow_its_digits(border):
    desk = np.full((480, 640), 50, np.uint8)
    sheet = draw_digits_frame([(200, 200, 60), (400, 220, 70), (300, 330, 50)])
    desk[border:-border, border:-border] = sheet[border:-border, border:-border]
    noisy = np.clip(desk + np.random.default_rng(border).normal(0, 3, desk.shape), 0, 255)
    result = DigitReader(FakeModel()).read(noisy.astype(np.uint8))
    assert len(result.detections) == 3


def test_a_digit_inside_a_drawn_frame_is_found():
    frame = draw_digits_frame([(320, 240, 80)])
    cv2.rectangle(frame, (200, 140), (440, 340), 40, 4)  # rings the digit: its hole holds it
    result = DigitReader(FakeModel()).read(frame)
    assert [d.box[3] for d in result.detections] == pytest.approx(
        [90], abs=5
    )  # the ring, not the frame


def test_strokes_of_a_fine_pen_are_thickened_to_mnist_width():
    frame = np.full((480, 640), 210, np.uint8)
    cv2.polylines(frame, [np.int32([[80, 150], [200, 150], [120, 330]])], False, 40, 2, cv2.LINE_AA)
    cv2.line(frame, (520, 150), (520, 330), 40, 2, cv2.LINE_AA)  # a "1" as wide as its box
    thick = DigitReader(FakeModel()).read(frame).crops[:, 0]
    thin = DigitReader(FakeModel(), thicken=False).read(frame).crops[:, 0]
    for crop in thick:  # MNIST strokes are 2-3 pixels wide at 28x28
        assert 2 <= (crop[14] > 0.5).sum() <= 5
    assert (thin[:, 14] > 0.5).sum(axis=1).min() <= 1
    assert all(a.sum() > 1.5 * b.sum() for a, b in zip(thick, thin, strict=True))


def odd_frames():
    rng = np.random.default_rng(3)
    h, w = 480, 640
    gradient = np.linspace(60, 250, w)[None, :] * np.linspace(0.6, 1.0, h)[:, None]
    noisy = np.clip(gradient + rng.normal(0, 8, (h, w)), 0, 255).astype(np.uint8)
    return {
        "white": np.full((h, w, 3), 255, np.uint8),
        "black": np.zeros((h, w, 3), np.uint8),
        "mid gray": np.full((h, w), 128, np.uint8),
        "gradient with noise": noisy,
        "noise only": rng.integers(0, 256, (h, w), dtype=np.uint8),
        "tiny": np.full((5, 5, 3), 200, np.uint8),
        "one pixel": np.zeros((1, 1), np.uint8),
        "empty": np.zeros((0, 0, 3), np.uint8),
        "float": np.full((100, 100), 0.8, np.float32),
        "uint16": np.full((100, 100), 40000, np.uint16),
        "bgra": np.full((100, 100, 4), 200, np.uint8),
        "1-d": np.zeros(10, np.uint8),
        "5 channels": np.zeros((50, 50, 5), np.uint8),
    }


@pytest.mark.parametrize("border", [20, 40, 80])
@pytest.mark.parametrize("tilted", [False, True])
@pytest.mark.parametrize("size", [(480, 640), (300, 300)])
def test_a_blank_page_framed_by_the_desk_is_not_a_digit(border, tilted, size):
    """A photo of an empty sheet on a desk: the desk's dark frame touches all four edges and
    fills the image, as a tight crop of a wide "0" does, but it runs all along the image's
    border, where a digit's strokes touch it here and there. And the page's blurred edge, a
    little darker than the page just inside it, rings the page like a drawn "0", but the desk
    beyond it is darker still: the edge of a dark region, not a stroke on paper."""
    rng = np.random.default_rng(border)
    h, w = size
    frame = np.full((h, w), 70.0)
    if tilted:
        page = np.array([[0.15 * w, 0.1 * h], [0.9 * w, 0.05 * h], [0.85 * w, 0.92 * h],
                         [0.1 * w, 0.95 * h]], np.int32)  # fmt: skip
        cv2.fillPoly(frame, [page], 225)
    else:
        frame[border:-border, border:-border] = 225
        frame = cv2.GaussianBlur(frame, (0, 0), 3)
    frame = np.clip(frame + rng.normal(0, 3, frame.shape), 0, 255).astype(np.uint8)
    assert DigitReader(FakeModel()).read(frame).all_detections == []


@pytest.mark.parametrize("name", list(odd_frames()))
def test_blank_saturated_tiny_and_malformed_frames_give_no_detections(name):
    model = FakeModel()
    frame = odd_frames()[name]
    result = DigitReader(model).read(frame)
    if name != "noise only":  # pure noise may make a blob or two, but never an exception
        assert result.detections == [] and model.calls == []
    assert result.crops.shape[1:] == (1, 28, 28)
    # Drawing copes with the same frames.
    if frame.ndim >= 2 and frame.size:
        draw_detections(frame, result.detections, fps=30.0)
        debug_view(frame, result)


def test_to_gray_conversions():
    assert to_gray(np.zeros((4, 5, 3), np.uint8)).shape == (4, 5)
    assert to_gray(np.ones((4, 5), np.float64))[0, 0] == 255
    assert to_gray(np.zeros((4, 5, 1), np.uint8)).shape == (4, 5)
    assert to_gray(np.zeros((4,), np.uint8)) is None


def test_debug_view_shows_mask_and_crop_strip():
    frame = draw_digits_frame([(200, 200, 60), (400, 200, 60)])
    result = DigitReader(FakeModel()).read(frame)
    view = debug_view(frame, result)
    assert view.shape[1] == 640 and view.shape[0] > 480 and view.dtype == np.uint8
    strip = crop_strip(result.crops, ["3 90%"] * 2, width=640)
    assert strip.shape[1] == 640 and (strip > 200).any()


# -- sources --------------------------------------------------------------------------------------
def test_camera_that_will_not_open():
    with pytest.raises(SourceError, match="camera 97 will not open"):
        open_camera(97)


def test_missing_and_unreadable_files(tmp_path):
    with pytest.raises(SourceError, match="nothing.avi: no such file"):
        open_video(tmp_path / "nothing.avi")
    garbage = tmp_path / "garbage.avi"
    garbage.write_bytes(b"RIFF this is not a video" * 50)
    with pytest.raises(SourceError, match="garbage.avi: cannot read it as a video"):
        open_video(garbage)
    with pytest.raises(SourceError, match="garbage.avi: cannot read it as an image"):
        read_image(garbage)
    empty = tmp_path / "empty.png"
    empty.write_bytes(b"")
    with pytest.raises(SourceError, match="empty.png: cannot read it as an image"):
        open_image(empty)
    with pytest.raises(SourceError, match="is a directory"):
        read_image(tmp_path)


def test_image_source_serves_one_frame(tmp_path):
    path = tmp_path / "frame.png"
    cv2.imwrite(str(path), np.full((20, 30), 200, np.uint8))
    with open_image(path) as source:
        assert source.still and source.read().shape == (20, 30, 3) and source.read() is None


def test_video_source_reads_back_mjpg_and_loops(tmp_path):
    from scratchcnn.reader.synthetic import write_video

    frames = [np.full((48, 64, 3), 40 * i, np.uint8) for i in range(3)]
    path = write_video(tmp_path / "v.avi", frames, fps=10)
    with open_video(path) as source:
        got = [source.read() for _ in range(4)]
    assert [g is not None for g in got] == [True, True, True, False]
    assert source.fps == pytest.approx(10)
    with open_video(path, loop=True) as source:
        assert all(source.read() is not None for _ in range(7))


def test_window_problem_without_display(monkeypatch):
    monkeypatch.setattr("sys.platform", "linux")
    for var in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM"):
        monkeypatch.delenv(var, raising=False)
    problem = window_problem()
    assert problem is not None and ("DISPLAY" in problem or "without a GUI" in problem)


def test_predict_threads_one_reads_a_frame_on_the_calling_thread_alone(monkeypatch):
    """``predict_threads=1`` (the default) holds the crops' prediction to the calling thread, even
    when the kernels may use two and the crops are more than one block."""
    import threading

    import scratchcnn as sc
    from scratchcnn.nn.kernels import conv

    frame = np.full((240, 640, 3), 235, np.uint8)
    for i in range(10):  # ten digits in a row: more crops than the small-batch path takes
        cv2.putText(frame, str(i), (12 + 62 * i, 150), cv2.FONT_HERSHEY_SIMPLEX, 2.2, (20,) * 3, 6)
    ran_on, real_matmul = [], np.matmul

    def recording_matmul(*args, **kwargs):
        ran_on.append(threading.current_thread().name)
        return real_matmul(*args, **kwargs)

    monkeypatch.setattr(conv, "BLOCK_BYTES", 1)  # one crop per block: ten blocks per layer
    sc.set_threads(2)
    try:
        reader = DigitReader(sc.build_model("keras-example", seed=0))
        monkeypatch.setattr(np, "matmul", recording_matmul)
        result = reader.read(frame)
    finally:
        sc.set_threads(None)
    assert len(result.crops) == 10
    assert ran_on and set(ran_on) == {threading.current_thread().name}
