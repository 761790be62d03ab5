import io

import numpy as np
import pytest
from PIL import Image

from tritnet.data import DataError, decode_image, read_image
from tritnet.data.decode import jpeg_header

from data_helpers import jpeg_bytes, png_bytes, random_image


def pil_reference(data: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))


def test_fast_jpeg_path_gives_pillow_pixels_on_real_cifar(cifar_files):
    names = [n for n in cifar_files.names if n.startswith("test/")][::500]  # 20 images, all classes
    for name in names:
        data = cifar_files.read(name)
        assert jpeg_header(data) == (32, 32, 3)
        img = decode_image(data, name)
        assert img.dtype == np.uint8 and img.shape == (32, 32, 3)
        np.testing.assert_array_equal(img, pil_reference(data))


def test_jpeg_header_of_non_square_progressive_and_non_jpeg():
    data = jpeg_bytes(random_image(0, 5, 7), progressive=True)
    assert jpeg_header(data) == (5, 7, 3)
    np.testing.assert_array_equal(decode_image(data), pil_reference(data))
    assert jpeg_header(png_bytes(random_image(0))) is None
    assert jpeg_header(b"\xff\xd8") is None


def test_grayscale_jpeg_and_rgba_png_become_rgb():
    gray = np.arange(64, dtype=np.uint8).reshape(8, 8) * 4
    buf = io.BytesIO()
    Image.fromarray(gray).save(buf, "JPEG", quality=100)
    img = decode_image(buf.getvalue())
    assert img.shape == (8, 8, 3)
    assert (img[..., 0] == img[..., 1]).all() and (img[..., 1] == img[..., 2]).all()

    rgba = np.dstack([random_image(1), np.full((8, 8), 255, np.uint8)])
    buf = io.BytesIO()
    Image.fromarray(rgba, "RGBA").save(buf, "PNG")
    np.testing.assert_array_equal(decode_image(buf.getvalue()), rgba[..., :3])


def test_png_is_lossless():
    img = random_image(2)
    np.testing.assert_array_equal(decode_image(png_bytes(img)), img)


def test_resize_on_decode():
    data = jpeg_bytes(random_image(3, 64, 48))
    assert decode_image(data, size=(16, 12)).shape == (16, 12, 3)
    assert decode_image(data, size=20).shape == (20, 20, 3)
    # A size equal to the stored one takes the fast path and changes nothing.
    np.testing.assert_array_equal(decode_image(data, size=(64, 48)), pil_reference(data))


@pytest.mark.parametrize("cut", [0.5, 0.9])
def test_truncated_jpeg_is_a_data_error_naming_the_file(cut):
    data = jpeg_bytes(random_image(4, 32, 32))
    with pytest.raises(DataError, match=r"^train/cat/0001\.jpg: cannot decode image") as e:
        decode_image(data[:int(len(data) * cut)], "train/cat/0001.jpg")
    assert e.value.path == "train/cat/0001.jpg"
    assert isinstance(e.value, ValueError)


def test_garbage_bytes_and_missing_file(tmp_path):
    with pytest.raises(DataError, match="x.jpg: cannot decode image"):
        decode_image(b"this is not an image", "x.jpg")
    bad = tmp_path / "bad.png"
    bad.write_bytes(png_bytes(random_image(5))[:40])
    with pytest.raises(DataError, match="bad.png: cannot decode image"):
        read_image(bad)
    with pytest.raises(DataError, match="missing.jpg: cannot read image"):
        read_image(tmp_path / "missing.jpg")


def test_data_error_survives_pickling():
    import pickle
    e = pickle.loads(pickle.dumps(DataError("a/b.jpg", "broken")))
    assert (e.path, e.reason, str(e)) == ("a/b.jpg", "broken", "a/b.jpg: broken")
