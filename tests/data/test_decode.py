"""Pixel-level checks of decoding: orientation, mode conversion, bit depth and fit policies."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from imgclf.data.pipeline.decode import (
    ImageDecodeError,
    decode_file,
    fit_image,
    probe_file,
    to_color,
)


def test_exif_rotated_jpeg_is_upright(image_corpus: Path) -> None:
    pixels = decode_file(image_corpus / "cats" / "exif.jpg", (20, 10), "resize", "rgb")
    assert pixels.shape == (20, 10, 3)
    top, bottom = pixels[:8].reshape(-1, 3).mean(0), pixels[12:].reshape(-1, 3).mean(0)
    assert top[0] > 200 and top[2] < 60  # red on top
    assert bottom[2] > 200 and bottom[0] < 60  # blue below


def test_transparent_pixels_become_white() -> None:
    rgba = Image.new("RGBA", (4, 4), (255, 0, 0, 0))
    rgba.putpixel((0, 0), (0, 0, 255, 255))
    out = np.asarray(to_color(rgba, "rgb"))
    assert tuple(out[1, 1]) == (255, 255, 255)
    assert tuple(out[0, 0]) == (0, 0, 255)


def test_palette_with_transparency_and_la_convert() -> None:
    pal = Image.new("P", (2, 1))
    pal.putpalette([0, 0, 0, 200, 10, 10] + [0] * 762)
    pal.putpixel((0, 0), 0)
    pal.putpixel((1, 0), 1)
    pal.info["transparency"] = 0
    out = np.asarray(to_color(pal, "rgb"))
    assert tuple(out[0, 0]) == (255, 255, 255) and tuple(out[0, 1]) == (200, 10, 10)
    la = Image.new("LA", (1, 1), (50, 255))
    assert np.asarray(to_color(la, "grayscale"))[0, 0] == 50


def test_sixteen_bit_is_scaled_not_clipped(tmp_path: Path) -> None:
    values = np.array([[0, 32768, 65535]], dtype=np.uint16)
    Image.fromarray(values).save(tmp_path / "deep.png")
    out = decode_file(tmp_path / "deep.png", (1, 3), "resize", "grayscale")[..., 0]
    assert out.tolist() == [[0, 128, 255]]


def test_cmyk_jpeg_becomes_rgb(tmp_path: Path) -> None:
    Image.new("RGB", (8, 8), (255, 0, 0)).convert("CMYK").save(tmp_path / "c.jpg", quality=100)
    out = decode_file(tmp_path / "c.jpg", (8, 8), "resize", "rgb")
    r, g, b = out.reshape(-1, 3).mean(0)
    assert r > 230 and g < 30 and b < 30


@pytest.mark.parametrize(
    ("fit", "expected_rows"),
    [("resize", "all red"), ("center_crop", "all red"), ("letterbox", "black bars")],
)
def test_fit_policies(fit: str, expected_rows: str) -> None:
    wide = Image.new("RGB", (40, 20), (255, 0, 0))
    out = fit_image(wide, (20, 20), fit)
    assert out.shape == (20, 20, 3)
    if expected_rows == "all red":
        assert (out[..., 0] == 255).all()
    else:  # 40x20 fitted inside 20x20 is 20x10, padded above and below
        assert (out[:4] == 0).all() and (out[-4:] == 0).all()
        assert (out[8:12, :, 0] == 255).all()


def test_center_crop_keeps_the_middle() -> None:
    img = Image.new("RGB", (30, 10), (0, 0, 255))
    img.paste((0, 255, 0), (10, 0, 20, 10))
    out = fit_image(img, (10, 10), "center_crop")
    assert (out[..., 1] == 255).all()


def test_large_jpeg_decodes_to_target_size_with_draft(tmp_path: Path) -> None:
    Image.new("RGB", (800, 600), (0, 128, 0)).save(tmp_path / "big.jpg")
    out = decode_file(tmp_path / "big.jpg", (32, 48), "resize", "rgb")
    assert out.shape == (32, 48, 3)
    assert abs(int(out[..., 1].mean()) - 128) <= 2


def test_grayscale_output_has_one_channel(image_corpus: Path) -> None:
    out = decode_file(image_corpus / "cats" / "good1.jpg", (5, 7), "resize", "grayscale")
    assert out.shape == (5, 7, 1) and out.dtype == np.uint8


@pytest.mark.parametrize(
    ("name", "reason"),
    [("truncated.jpg", "truncated"), ("empty.jpg", "empty"), ("text.jpg", "not an image"),
     ("bomb.png", "oversized")],
)  # fmt: skip
def test_bad_files_raise_with_reason(image_corpus: Path, name: str, reason: str) -> None:
    with pytest.raises(ImageDecodeError, match=reason):
        decode_file(image_corpus / "cats" / name, (8, 8), "resize", "rgb")
    assert reason in probe_file(image_corpus / "cats" / name).reason


def test_missing_file_is_unreadable(tmp_path: Path) -> None:
    assert "unreadable" in probe_file(tmp_path / "gone.jpg").reason
