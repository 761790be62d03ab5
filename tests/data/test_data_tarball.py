import gzip
import io
import tarfile

import pytest

from tritnet.data import DataError, read_tar


def make_tar(path, members: dict, fmt=tarfile.GNU_FORMAT, gz=True, dirs=("a",)):
    with tarfile.open(path, "w:gz" if gz else "w", format=fmt) as tf:
        for d in dirs:
            info = tarfile.TarInfo(d)
            info.type = tarfile.DIRTYPE
            tf.addfile(info)
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    return path


LONG = "a/" + "deep_folder_name/" * 8 + "image.jpg"  # > 100 chars: needs a long-name record
MEMBERS = {"a/x.jpg": b"x" * 700, "./a/y.png": b"", LONG: bytes(range(256)) * 3, "a/b/z.txt": b"z" * 512}


@pytest.mark.parametrize("fmt", [tarfile.GNU_FORMAT, tarfile.PAX_FORMAT, tarfile.USTAR_FORMAT])
@pytest.mark.parametrize("gz", [True, False])
def test_read_tar_matches_tarfile(tmp_path, fmt, gz):
    members = dict(MEMBERS)
    if fmt == tarfile.USTAR_FORMAT:  # ustar splits long names into prefix + name instead
        members[LONG.replace("image.jpg", "i.jpg")[-150:].lstrip("/")] = members.pop(LONG)
    path = make_tar(tmp_path / ("t.tar.gz" if gz else "t.tar"), members, fmt, gz)
    got = read_tar(path)
    with tarfile.open(path) as tf:
        expected = {m.name.removeprefix("./"): tf.extractfile(m).read() for m in tf if m.isfile()}
    assert got == expected
    assert set(got) == {n.removeprefix("./") for n in members}


def test_read_tar_keep_filter(tmp_path):
    path = make_tar(tmp_path / "t.tgz", MEMBERS)
    assert set(read_tar(path, keep=lambda n: n.endswith(".txt"))) == {"a/b/z.txt"}


def test_read_tar_errors_name_the_archive(tmp_path):
    with pytest.raises(DataError, match="missing.tar.gz: cannot read tar archive"):
        read_tar(tmp_path / "missing.tar.gz")
    not_tar = tmp_path / "not.tar"
    not_tar.write_bytes(b"hello" * 200)
    with pytest.raises(DataError, match="not.tar: not a tar archive"):
        read_tar(not_tar)
    not_gz = tmp_path / "not.tar.gz"
    not_gz.write_bytes(b"hello" * 200)
    with pytest.raises(DataError, match="not.tar.gz: cannot read tar archive"):
        read_tar(not_gz)
    good = make_tar(tmp_path / "good.tar", MEMBERS, gz=False).read_bytes()
    cut = tmp_path / "cut.tar.gz"
    cut.write_bytes(gzip.compress(good[:2000]))
    with pytest.raises(DataError, match="cut.tar.gz: truncated"):
        read_tar(cut)
