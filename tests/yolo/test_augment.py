"""Darknet's detection augmentation: crop/resize geometry, HSV distortion, box correction, multi-scale sizes."""
import numpy as np
import pytest

from tritnet.yolo.augment import (augment_detection, correct_truth, crop_resize, distort_hsv, hsv_to_rgb, rgb_to_hsv,
                                  train_size)


def test_crop_resize_identity_and_edges():
    rng = np.random.default_rng(0)
    im = rng.integers(0, 256, (6, 9, 3), dtype=np.uint8)
    x = crop_resize(im, 0, 0, 9, 6, 9, 6)
    np.testing.assert_allclose(x, im.transpose(2, 0, 1) / 255, atol=1e-6)
    # a window reaching 2 pixels left of the image repeats the first column
    y = crop_resize(im, -2, 0, 9, 6, 9, 6)
    np.testing.assert_allclose(y[:, :, :3], np.repeat(im[:, :1].transpose(2, 0, 1), 3, 2) / 255, atol=1e-6)
    np.testing.assert_allclose(y[:, :, 2:], im[:, :7].transpose(2, 0, 1) / 255, atol=1e-6)
    # corner-aligned bilinear: 2 columns → 3 columns gives the midpoint in the middle
    two = np.array([[[0, 0, 0], [200, 100, 50]]], np.uint8)
    np.testing.assert_allclose(crop_resize(two, 0, 0, 2, 1, 3, 1)[:, 0, 1], np.array([100, 50, 25]) / 255, atol=1e-6)


def test_hsv_matches_darknets_formulas():
    px = np.array([[[1.0]], [[0.0]], [[0.0]]], np.float32)            # pure red
    np.testing.assert_allclose(rgb_to_hsv(px)[:, 0, 0], [0, 1, 1])
    np.testing.assert_allclose(rgb_to_hsv(np.array([[[.2]], [[.6]], [[.4]]], np.float32))[:, 0, 0],
                               [(2 + (.4 - .2) / .4) / 6, .4 / .6, .6], rtol=1e-6)   # g max: h = 2 + (b-r)/Δ
    grey = np.full((3, 1, 1), .5, np.float32)
    np.testing.assert_allclose(rgb_to_hsv(grey)[:, 0, 0], [0, 0, .5])
    rng = np.random.default_rng(1)
    x = rng.random((3, 4, 5), dtype=np.float32)
    np.testing.assert_allclose(hsv_to_rgb(rgb_to_hsv(x)), x, atol=1e-5)
    # a hue shift of 1/3 turns red into green; exposure 2 doubles and clips
    np.testing.assert_allclose(distort_hsv(px, 1 / 3, 1, 1)[:, 0, 0], [0, 1, 0], atol=1e-5)
    np.testing.assert_allclose(distort_hsv(np.full((3, 1, 1), .3, np.float32), 0, 1, 2)[:, 0, 0], [.6] * 3, atol=1e-6)
    np.testing.assert_allclose(distort_hsv(np.full((3, 1, 1), .7, np.float32), 0, 1, 2)[:, 0, 0], [1] * 3)


def test_correct_truth_hand_computed():
    # crop starting 10% in from the left, 80% wide (sx = 1/0.8), then flip
    b = np.array([[0.5, 0.5, 0.2, 0.4]])
    dx = 0.1 / 0.8
    got = correct_truth(b, dx, 0, 1 / 0.8, 1, False)
    np.testing.assert_allclose(got[0], [(0.4 / 0.8 - dx + 0.6 / 0.8 - dx) / 2, 0.5, 0.2 / 0.8, 0.4], atol=1e-6)
    flipped = correct_truth(b, dx, 0, 1 / 0.8, 1, True)
    np.testing.assert_allclose(flipped[0, 0], 1 - got[0, 0], atol=1e-6)
    clipped = correct_truth(np.array([[0.05, 0.5, 0.2, 0.2]]), 0, 0, 1, 1, False)   # left edge at -0.05
    np.testing.assert_allclose(clipped[0], [0.075, 0.5, 0.15, 0.2], atol=1e-6)


def test_augmented_boxes_still_cover_their_objects():
    """A white rectangle on black: after jitter, flip and resize its truth box must frame the white pixels."""
    im = np.zeros((60, 80, 3), np.uint8)
    im[15:45, 20:44] = 255
    box = np.array([[(20 + 12) / 80, (15 + 15) / 60, 24 / 80, 30 / 60]], np.float32)
    for seed in range(20):
        x, truth = augment_detection(im, box, np.array([1]), 64, 48, np.random.default_rng(seed), jitter=.2, hue=0,
                                     saturation=1, exposure=1, flip=True, max_boxes=4)
        assert x.shape == (3, 48, 64) and truth.shape == (4, 5)
        cx, cy, w, h, c = truth[0]
        assert c == 1 and (truth[1:] == 0).all()
        x0, x1 = int(np.ceil((cx - w / 2) * 64 + 1)), int((cx + w / 2) * 64 - 1)
        y0, y1 = int(np.ceil((cy - h / 2) * 48 + 1)), int((cy + h / 2) * 48 - 1)
        assert x[0, y0:y1, x0:x1].min() > 0.9                      # inside: white
        mask = np.ones((48, 64), bool)
        mask[max(y0 - 3, 0):y1 + 3, max(x0 - 3, 0):x1 + 3] = False
        assert x[0][mask].max() < 0.1                                # outside: black


def test_tiny_and_surplus_boxes_are_dropped():
    im = np.zeros((50, 50, 3), np.uint8)
    boxes = np.array([[0.5, 0.5, 0.0005, 0.5]] + [[0.5, 0.5, 0.2, 0.2]] * 5, np.float32)
    _, truth = augment_detection(im, boxes, np.arange(6), 32, 32, np.random.default_rng(0), jitter=0, hue=0,
                                 saturation=1, exposure=1, flip=False, max_boxes=3)
    # at most 3 taken (after shuffling), then those under 0.001 wide dropped
    assert 2 <= (truth[:, 2] > 0).sum() <= 3 and (truth[:, 2] >= 0.001).sum() == (truth[:, 2] > 0).sum()


def test_multiscale_sizes():
    rng = np.random.default_rng(0)
    sdl = [train_size("sdl", 224, 160, 32, rng, 0, 10000) for _ in range(5000)]
    counts = {s: sdl.count(s) / len(sdl) for s in set(sdl)}
    assert set(counts) == {(160, 96), (192, 128), (224, 160)}
    assert counts[(160, 96)] == pytest.approx(.4, abs=.03) and counts[(224, 160)] == pytest.approx(.2, abs=.03)
    dims = {train_size("darknet", 416, 416, 32, rng, 0, 10000) for _ in range(500)}
    assert dims == {(d, d) for d in range(320, 609, 32)}
    assert train_size("darknet", 416, 416, 32, rng, 9850, 10000) == (608, 608)
    assert train_size("off", 416, 416, 32, rng, 0, 10) == (416, 416)
