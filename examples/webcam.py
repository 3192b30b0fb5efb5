"""Read handwritten digits live: from a webcam, a video file or an image, in a window or headless.

    python examples/webcam.py                      # camera 0, in a window
    python examples/webcam.py --video digits.avi   # a video file
    python examples/webcam.py --image sheet.jpg    # a photo (the window stays until you quit)
    python examples/webcam.py --video digits.avi --headless   # one JSON line per frame

Keys in the window: d debug view (threshold mask and the 28x28 crops the network sees),
space pause, s snapshot PNG, q or Esc quit.

The work is done by the library: scratchcnn.reader.vision (frame -> digits), reader.annotate
(drawing), reader.sources (camera, video, image). This file is the loop around them.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

_REPO = Path(__file__).resolve().parents[1]
if (_REPO / "scratchcnn" / "__init__.py").exists():  # run from a checkout: use its scratchcnn
    sys.path.insert(0, str(_REPO))

PROG = "webcam.py"
try:  # Ctrl-C while the libraries load is one line too
    import cv2
    import numpy as np

    from scratchcnn.cli import EXIT_INTERRUPTED, CLIError, run_cli
    from scratchcnn.reader.annotate import debug_view, draw_detections, window_problem
    from scratchcnn.reader.options import (
        add_reader_arguments,
        make_reader,
        parse_rotate,
        result_json,
    )
    from scratchcnn.reader.sources import open_camera, open_image, open_video, quiet_opencv
except KeyboardInterrupt:
    print(f"{PROG}: interrupted", file=sys.stderr)
    sys.exit(130)

WINDOW = "scratchcnn: handwritten digits (d debug, space pause, s snapshot, q quit)"
KEY_ESC = 27


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog=PROG, description=__doc__.split("\n\n")[0])
    source = p.add_mutually_exclusive_group()
    source.add_argument(
        "--camera",
        type=int,
        default=0,
        metavar="N",
        help="camera number >= 0 (default 0; on Linux one of the /dev/videoN that exist)",
    )
    source.add_argument("--video", type=Path, metavar="PATH", help="read a video file instead")
    source.add_argument("--image", type=Path, metavar="PATH", help="read a still image instead")
    add_reader_arguments(p)
    p.add_argument("--headless", action="store_true", help="no window: one JSON line per frame")
    p.add_argument("--save-video", type=Path, metavar="OUT", help="write annotated frames (.avi)")
    p.add_argument("--max-frames", type=int, metavar="N", help="stop after N frames")
    p.add_argument("--loop", action="store_true", help="replay the video (or image) at its end")
    p.add_argument(
        "--screenshot", type=Path, metavar="PATH", help="save the last shown image as PNG at exit"
    )
    p.add_argument(
        "--snapshot-dir", type=Path, default=Path("."), help="where key s saves (default .)"
    )
    p.add_argument("--debug", action="store_true", help="start with the debug view (key d)")
    return p.parse_args(argv)


def open_source(args):
    if args.video is not None:
        return open_video(args.video, loop=args.loop)
    if args.image is not None:
        return open_image(args.image, loop=args.loop, max_pixels=args.max_pixels)
    return open_camera(args.camera)


def screen_size() -> tuple[int, int]:
    """The screen's (width, height) in pixels: asked of X11 (Linux, BSD) or of Windows, through
    ctypes; (1280, 800) when neither answers. (Not through Tk: a Tk root opened and closed before
    the window sometimes kept OpenCV's window off an Xvfb screen.)"""
    import ctypes
    import ctypes.util

    try:
        if sys.platform == "win32":
            metrics = ctypes.windll.user32.GetSystemMetrics
            size = metrics(0), metrics(1)
        else:
            xlib = ctypes.CDLL(ctypes.util.find_library("X11") or "libX11.so.6")
            xlib.XOpenDisplay.restype = ctypes.c_void_p
            xlib.XOpenDisplay.argtypes = [ctypes.c_char_p]
            xlib.XDefaultScreen.argtypes = [ctypes.c_void_p]
            xlib.XDisplayWidth.argtypes = xlib.XDisplayHeight.argtypes = [
                ctypes.c_void_p,
                ctypes.c_int,
            ]
            xlib.XCloseDisplay.argtypes = [ctypes.c_void_p]
            display = xlib.XOpenDisplay(None)
            if not display:
                return 1280, 800
            screen = xlib.XDefaultScreen(display)
            size = xlib.XDisplayWidth(display, screen), xlib.XDisplayHeight(display, screen)
            xlib.XCloseDisplay(display)
        if size[0] >= 320 and size[1] >= 240:
            return size
    except (OSError, AttributeError):  # no such library or function: the size is unknown
        pass
    return 1280, 800


def fit_scale(frame_size: tuple[int, int], screen: tuple[int, int], debug: bool) -> float:
    """The factor (at most 1) that fits a frame of ``frame_size`` (w, h) and the window's extra
    rows (the debug view's crop strip) into 90% of ``screen`` (w, h)."""
    w, h = frame_size
    extra = 2 * (28 * 3 + 26) + 4 if debug else 0
    return min(1.0, 0.9 * screen[0] / w, max(0.1, (0.9 * screen[1] - extra) / h))


class VideoOut:
    """Annotated frames into an MJPG .avi, opened on the first frame (which gives the size)."""

    def __init__(self, path: Path | None, fps: float):
        self.path, self.fps, self.writer, self.size = path, fps, None, None

    def write(self, image) -> None:
        if self.path is None:
            return
        if self.writer is not None and image.shape[:2] != self.size:  # the view changed (d)
            canvas = np.zeros((*self.size, 3), np.uint8)
            h, w = min(self.size[0], image.shape[0]), min(self.size[1], image.shape[1])
            canvas[:h, :w] = image[:h, :w]
            image = canvas
        if self.writer is None:
            h, w = image.shape[:2]
            self.size = (h, w)
            with quiet_opencv():
                self.writer = cv2.VideoWriter(
                    str(self.path), cv2.VideoWriter_fourcc(*"MJPG"), self.fps, (w, h)
                )
            if not self.writer.isOpened():
                raise CLIError(f"{self.path}: cannot write a video there (try an .avi path)")
        self.writer.write(image)

    def close(self) -> None:
        if self.writer is not None:
            self.writer.release()


def quiet_qt_fonts() -> None:
    """The opencv-python wheel's Qt looks for fonts in its own empty folder and says so on every
    start; point it at the system's fonts when it has some."""
    fonts = Path("/usr/share/fonts/truetype")
    if sys.platform.startswith("linux") and "QT_QPA_FONTDIR" not in os.environ and fonts.is_dir():
        os.environ["QT_QPA_FONTDIR"] = str(fonts)


class Keys:
    """What the window's keys do: ``d`` debug view, space pause, ``s`` snapshot, ``q``/Esc quit."""

    def __init__(self, snapshot_dir: Path, debug: bool = False):
        self.snapshot_dir = snapshot_dir
        self.debug, self.paused = debug, False
        self.snapshots = 0

    def press(self, key: int, shown) -> bool:
        """Act on ``key`` (a ``cv2.waitKey`` code) with ``shown`` the image on screen; returns
        True when the user asked to quit."""
        key &= 0xFF
        if key in (ord("q"), KEY_ESC):
            return True
        if key == ord("d"):
            self.debug = not self.debug
        elif key == ord(" "):
            self.paused = not self.paused
        elif key == ord("s"):
            self.snapshots += 1
            stamp = time.strftime("%Y%m%d-%H%M%S")
            path = self.snapshot_dir / f"snapshot-{stamp}-{self.snapshots}.png"
            try:
                self.snapshot_dir.mkdir(parents=True, exist_ok=True)
                saved = cv2.imwrite(str(path), shown)
            except (OSError, cv2.error):
                saved = False
            if saved:
                print(f"saved {path}", flush=True)
            else:
                print(f"{PROG}: could not write {path}", file=sys.stderr)
        return False


def warm_up(reader) -> None:
    """Read a small frame with one digit-like shape, so the first real frame's time (and the
    frame rate shown) does not include compiling the kernels."""
    frame = np.full((96, 96), 230, np.uint8)
    cv2.circle(frame, (48, 48), 24, 30, 5)
    reader.read(frame)


def run(args) -> int:
    if args.max_frames is not None and args.max_frames < 1:
        raise CLIError(f"--max-frames must be >= 1, got {args.max_frames}")
    if parse_rotate(args.rotate) == "auto" and args.image is None:
        raise CLIError(
            "--rotate auto reads a still image four times; use it with --image, "
            "or give a camera or video its turn (--rotate 90, 180 or 270)"
        )
    for option, path in (("--save-video", args.save_video), ("--screenshot", args.screenshot)):
        if path is not None and not path.resolve().parent.is_dir():
            raise CLIError(f"{option} {path}: the folder {path.parent} does not exist")
    window = not args.headless
    if window and (problem := window_problem()):
        raise CLIError(f"{problem}; use --headless (JSON lines) or --save-video OUT")
    reader = make_reader(args)
    source = open_source(args)
    warm_up(reader)
    out = VideoOut(args.save_video, source.fps)
    keys = Keys(args.snapshot_dir, debug=args.debug)
    screen = screen_size() if window else None
    frames, fps, held = 0, None, False
    frame = result = shown = None
    last_tick = None
    read_ms = 0.0

    def view(scale: float = 1.0):
        """What the window (and the screenshot, and the saved video) shows."""
        if keys.debug:
            return debug_view(frame, result, fps, scale=scale, strip_rows=2)
        info = f"read {read_ms:.1f} ms" + ("  paused" if keys.paused else "")
        return draw_detections(
            frame, result.all_detections, fps, info, text=result.text, scale=scale
        )

    try:
        if window:
            quiet_qt_fonts()
            cv2.namedWindow(WINDOW, cv2.WINDOW_AUTOSIZE | cv2.WINDOW_GUI_NORMAL)
        while args.max_frames is None or frames < args.max_frames:
            if not (keys.paused or held):
                next_frame = source.read()
                if next_frame is None:
                    if not (window and source.still):
                        break
                    held = True  # keep showing a still image until the user quits
                else:
                    frame = next_frame
                    start = time.perf_counter()
                    result = reader.read(frame)
                    now = time.perf_counter()
                    read_ms = 1e3 * (now - start)
                    if last_tick is not None and not source.still:  # a rate needs two frames
                        rate = 1.0 / max(now - last_tick, 1e-6)
                        fps = rate if fps is None else 0.9 * fps + 0.1 * rate
                    last_tick = now
                    if out.path is not None or (not window and args.screenshot is not None):
                        shown = view()
                        out.write(shown)
                    if args.headless:
                        line = {"frame": frames, **result_json(result)}
                        print(json.dumps(line), flush=True)
                    frames += 1
            if not window:
                continue
            h, w = frame.shape[:2]
            shown = view(fit_scale((w, h), screen, keys.debug))
            cv2.imshow(WINDOW, shown)
            if source.live and not keys.paused:
                delay = 1
            elif keys.paused or held:
                delay = 30
            else:  # a video plays at its own rate, never faster
                delay = max(1, int(1000 / source.fps - 1000 * (time.perf_counter() - last_tick)))
            key = cv2.waitKey(delay)
            if keys.press(key, shown) or cv2.getWindowProperty(WINDOW, cv2.WND_PROP_VISIBLE) < 1:
                break
            if key & 0xFF == ord(" "):
                last_tick = time.perf_counter()
    finally:
        source.close()
        out.close()
        if window:
            cv2.destroyAllWindows()
    if args.screenshot is not None and shown is not None:
        try:
            written = cv2.imwrite(str(args.screenshot), shown)
        except cv2.error:
            written = False
        if not written:
            raise CLIError(f"{args.screenshot}: cannot write the screenshot there (use .png)")
    return 0


def main(argv=None) -> int:
    try:
        args = parse_args(argv)
        return run_cli(PROG, lambda: run(args))
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())
