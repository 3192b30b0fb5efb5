"""The whole trip on realistic frames: MNIST test digits on unevenly lit paper, written to a video
with OpenCV, read back by the pipeline, by the headless webcam example and by the predict CLI,
and shown in a real window under Xvfb."""

import json
import os
import shutil
import subprocess
import sys
import time

import cv2
import numpy as np
import pytest
from conftest import REPO_ROOT, run_python

from scratchcnn.reader.synthetic import FrameRenderer, MatchCounts, write_video
from scratchcnn.reader.vision import DigitReader

WEBCAM = REPO_ROOT / "examples" / "webcam.py"
N_FRAMES = 60


def run(args, timeout=300, env=None):
    """Run python with ``args``; the same kernels as this process, so the numbers match."""
    import scratchcnn as sc

    return run_python(args, backend=sc.backend_name(), timeout=timeout, env=env)


@pytest.fixture(scope="module")
def frames(mnist_test_set):
    """60 frames of 1 to 10 digits each (about 330 digits), and 20 frames of blank paper."""
    renderer = FrameRenderer(*mnist_test_set)
    rng = np.random.default_rng(2024)
    rendered = [renderer.render(rng, int(rng.integers(1, 11))) for _ in range(N_FRAMES)]
    blanks = [renderer.blank(rng) for _ in range(20)]
    return [f for f, _ in rendered], [t for _, t in rendered], blanks


@pytest.fixture(scope="module")
def videos(frames, tmp_path_factory):
    out = tmp_path_factory.mktemp("videos")
    images, _, blanks = frames
    return write_video(out / "digits.avi", images, fps=30), write_video(out / "blank.avi", blanks)


def read_video(path):
    capture = cv2.VideoCapture(str(path))
    frames = []
    while True:
        ok, frame = capture.read()
        if not ok:
            break
        frames.append(frame)
    capture.release()
    return frames


@pytest.fixture(scope="module")
def library_results(digit_model, videos):
    """The pipeline run in-process over the video as OpenCV reads it back (MJPG decoded)."""
    reader = DigitReader(digit_model, min_confidence=0.5)
    return [reader.read(frame) for frame in read_video(videos[0])]


def report(counts: MatchCounts) -> str:
    return (
        f"{counts.matched}/{counts.truths} digits detected ({counts.detection_rate:.1%}), "
        f"{counts.correct}/{counts.matched} read correctly ({counts.reading_accuracy:.1%}), "
        f"{counts.false_positives} false positives in {counts.detections} detections"
    )


@pytest.mark.slow
def test_pipeline_detects_and_reads_95_percent_of_digits(frames, library_results):
    _, truths, _ = frames
    assert len(library_results) == N_FRAMES
    counts = MatchCounts()
    for truth, result in zip(truths, library_results, strict=True):
        counts.add(truth, result.detections)
    print(report(counts))
    assert counts.truths >= 250
    assert counts.detection_rate >= 0.95, report(counts)
    assert counts.reading_accuracy >= 0.95, report(counts)
    assert counts.false_positives <= 0.03 * counts.detections, report(counts)


@pytest.mark.slow
def test_no_detections_on_blank_paper(digit_model, videos):
    reader = DigitReader(digit_model)  # no confidence filter: not even a candidate
    blanks = read_video(videos[1])
    assert len(blanks) == 20
    found = [len(reader.read(frame).detections) for frame in blanks]
    assert sum(found) == 0, found


@pytest.mark.slow
def test_headless_webcam_prints_the_same_detections(
    digit_model_path, videos, frames, library_results, tmp_path
):
    saved = tmp_path / "annotated.avi"
    result = run(
        [WEBCAM, "--video", videos[0], "--headless", "--model", digit_model_path,
         "--save-video", saved]
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert [line["frame"] for line in lines] == list(range(N_FRAMES))
    expected = [[d.to_dict() for d in r.all_detections] for r in library_results]
    assert [line["detections"] for line in lines] == expected
    assert [line["text"] for line in lines] == [r.text for r in library_results]
    counts = MatchCounts()
    for truth, line in zip(frames[1], lines, strict=True):
        counts.add(truth, [d for d in line["detections"] if not d["unsure"]])
    assert counts.detection_rate >= 0.95 and counts.reading_accuracy >= 0.95, report(counts)
    written = read_video(saved)
    assert len(written) == N_FRAMES and written[0].shape == (480, 640, 3)


@pytest.mark.slow
def test_headless_webcam_max_frames_and_blank_video(digit_model_path, videos):
    result = run([WEBCAM, "--video", videos[1], "--headless", "--model", digit_model_path,
                  "--max-frames", "5", "--min-confidence", "0"])  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        json.dumps({"frame": i, "detections": [], "text": ""}) for i in range(5)
    ]


