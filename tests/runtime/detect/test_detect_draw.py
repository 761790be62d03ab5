"""Drawing boxes with darknet's colours."""
import numpy as np
from PIL import Image

from tritnet_rt.detect import Detection, draw_detections
from tritnet_rt.detect.draw import class_rgb, get_color


def test_colors_are_darknets():
    # class 0 of 20: offset 0 → magenta; get_color is linear between darknet's six colours
    assert class_rgb(0, 20) == (255, 0, 255)
    assert get_color(2, 4, 20) == 1.0 and get_color(0, 4, 20) == 0.0          # ratio 1: colors[1], red
    assert class_rgb(1, 2) == tuple(int(round(255 * get_color(c, 123457 % 2, 2))) for c in (2, 1, 0))


def test_draw_detections(tmp_path):
    Image.new("RGB", (200, 300), (128, 128, 128)).save(tmp_path / "im.png")
    dets = [Detection(3, 0, "a", .9, .9, .5, .5, .3, .3, 70, 100, 130, 200),
            Detection(3, 1, "b", .5, .9, .5, .5, .3, .3, 70, 100, 130, 200),
            Detection(4, 1, "b", .5, .9, 0, 0, 0, 0, 5, 5, 4, 4)]                  # empty box: skipped
    im = np.asarray(draw_detections(tmp_path / "im.png", dets, classes=2))
    assert im.shape == (300, 200, 3)
    assert tuple(im[150, 70]) == class_rgb(0, 2) and tuple(im[150, 100]) == (128, 128, 128)
    assert tuple(im[150, 71]) == (128, 128, 128)                                  # width ⌊300·.006⌋ = 1 px
    assert (im[:20, :20] == 128).all()                                            # the empty box: nothing
