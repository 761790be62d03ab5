"""Files a user names may be hostile: a FIFO or a device (which would block or never end), a file far larger than
its kind, an image that declares more pixels than memory holds, a 16-bit image that a plain conversion clips.
Each is refused in one line naming the file, before it is read, or read as darknet reads it."""
import os
import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from tritnet.cli import main
from tritnet_rt.files import file_size, read_bytes, read_text


def _fails(argv, capsys) -> str:
    assert main([str(a) for a in argv]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("tritnet: error: ") and "\n" not in err and "Traceback" not in err, err
    return err


@pytest.fixture
def fifo(tmp_path):
    path = tmp_path / "pipe.weights"
    os.mkfifo(path)
    return path


def test_only_regular_files_are_read_and_never_past_the_limit(tmp_path, fifo):
    with pytest.raises(ValueError, match="pipe.weights: not a regular file"):
        read_bytes(fifo, "weights file", 100)                       # returns at once: os.stat does not open it
    with pytest.raises(ValueError, match="/dev/zero: not a regular file"):
        read_bytes("/dev/zero", "weights file", 100)
    with pytest.raises(ValueError, match=f"{tmp_path}: is a folder, not a cfg"):
        file_size(tmp_path, "cfg")
    big = tmp_path / "big.txt"
    with open(big, "wb") as f:                                      # 3 GB, sparse: nothing is written
        f.truncate(3 << 30)
    with pytest.raises(ValueError, match=r"big.txt: 3,221,225,472 bytes, more than a names file can hold here "
                                         r"\(1,000\)"):
        read_text(big, "names file", 1000)
    (tmp_path / "latin1.txt").write_bytes("café".encode("latin-1"))
    with pytest.raises(ValueError, match=r"latin1.txt: cannot read names file \(not UTF-8 text: byte 3"):
        read_text(tmp_path / "latin1.txt", "names file", 1000)
    (tmp_path / "ok.txt").write_bytes(b"\xef\xbb\xbfa\r\nb\n")
    assert read_text(tmp_path / "ok.txt", "names file", 100) == "a\r\nb\n"     # BOM dropped, line ends kept


def test_weights_cfgs_and_data_files_that_are_devices_fifos_or_huge(shared_data, tmp_path, fifo, capsys):
    ref, w = shared_data / "darknet" / "reference" / "cfg", shared_data / "darknet" / "weights"
    image = shared_data / "darknet" / "reference" / "inputs" / "bccd__BloodImage_00007__stb_rgb.png"
    data = tmp_path / "three.data"
    data.write_text(f"classes=3\nnames={w / 'labels5.txt'}\n")
    # the weights argument of darknet's argument order (only checked to exist before): /dev/zero, a FIFO
    for bad in ("/dev/zero", fifo):
        err = _fails(["classifier", "predict", data, w / "cifar_minin.cfg", bad, image], capsys)
        assert f"{bad}: not a regular file" in err
    # a weights file far larger than its network is refused before it is read (was: read whole, 3.4 GB)
    big = tmp_path / "big.weights"
    with open(big, "wb") as f:
        f.truncate(3 << 30)
    err = _fails(["info", ref / "ttt4_b1.cfg", big], capsys)
    assert "big.weights: 3,221,225,472 bytes, more than a weights file can hold here" in err
    huge_cfg = tmp_path / "huge.cfg"
    with open(huge_cfg, "wb") as f:
        f.truncate(3 << 30)
    assert "huge.cfg: 3,221,225,472 bytes, more than a cfg can hold here" in _fails(["info", huge_cfg], capsys)
    # names= in a .data file: a device, a FIFO
    for bad in ("/dev/zero", fifo):
        data.write_text(f"classes=2\nnames={bad}\n")
        err = _fails(["detector", "test", data, ref / "ttt4_b1.cfg", w / "ttt4_minloss.weights", image, "--out", ""],
                     capsys)
        assert f"{bad}: not a regular file" in err


def _png(path, width, height, mode_bytes=b"\x08\x02"):
    """A PNG of all-zero rows, written by hand: a few hundred kB that declares width x height pixels."""
    def chunk(kind, body):
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
    rows = zlib.compress(b"\x00" * ((width * 3 + 1) * height), 9)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">II", width, height) + mode_bytes + b"\0\0\0")
                     + chunk(b"IDAT", rows) + chunk(b"IEND", b""))
    return path