@pytest.mark.slow
def test_predict_cli_on_images(digit_model, digit_model_path, frames, tmp_path):
    images, truths, blanks = frames
    paths = []
    for i in range(3):
        paths.append(tmp_path / f"sheet {i}.png")
        cv2.imwrite(str(paths[-1]), images[i])
    cv2.imwrite(str(tmp_path / "blank.jpg"), blanks[0])
    bad = tmp_path / "notes.txt"
    bad.write_text("not an image")
    result = run(
        ["-m", "scratchcnn.predict", *paths, tmp_path / "blank.jpg", bad,
         "--model", digit_model_path]
    )  # fmt: skip
    assert result.returncode == 2
    assert (
        result.stderr.strip()
        .splitlines()[-1]
        .endswith(f"{bad}: cannot read it as an image (PNG, JPEG, BMP, TIFF, ...)")
    )
    assert "Traceback" not in result.stderr
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert [line["file"] for line in lines] == [str(p) for p in paths] + [
        str(tmp_path / "blank.jpg")
    ]
    assert lines[-1]["detections"] == []
    reader = DigitReader(digit_model, min_confidence=0.5)
    for image, line in zip(images, lines[:3], strict=False):
        assert line["detections"] == [d.to_dict() for d in reader.read(image).all_detections]
    assert sum(len(line["detections"]) for line in lines) >= sum(map(len, truths[:3])) - 1


# -- errors: one line, exit code 2, no traceback ---------------------------------------------------
@pytest.fixture(scope="module")
def untrained_model_path(tmp_path_factory):
    """A model file that loads (its weights do not matter where an error comes first)."""
    import scratchcnn as sc

    path = tmp_path_factory.mktemp("untrained") / "lenet5.npz"
    sc.save_model(sc.build_model("lenet5", seed=0), path)
    return path


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--camera", "97", "--headless"], "camera 97 will not open"),
        (["--video", "missing.avi", "--headless"], "missing.avi: no such file"),
        (["--image", "missing.png", "--headless"], "missing.png: no such file"),
        (["--video", "README.md", "--headless"], "README.md: cannot read it as a video"),
        (["--image", "README.md", "--headless"], "README.md: cannot read it as an image"),
        (["--image", "README.md", "--headless", "--min-confidence", "2"], "--min-confidence"),
        (["--headless", "--save-video", "/nonexistent/out.avi"], "/nonexistent does not exist"),
        (["--headless", "--max-frames", "0"], "--max-frames must be >= 1"),
    ],
)
def test_webcam_errors_are_one_line(untrained_model_path, args, message):
    result = run([WEBCAM, *args, "--model", untrained_model_path], env={"DISPLAY": ""})
    assert result.returncode == 2
    errors = [line for line in result.stderr.splitlines() if line.startswith("webcam.py")]
    assert len(errors) == 1 and message in errors[0], result.stderr
    assert "Traceback" not in result.stderr and "WARN" not in result.stderr


def test_missing_model_hints_to_train_first(tmp_path):
    result = run([WEBCAM, "--image", "x.png", "--headless", "--model", tmp_path / "none.npz"])
    assert result.returncode == 2
    assert "none.npz: no such model file" in result.stderr
    assert "python -m scratchcnn.train" in result.stderr
    result = run(["-m", "scratchcnn.predict", "x.png", "--model", tmp_path / "none.npz"])
    assert result.returncode == 2 and "python -m scratchcnn.train" in result.stderr


def test_default_model_path_is_where_train_saves():
    from scratchcnn.reader.options import DEFAULT_MODEL
    from scratchcnn.training.train import DEFAULT_OUTPUT

    assert DEFAULT_MODEL == DEFAULT_OUTPUT


def test_window_without_display_is_a_one_line_error(untrained_model_path):
    env = {"DISPLAY": "", "WAYLAND_DISPLAY": "", "QT_QPA_PLATFORM": ""}
    result = run([WEBCAM, "--image", "README.md", "--model", untrained_model_path], env=env)
    assert result.returncode == 2
    assert "use --headless" in result.stderr and "Traceback" not in result.stderr


