import pytest

from tritnet.data import open_files


@pytest.fixture(scope="session")
def cifar_tarball(shared_data):
    path = shared_data / "cifar10" / "cifar10-jpeg.tar.gz"
    if not path.is_file():
        pytest.skip(f"{path} missing")
    return path


@pytest.fixture(scope="session")
def cifar_files(cifar_tarball):
    """The real tarball, read once for the whole session (~1 s)."""
    return open_files(cifar_tarball)
