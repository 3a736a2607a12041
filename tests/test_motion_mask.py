"""Motion masks from files: images and polygons, and the one-line errors a bad one gets."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

from runtime.motion import MaskError, load_mask

pytestmark = pytest.mark.board  # runs on the emulated arm64 root too (deploy/arm64/check.py)


def test_an_image_mask_at_any_size_ignores_its_black_part(tmp_path, opencv_data):
    mask = np.full((300, 400), 255, np.uint8)
    mask[:, :100] = 0  # the left quarter
    path = tmp_path / "mask.png"
    cv2.imwrite(str(path), mask)
    watched = load_mask(path).watched((96, 72))
    assert not watched[:, :24].any() and watched[:, 25:].all()
    # a JPEG (edges blurred by compression) reads the same, give or take the border column
    jpeg = tmp_path / "mask.jpg"
    cv2.imwrite(str(jpeg), mask, [cv2.IMWRITE_JPEG_QUALITY, 50])
    assert (load_mask(jpeg).watched((96, 72)) != watched).sum() <= 72


def test_polygons_ignore_what_they_cover_and_a_partly_covered_pixel(tmp_path):
    path = tmp_path / "mask.json"
    path.write_text(json.dumps([[[0.0, 0.0], [0.51, 0.0], [0.51, 1.0], [0.0, 1.0]]]))
    watched = load_mask(path).watched((100, 50))
    assert not watched[:, :52].any()  # 0.51 of 100 columns is 51 and a bit: the 52nd column is partly covered
    assert watched[:, 52:].all()


@pytest.mark.parametrize("name, content, message", [
    ("missing.png", None, "no such file"),
    ("broken.png", b"\x89PNG\r\n\x1a\n not really", "not a readable image"),
    ("black.png", "black", "ignores the whole frame"),
    ("bad.json", b"[[[0, 0], [1, 0]", "not valid JSON"),
    ("few.json", json.dumps([[[0, 0], [1, 0]]]).encode(), "polygon 0: needs at least 3"),
    ("range.json", json.dumps([[[0, 0], [1, 0], [1.5, 1]]]).encode(), "polygon 0 point 2"),
    ("empty.json", b"[]", "non-empty list of polygons"),
])
def test_a_bad_mask_file_is_one_line_naming_it(tmp_path, name, content, message):
    path = tmp_path / name
    if content == "black":
        cv2.imwrite(str(path), np.zeros((10, 10), np.uint8))
    elif content is not None:
        path.write_bytes(content)
    with pytest.raises(MaskError) as err:
        load_mask(path)
    text = str(err.value)
    assert "\n" not in text and text.startswith(str(path)) and message in text
