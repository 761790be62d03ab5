"""The command-line tests (tritnet.cli) run each in its own temporary folder: the verbs write run folders
(runs/detect/train, runs/predict, ...) under the current one."""
import pytest

from tritnet.cli import main


@pytest.fixture(autouse=True)
def _runs_in_tmp(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)


@pytest.fixture
def cli(capsys):
    """cli(argv) -> (exit status, stdout, stderr) of ``tritnet ARGV`` run in this process (tritnet.cli.main)."""
    def run(argv):
        rc = main([str(x) for x in argv])
        out, err = capsys.readouterr()
        return rc, out, err
    return run