def test_an_image_of_too_many_pixels_is_refused_before_it_is_decoded(tmp_path, shared_data, capsys):
    """13,000 x 13,000 is under Pillow's own bomb limit (179 M pixels) and took 6.7 GB through detector test."""
    from tritnet.data.decode import read_image
    from tritnet.data.errors import DataError
    from tritnet_rt.detect import MAX_PIXELS, read_rgb
    bomb = _png(tmp_path / "bomb.png", 13000, 13000)
    assert bomb.stat().st_size < 1 << 20 and 13000 * 13000 > MAX_PIXELS
    with pytest.raises(ValueError, match=r"bomb.png: 13000x13000 pixels, more than the 50,000,000 an image may"):
        read_rgb(bomb)
    with pytest.raises(DataError, match=r"bomb.png: 13000x13000 pixels, more than"):
        read_image(bomb)
    ref, w = shared_data / "darknet" / "reference" / "cfg", shared_data / "darknet" / "weights"
    err = _fails(["detector", "test", ref / "ttt4.data", ref / "ttt4_b1.cfg", w / "ttt4_minloss.weights", bomb,
                  "--out", ""], capsys)
    assert "bomb.png: 13000x13000 pixels" in err


def test_16_bit_grayscale_keeps_its_top_8_bits_as_stb_image_reads_it(tmp_path):
    """stb_image (darknet's loader) converts 16-bit samples to 8 by v >> 8; Pillow's convert("RGB") clips
    every value above 255 to white."""
    from tritnet.data.decode import read_image
    from tritnet_rt.detect import read_rgb
    gray = (np.arange(12 * 16).reshape(12, 16) * 341).astype(np.uint16)        # 0 .. 65,131
    Image.fromarray(gray).save(tmp_path / "g16.png")
    assert Image.open(tmp_path / "g16.png").mode.startswith("I")
    want = np.repeat((gray >> 8).astype(np.uint8)[:, :, None], 3, axis=2)
    assert np.array_equal(read_rgb(tmp_path / "g16.png"), want)
    assert np.array_equal(read_image(tmp_path / "g16.png"), want)


def test_values_darknet_would_misread_are_refused_naming_file_and_line(shared_data, tmp_path, capsys):
    from tritnet.darknet import CfgError, parse_cfg
    from tritnet.darknet.datafile import DataFile
    from tritnet.errors import DataError
    ref, w = shared_data / "darknet" / "reference" / "cfg", shared_data / "darknet" / "weights"
    text = (ref / "ttt4_b1.cfg").read_text()
    (tmp_path / "neg.cfg").write_text(text.replace("anchors = 1.08,1.19", "anchors = -1.08,1.19"))
    with pytest.raises(CfgError, match=r"neg.cfg:84: \[region\]: anchors: -1.08 is not a box size"):
        parse_cfg(tmp_path / "neg.cfg")                  # darknet drew boxes of negative width from it
    (tmp_path / "arabic.cfg").write_text(text.replace("filters=6\n", "filters=\u0666\n", 1))
    with pytest.raises(CfgError, match=r"arabic.cfg:25: \[convolutional\]: bad value for filters: '٦' is not an "
                                       r"integer"):
        parse_cfg(tmp_path / "arabic.cfg")               # int() reads it as 6, darknet's atoi as 0
    for line, shown in (("top=0", "'0'"), ("top=-3", "'-3'"), ("classes=\u0662", "'٢'")):
        key = line.split("=")[0]
        (tmp_path / "x.data").write_text(f"{line}\n" if key == "classes" else f"classes=2\n{line}\n")
        with pytest.raises(DataError, match=rf"x.data: '{key}' must be an integer >= 1, got {shown}"):
            DataFile(tmp_path / "x.data")
    # fewer names than the detector has classes: was a bare "1" for the class without a name
    (tmp_path / "one.names").write_text("cell\n")
    (tmp_path / "one.data").write_text(f"classes=2\nnames={tmp_path / 'one.names'}\n")
    image = shared_data / "darknet" / "reference" / "inputs" / "bccd__BloodImage_00007__stb_rgb.png"
    err = _fails(["detector", "test", tmp_path / "one.data", ref / "ttt4_b1.cfg", w / "ttt4_minloss.weights", image,
                  "--out", ""], capsys)
    assert err.endswith("one.data: its names file lists 1 names, " + str(ref / "ttt4_b1.cfg") + " detects 2 classes")


