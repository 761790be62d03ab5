"""The one .data reader (tritnet.darknet.datafile.DataFile) that the classifier loader, the detector data, the
CLI and the stage runner share: darknet's line rule, one path rule, names with spaces."""
from pathlib import Path

import pytest

from tritnet.darknet import names_from_data, read_data_cfg
from tritnet.darknet.datafile import DataFile
from tritnet.data import DataError
from tritnet.yolo.data import open_data


@pytest.fixture
def project(tmp_path):
    (tmp_path / "data").mkdir()
    (tmp_path / "cfg").mkdir()
    (tmp_path / "data" / "obj.names").write_text("traffic light\nstop sign  \n\nperson\n")
    (tmp_path / "data" / "train.txt").write_text("")
    (tmp_path / "cfg" / "obj.data").write_text(
        "# darknet removes every space in a line\n"
        "classes = 3\n"
        "train  = data/train.txt\n"
        "names = data/obj.names\n"
        "classes = 7\n"
        "backup = backup/\n")
    return tmp_path


def test_lines_read_as_darknet_reads_them(project):
    d = read_data_cfg(project / "cfg" / "obj.data")
    assert isinstance(d, DataFile) and dict(d) == {"classes": "3", "train": "data/train.txt",
                                                    "names": "data/obj.names", "backup": "backup/"}
    assert d.classes == 3 and d.top is None                     # the first 'classes' wins, as option_find


def test_paths_resolve_from_the_working_folder_then_beside_the_data_file_and_its_parents(project, monkeypatch):
    d = DataFile(project / "cfg" / "obj.data")
    # data/train.txt is not next to cfg/obj.data but under its parent
    assert d.train == project / "data" / "train.txt"
    monkeypatch.chdir(project)
    assert DataFile("cfg/obj.data").train == Path("data/train.txt")      # darknet's rule first
    assert d.backup == Path("backup/")                                   # missing: kept as given


def test_class_names_keep_inner_spaces_everywhere(project):
    data = project / "cfg" / "obj.data"
    assert names_from_data(data) == ["traffic light", "stop sign", "person"]
    assert open_data(data).names == ["traffic light", "stop sign", "person"]


def test_a_data_file_that_is_not_text_is_one_line(tmp_path):
    bad = tmp_path / "bad.data"
    bad.write_bytes(b"\xff\xfe\x00bad")
    with pytest.raises(DataError, match=r"bad\.data: cannot read \.data file"):
        DataFile(bad)
