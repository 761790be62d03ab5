"""Loading and letterboxing images exactly as darknet's image.c."""

import numpy as np
import pytest
from PIL import Image

from tritnet_rt.detect import from_uint8, letterbox, letterbox_size, load_image, resize_image
from tests.paths import SHARED_DATA

REF = SHARED_DATA / "darknet" / "reference"


def _inputs():
    return sorted((REF / "inputs").glob("*__stb_rgb.png")) if REF.is_dir() else []


@pytest.mark.parametrize("png", _inputs(), ids=lambda p: p.name.split("__stb")[0])
def test_letterbox_is_bit_exact_with_darknet(png):
    stem = png.name.split("__stb_rgb.png")[0]
    want = np.load(next((REF / "inputs").glob(f"{stem}__letterbox_*.npz")))["x"]
    im = load_image(png)
    assert np.array_equal(im, from_uint8(np.asarray(Image.open(png))))
    got = letterbox(im, want.shape[2], want.shape[1])
    assert got.dtype == np.float32 and np.array_equal(got, want)


def test_load_image_is_rgb_chw_over_255(tmp_path):
    u8 = np.random.default_rng(0).integers(0, 256, (5, 7, 3), dtype=np.uint8)
    Image.fromarray(u8).save(tmp_path / "c.png")
    Image.fromarray(u8[:, :, 0]).save(tmp_path / "g.png")
    im = load_image(tmp_path / "c.png")
    assert im.shape == (3, 5, 7) and im.dtype == np.float32
    assert np.array_equal(im, (u8.transpose(2, 0, 1) / 255.0).astype(np.float32))
    g = load_image(tmp_path / "g.png")                       # grayscale → R = G = B
    assert np.array_equal(g[0], g[1]) and np.array_equal(g[1], g[2])
    (tmp_path / "bad.jpg").write_bytes(b"not an image")
    with pytest.raises(ValueError, match="bad.jpg"):
        load_image(tmp_path / "bad.jpg")


def test_letterbox_geometry():
    assert letterbox_size(640, 480, 360, 360) == (360, 270)
    assert letterbox_size(300, 470, 416, 416) == (265, 416)
    im = np.random.default_rng(1).random((3, 480, 640), dtype=np.float32)
    out = letterbox(im, 360, 360)
    assert np.all(out[:, :45] == .5) and np.all(out[:, 315:] == .5)       # (360-270)/2 rows of 0.5 each side
    assert not np.any(out[:, 45:315] == .5)
    assert np.array_equal(letterbox(im, 640, 480), im)                       # same size: the identity


def ref_resize(im, w, h):
    """darknet's resize_image, loop for loop, in float32."""
    f = np.float32
    c, ih, iw = im.shape
    part = np.zeros((c, ih, w), f)
    w_scale, h_scale = f(iw - 1) / f(w - 1), f(ih - 1) / f(h - 1)
    for k in range(c):
        for r in range(ih):
            for x in range(w):
                if x == w - 1 or iw == 1:
                    part[k, r, x] = im[k, r, iw - 1]
                else:
                    sx = f(x) * w_scale
                    ix = int(sx)
                    dx = sx - f(ix)
                    part[k, r, x] = (f(1) - dx) * im[k, r, ix] + dx * im[k, r, ix + 1]
    out = np.zeros((c, h, w), f)
    for k in range(c):
        for r in range(h):
            sy = f(r) * h_scale
            iy = int(sy)
            dy = sy - f(iy)
            out[k, r] = (f(1) - dy) * part[k, iy]
            if r == h - 1 or ih == 1:
                continue
            out[k, r] += dy * part[k, iy + 1]
    return out


@pytest.mark.parametrize("src,dst", [((5, 7), (9, 4)), ((6, 6), (3, 11)), ((13, 4), (13, 4)), ((2, 9), (7, 7))])
def test_resize_matches_darknets_loops(src, dst):
    im = np.random.default_rng(sum(src)).random((2, *src), dtype=np.float32)
    assert np.array_equal(resize_image(im, *dst[::-1]), ref_resize(im, *dst[::-1]))