def test_mismatched_files_are_named_in_the_error(shared_data, tmp_path, capsys):
    w, ref = shared_data / "darknet" / "weights", shared_data / "darknet" / "reference" / "cfg"
    image = shared_data / "darknet" / "reference" / "inputs" / "bccd__BloodImage_00007__stb_rgb.png"
    (tmp_path / "two.names").write_text("a\nb\n")
    (tmp_path / "two.data").write_text(f"classes=2\nnames={tmp_path / 'two.names'}\n")
    err = _fails(["classifier", "predict", tmp_path / "two.data", w / "cifar_minin.cfg", w / "cifar_minin.weights",
                  image], capsys)
    assert err.endswith(f"two.data: 2 labels for the 3 outputs of {w / 'cifar_minin.cfg'}")
    err = _fails(["detector", "test", tmp_path / "two.data", w / "cifar_minin.cfg", w / "cifar_minin.weights", image,
                  "--out", ""], capsys)
    assert f"{w / 'cifar_minin.cfg'}: no [region] or [yolo] layer to detect with" in err


def test_a_too_thin_image_is_named_alone_and_skipped_among_others(shared_data, tmp_path, capsys):
    """1 x 5,000 letterboxes to 0 x 360 in ttt4's 360 x 360 input: darknet divides by that zero (numpy printed
    two divide-by-zero warnings and boxes of infinite size)."""
    ref, w = shared_data / "darknet" / "reference" / "cfg", shared_data / "darknet" / "weights"
    Image.new("RGB", (1, 5000)).save(tmp_path / "thin.png")
    good = shared_data / "darknet" / "reference" / "inputs" / "bccd__BloodImage_00007__stb_rgb.png"
    cmd = ["detector", "test", ref / "ttt4.data", ref / "ttt4_b1.cfg", w / "ttt4_minloss.weights"]
    err = _fails(cmd + [tmp_path / "thin.png", "--out", ""], capsys)
    assert err.endswith("thin.png: a 1x5000 image letterboxes to 0x360 pixels in a 360x360 network: too thin to "
                        "detect in")
    assert main([str(a) for a in cmd + [tmp_path / "thin.png", good, "--out", ""]]) == 0
    out, err = capsys.readouterr()
    assert err.splitlines()[0].endswith("thin.png: a 1x5000 image letterboxes to 0x360 pixels in a 360x360 "
                                        "network: too thin to detect in; skipped")
    assert "1 image (1 skipped)" in out + err and "RuntimeWarning" not in err


def test_cfg_warnings_are_one_line_naming_the_cfg(shared_data, tmp_path):
    text = (shared_data / "darknet" / "reference" / "cfg" / "ttt4_b1.cfg").read_text()
    (tmp_path / "extra.cfg").write_text(text.replace("width=360\n", "width=360\nfoo=1\n", 1))
    import subprocess
    import sys
    done = subprocess.run([sys.executable, "-m", "tritnet", "info", str(tmp_path / "extra.cfg")], capture_output=True,
                          text=True, timeout=120)                # pytest captures warnings in-process
    assert done.returncode == 0, done.stderr
    assert done.stderr == f"warning: {tmp_path / 'extra.cfg'}:5: [net]: unknown key 'foo' (pjreddie's darknet " \
                          "ignores it: 'Unused field')\n"


def test_a_gzip_bomb_member_of_an_image_tarball_is_refused_and_other_big_members_skipped(tmp_path):
    """A 300 MB member compresses to a few hundred kB: read whole, a small .tar.gz could claim gigabytes."""
    import gzip
    import io
    import tarfile
    from tritnet.data.errors import DataError
    from tritnet.data.tarball import MEMBER_LIMIT, read_tar
    big = 300 << 20
    assert big > MEMBER_LIMIT

    def archive(path, members):
        raw = io.BytesIO()
        with tarfile.open(fileobj=raw, mode="w", format=tarfile.USTAR_FORMAT) as tar:
            for name, size in members:
                info = tarfile.TarInfo(name)
                info.size = size
                tar.addfile(info, io.BytesIO(bytes(size)))
        path.write_bytes(gzip.compress(raw.getvalue(), 1))
        return path
    bomb = archive(tmp_path / "bomb.tar.gz", [("train/cat/a.jpg", big)])
    assert bomb.stat().st_size < 2 << 20
    with pytest.raises(DataError, match=r"bomb.tar.gz: the member at byte 0 declares 314,572,800 bytes, more than "
                                        r"one can hold here"):
        read_tar(bomb, lambda name: name.endswith(".jpg"))
    mixed = archive(tmp_path / "mixed.tar.gz", [("video.bin", big), ("train/cat/b.jpg", 3)])
    assert read_tar(mixed, lambda name: name.endswith(".jpg")) == {"train/cat/b.jpg": b"\0\0\0"}


