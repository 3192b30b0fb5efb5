"""Digits drawn in handwriting fonts, framed as MNIST's (scratchcnn.data.fonts)."""

from pathlib import Path

import numpy as np
import pytest

from scratchcnn.data.fonts import find_handwriting_fonts, render_font_digits
from scratchcnn.reader.normalize import MNIST_CENTER, center_of_mass

ANY_FONT = [
    p
    for p in (
        Path("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"),
        Path("/usr/share/fonts/truetype/fifthhorseman/dkg.ttf"),
    )
    if p.exists()
]


def test_scratchcnn_fonts_names_the_fonts(tmp_path, monkeypatch):
    (tmp_path / "a.ttf").write_bytes(b"")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "b.otf").write_bytes(b"")
    (tmp_path / "notes.txt").write_text("not a font")
    monkeypatch.setenv("SCRATCHCNN_FONTS", str(tmp_path))
    assert [p.name for p in find_handwriting_fonts()] == ["a.ttf", "b.otf"]


@pytest.mark.skipif(not ANY_FONT, reason="no TrueType font installed here")
def test_font_digits_are_framed_like_mnist():
    pytest.importorskip("PIL")
    images, labels = render_font_digits(ANY_FONT[:1])
    assert images.shape == (10, 28, 28) and images.dtype == np.uint8
    assert labels.tolist() == list(range(10))
    for image in images:
        ys, xs = np.nonzero(image > 30)
        assert max(ys.max() - ys.min(), xs.max() - xs.min()) + 1 <= 21  # fitted into 20x20
        cy, cx = center_of_mass(image.astype(np.float32))
        assert abs(cy - MNIST_CENTER) < 1.0 and abs(cx - MNIST_CENTER) < 1.0
        assert image.max() == 255