# -- the window, under Xvfb -----------------------------------------------------------------------
def green_pixels(path) -> int:
    """Pixels of the annotation boxes' pure green (BGR 0, 255, 0) in an image file."""
    image = cv2.imread(str(path))
    if image is None:
        return 0
    b, g, r = image[:, :, 0].astype(int), image[:, :, 1].astype(int), image[:, :, 2].astype(int)
    return int(((g > 200) & (r < 60) & (b < 60)).sum())


@pytest.fixture
def xvfb_display():
    """A fresh Xvfb server; skips when Xvfb or a GUI-capable OpenCV is missing."""
    from scratchcnn.reader.annotate import window_problem

    if shutil.which("Xvfb") is None:
        pytest.skip("Xvfb is not installed (apt-get install xvfb)")
    # Xvfb picks a free display itself and writes its number to our pipe (-displayfd): two test
    # runs at once cannot choose the same one, as they could by looking for lock files.
    read_end, write_end = os.pipe()
    server = subprocess.Popen(
        ["Xvfb", "-displayfd", str(write_end), "-screen", "0", "1024x768x24", "-nolisten", "tcp"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        pass_fds=(write_end,),
    )
    os.close(write_end)
    with os.fdopen(read_end) as announced:
        number = announced.readline().strip()  # once the server is ready for clients
    if not number.isdigit():
        server.kill()
        pytest.skip("Xvfb did not start")
    display = f":{number}"
    saved = os.environ.get("DISPLAY")
    os.environ["DISPLAY"] = display
    try:
        problem = window_problem()
    finally:
        if saved is None:
            del os.environ["DISPLAY"]
        else:
            os.environ["DISPLAY"] = saved
    if problem:
        server.terminate()
        server.wait(timeout=10)
        pytest.skip(problem)
    try:
        yield display
    finally:
        server.terminate()
        server.wait(timeout=10)


@pytest.mark.slow
@pytest.mark.parametrize("view", ["annotated", "debug"])
def test_window_shows_annotated_frames_under_xvfb(
    xvfb_display, digit_model_path, videos, tmp_path, view
):
    shot = tmp_path / "shown.png"
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT), "DISPLAY": xvfb_display}
    extra = ["--debug"] if view == "debug" else []
    app = subprocess.Popen(
        [sys.executable, str(WEBCAM), "--video", str(videos[0]), "--loop", "--max-frames", "450",
         "--model", str(digit_model_path), "--screenshot", str(shot), *extra],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO_ROOT, env=env,
    )  # fmt: skip
    captured = 0  # 450 frames at the video's 30 fps: 15 s of window for the screen captures
    try:
        if shutil.which("import"):  # ImageMagick: capture the X screen itself
            root = tmp_path / "screen.png"
            while app.poll() is None and captured < 500:
                subprocess.run(
                    ["import", "-window", "root", str(root)],
                    env={**os.environ, "DISPLAY": xvfb_display},
                    capture_output=True,
                    timeout=30,
                )
                captured = green_pixels(root)
                time.sleep(0.2)
        stdout, stderr = app.communicate(timeout=120)
    finally:
        if app.poll() is None:
            app.kill()
    assert app.returncode == 0, stderr
    assert "Traceback" not in stderr
    assert shot.exists() and green_pixels(shot) > 500
    height = cv2.imread(str(shot)).shape[0]
    assert height > 480 if view == "debug" else height == 480  # the debug view adds the crops
    if shutil.which("import"):
        assert captured > 500, "the window never showed annotation boxes on the X screen"


def load_webcam_module():
    import importlib.util

    spec = importlib.util.spec_from_file_location("webcam_example", WEBCAM)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_window_keys(tmp_path, capsys):
    keys = load_webcam_module().Keys(tmp_path / "shots")
    image = np.zeros((10, 10, 3), np.uint8)
    assert not keys.press(ord("d"), image) and keys.debug
    assert not keys.press(ord("d"), image) and not keys.debug
    assert not keys.press(ord(" "), image) and keys.paused
    assert not keys.press(-1, image) and keys.paused  # no key
    assert not keys.press(ord("s"), image) and not keys.press(ord("s"), image)
    assert len(list((tmp_path / "shots").glob("snapshot-*.png"))) == 2
    assert "saved" in capsys.readouterr().out
    assert keys.press(ord("q"), image) and keys.press(27, image)


def test_the_window_is_fitted_to_the_screen_it_opens_on(xvfb_display):
    """The webcam example asks the X server for the screen's size (Xvfb's is 1024x768)."""
    code = "import runpy, sys; print(*runpy.run_path(sys.argv[1])['screen_size']())"
    result = run_python(["-c", code, WEBCAM], env={"DISPLAY": xvfb_display})
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["1024", "768"]
