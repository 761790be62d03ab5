"""The data root is decided in tritnet.paths alone: --data-root, then $TRITNET_DATA, then the project's
pyproject.toml; never a path assumed in the code."""
import pytest

from tritnet.paths import data_path, data_root


def test_the_order_argument_environment_project_file(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("TRITNET_DATA", raising=False)
    with pytest.raises(ValueError, match=r"no data folder: pass --data-root DIR, set TRITNET_DATA=DIR"):
        data_root()
    (tmp_path / "pyproject.toml").write_text('[tool.tritnet]\ndata-root = "from/project"\n')
    assert data_root() == tmp_path.joinpath("from/project").relative_to(tmp_path)
    monkeypatch.setenv("TRITNET_DATA", "/from/env")
    assert str(data_root()) == "/from/env"
    assert str(data_path("cifar10/x.tar.gz", "/given")) == "/given/cifar10/x.tar.gz"


def test_the_code_names_no_data_folder():
    from pathlib import Path
    import tritnet
    package = Path(tritnet.__file__).parent
    defaults = [f"{p.relative_to(package)}:{n}" for p in package.rglob("*.py")
                for n, line in enumerate(p.read_text().splitlines(), 1)
                if "../shared" in line and "default" in line]
    assert defaults == []
