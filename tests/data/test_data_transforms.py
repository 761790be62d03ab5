import numpy as np
import torch

from tritnet.data import (BatchTransform, Compose, Normalize, RandomCrop, RandomHFlip, crop, crop_batch,
                          flip_batch, hflip, normalize, normalize_batch, pad, pad_batch, random_crop_batch,
                          random_flip_batch, resize, to_tensor)

# A 3x3 single-channel image, HWC:   0 1 2 / 3 4 5 / 6 7 8
IMG = np.arange(9, dtype=np.uint8).reshape(3, 3, 1)


def test_pad_and_crop_by_hand():
    padded = pad(IMG, 1)[..., 0]
    assert padded.tolist() == [[0, 0, 0, 0, 0],
                               [0, 0, 1, 2, 0],
                               [0, 3, 4, 5, 0],
                               [0, 6, 7, 8, 0],
                               [0, 0, 0, 0, 0]]
    assert crop(pad(IMG, 1), 0, 0, 3, 3)[..., 0].tolist() == [[0, 0, 0], [0, 0, 1], [0, 3, 4]]
    assert crop(pad(IMG, 1), 2, 1, 3, 3)[..., 0].tolist() == [[3, 4, 5], [6, 7, 8], [0, 0, 0]]
    assert crop(IMG, 1, 1, 2, 2)[..., 0].tolist() == [[4, 5], [7, 8]]


def test_hflip_by_hand():
    assert hflip(IMG)[..., 0].tolist() == [[2, 1, 0], [5, 4, 3], [8, 7, 6]]


def test_batch_crop_and_flip_by_hand():
    x = torch.from_numpy(np.stack([IMG, IMG + 10])).permute(0, 3, 1, 2)  # N=2, C=1, 3x3
    out = crop_batch(pad_batch(x, 1), tops=[0, 2], lefts=[2, 1], height=3, width=3)
    assert out.dtype == torch.uint8 and out.shape == (2, 1, 3, 3)
    assert out[0, 0].tolist() == [[0, 0, 0], [1, 2, 0], [4, 5, 0]]
    assert out[1, 0].tolist() == [[13, 14, 15], [16, 17, 18], [0, 0, 0]]
    flipped = flip_batch(x, [True, False])
    assert flipped[0, 0].tolist() == [[2, 1, 0], [5, 4, 3], [8, 7, 6]]
    assert torch.equal(flipped[1], x[1])


def test_batch_crop_equals_per_sample_crop_on_rgb():
    rng = np.random.default_rng(0)
    imgs = rng.integers(0, 256, (5, 6, 7, 3), dtype=np.uint8)
    tops, lefts = rng.integers(0, 5, 5), rng.integers(0, 5, 5)
    out = crop_batch(pad_batch(torch.from_numpy(imgs).permute(0, 3, 1, 2), 2), tops, lefts, 6, 7)
    for i in range(5):
        expected = crop(pad(imgs[i], 2), tops[i], lefts[i], 6, 7)
        np.testing.assert_array_equal(out[i].permute(1, 2, 0).numpy(), expected)


def test_random_batch_transforms_produce_valid_crops_and_flips():
    g = torch.Generator().manual_seed(0)
    x = torch.randint(1, 256, (64, 3, 8, 8), dtype=torch.uint8, generator=g)  # no zeros inside
    out = random_crop_batch(x, 2, generator=g)
    padded = pad_batch(x, 2)
    offsets = set()
    for i in range(64):
        hits = [(t, l) for t in range(5) for l in range(5)
                if torch.equal(out[i], padded[i, :, t:t + 8, l:l + 8])]
        assert hits
        offsets.add(hits[0])
    assert len(offsets) > 10  # offsets really vary
    flipped = random_flip_batch(x, 0.5, generator=g)
    same = [torch.equal(flipped[i], x[i]) for i in range(64)]
    assert all(s or torch.equal(flipped[i], x[i].flip(2)) for i, s in enumerate(same))
    assert 10 < sum(same) < 54


def test_normalize_batch_matches_float_formula():
    x = torch.randint(0, 256, (4, 3, 5, 5), dtype=torch.uint8)
    mean, std = (0.4, 0.5, 0.6), (0.2, 0.25, 0.3)
    expected = (x.float() / 255 - torch.tensor(mean).view(1, 3, 1, 1)) / torch.tensor(std).view(1, 3, 1, 1)
    torch.testing.assert_close(normalize_batch(x, mean, std), expected)
    torch.testing.assert_close(normalize(x.float() / 255, mean, std), expected)


def test_to_tensor_and_resize():
    img = np.zeros((2, 3, 3), np.uint8)
    img[0, 1] = (255, 51, 0)
    t = to_tensor(img)
    assert t.shape == (3, 2, 3) and t.dtype == torch.float32
    torch.testing.assert_close(t[:, 0, 1], torch.tensor([1.0, 0.2, 0.0]))
    assert resize(np.zeros((10, 20, 3), np.uint8), (4, 6)).shape == (4, 6, 3)
    # a horizontal ramp 8·j halved to 16 columns: a linear filter keeps a line, so output column i (centre at
    # input 2i + 0.5) is 16i + 4 away from the edges; (h, w) swapped or nearest neighbour would give 16i or 16i + 8
    ramp = np.broadcast_to((8 * np.arange(32, dtype=np.uint8))[None, :, None], (6, 32, 3)).copy()
    half = resize(ramp, (6, 16))
    assert half.shape == (6, 16, 3) and (half[:, 1:-1] == (16 * np.arange(1, 15) + 4)[None, :, None]).all()
    flat = np.full((10, 20, 3), 77, np.uint8)
    assert (resize(flat, 5) == 77).all()


def test_per_sample_random_transforms_compose():
    rng = np.random.default_rng(0)
    t = Compose(RandomCrop(1, rng), RandomHFlip(1.0, rng), to_tensor, Normalize((0.5,), (0.5,)))
    out = t(IMG)
    # by hand with numpy, the same draws in the same order: the crop's offsets, then the flip's coin
    top, left = np.random.default_rng(0).integers(0, 3, size=2)
    want = np.pad(IMG, ((1, 1), (1, 1), (0, 0)))[top:top + 3, left:left + 3][:, ::-1]
    assert out.shape == (1, 3, 3)
    torch.testing.assert_close(out, torch.from_numpy((want.transpose(2, 0, 1) / 255 - 0.5) / 0.5).float())


def test_batch_transform_collates_samples():
    samples = [(np.full((4, 4, 3), i, np.uint8), i) for i in range(3)]
    x, y = BatchTransform(mean=(0, 0, 0), std=(1, 1, 1))(samples)
    assert x.shape == (3, 3, 4, 4) and x.dtype == torch.float32 and y.tolist() == [0, 1, 2]
    torch.testing.assert_close(x[2], torch.full((3, 4, 4), 2 / 255))
    x, _ = BatchTransform(padding=1, flip=True, generator=torch.Generator().manual_seed(0))(samples)
    assert x.shape == (3, 3, 4, 4)