def test_a_cfg_too_large_for_memory_fails_in_one_line(shared_data, tmp_path):
    """A valid cfg may ask for more memory than the machine has: ttt4 at 8192x8192 needs 1.5 GiB for one conv's
    output. Under a 6 GB address-space limit the allocation fails; the command prints one line and exits 2
    (was: PyTorch's allocator traceback)."""
    import resource
    import subprocess
    import sys
    w = shared_data / "darknet" / "weights"
    cfg = (w / "ttt4.cfg").read_text()
    cfg = "\n".join("width=8192" if line.startswith("width=") else "height=8192" if line.startswith("height=")
                    else line for line in cfg.splitlines())
    (tmp_path / "big.cfg").write_text(cfg + "\n")
    (tmp_path / "t.data").write_text(f"classes=2\nnames={w / 'labels5.txt'}\n")
    Image.new("RGB", (64, 64)).save(tmp_path / "x.png")

    def limit():
        resource.setrlimit(resource.RLIMIT_AS, (6 << 30, 6 << 30))
    done = subprocess.run([sys.executable, "-m", "tritnet", "detector", "test", tmp_path / "t.data",
                           tmp_path / "big.cfg", w / "ttt4_minloss.weights", tmp_path / "x.png", "--no-save"],
                          capture_output=True, text=True, timeout=300, preexec_fn=limit,
                          env={**os.environ, "OMP_NUM_THREADS": "1"})
    errors = [line for line in done.stderr.splitlines() if not line.startswith("warning: ")]
    assert done.returncode == 2, done.stderr[-2000:]
    assert errors == ["tritnet: error: out of memory: could not allocate 1.50 GiB; a smaller input (the cfg's "
                      "width and height, or the images'), batch or subdivisions needs less"]


def test_out_of_memory_is_told_from_other_runtime_errors():
    from tritnet_rt.cliargs import out_of_memory, run_main
    cpu = RuntimeError("[enforce fail at alloc_cpu.cpp:127] err == 0. DefaultCPUAllocator: can't allocate memory: "
                       "you tried to allocate 1073741824 bytes. Error code 12 (Cannot allocate memory)")
    assert out_of_memory(cpu) == "could not allocate 1.00 GiB"
    cuda = RuntimeError("CUDA out of memory. Tried to allocate 20.00 MiB (GPU 0; 79.11 GiB total capacity)\nmore")
    assert out_of_memory(cuda) == "CUDA out of memory. Tried to allocate 20.00 MiB (GPU 0; 79.11 GiB total capacity)"
    assert out_of_memory(MemoryError()) == "MemoryError"
    assert out_of_memory(RuntimeError("shape mismatch")) is None
    assert out_of_memory(ValueError("out of memory")) is None

    def bug(_):
        raise RuntimeError("shape mismatch")
    with pytest.raises(RuntimeError, match="shape mismatch"):      # a bug keeps its traceback
        run_main("tritnet", lambda: None, bug)


def test_an_image_in_a_folder_named_with_a_colon_is_reported_by_its_whole_path(tmp_path):
    """The loader takes the reason of an image error from the error, not by splitting its message at ': ' (a path
    'a: b/x.png' gave the reason 'b/x.png: not an image ...'); cached, decoded on demand and for evaluation."""
    from tritnet.yolo.labels import Issues
    from tritnet.yolo.loader import EvalSet, ImageStore, TrainSet
    folder = tmp_path / "day: 1"
    folder.mkdir()
    (folder / "bad.png").write_bytes(b"not an image")
    Image.new("RGB", (8, 8), (200, 10, 10)).save(folder / "good.png")
    paths = [str(folder / "bad.png"), str(folder / "good.png")]
    issues = Issues(warn=False)
    store = ImageStore(paths, cache_mb=100, workers=0, issues=issues)
    assert store.cached and issues.items == [(paths[0], "not an image Pillow can read")]
    lazy = ImageStore(paths, cache_mb=0, workers=0)
    records = [type("Record", (), {"boxes": np.zeros((0, 4), np.float32), "classes": np.zeros(0, np.int64)})()] * 2
    aug = dict(jitter=0, hue=0, saturation=1, exposure=1, flip=False)
    _, _, skipped = TrainSet(records, lazy, aug, 4)[(0, 16, 16, 0)]
    assert skipped == [(paths[0], "not an image Pillow can read")]
    assert EvalSet(records, lazy, 16, 16)[0][4] == "not an image Pillow can read"
