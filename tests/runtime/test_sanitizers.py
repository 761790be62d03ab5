"""The C extension built with AddressSanitizer and UBSan (``TRITNET_SANITIZE``, runtime/build_ext.py) runs the
runtime's tests and a fuzz corpus of hostile packed files without a single report: no read or write past a
buffer, no use after free, no undefined integer arithmetic, anywhere the tests reach."""
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _runtime_lib(name):
    """The sanitizer runtime gcc links against, or None (no gcc, or the library is not installed)."""
    if not shutil.which("gcc"):
        return None
    path = subprocess.run(["gcc", f"-print-file-name={name}"], capture_output=True, text=True).stdout.strip()
    return str(Path(path).resolve()) if path and Path(path).is_file() else None


ASAN, UBSAN = _runtime_lib("libasan.so"), _runtime_lib("libubsan.so")


@pytest.fixture(scope="module")
def sanitized(tmp_path_factory):
    """A copy of tritnet_rt whose extension is built with -fsanitize=address,undefined, and the environment
    that runs Python with the sanitizer runtimes preloaded."""
    out = tmp_path_factory.mktemp("asan")
    env = {**os.environ, "TRITNET_SANITIZE": "address,undefined"}
    subprocess.run([sys.executable, "setup.py", "-q", "build_ext", "--build-lib", str(out / "lib"),
                    "--build-temp", str(out / "tmp")], cwd=ROOT / "runtime", env=env, check=True,
                   capture_output=True, text=True)
    pkg = out / "lib" / "tritnet_rt"
    shutil.copytree(ROOT / "runtime" / "tritnet_rt", pkg, dirs_exist_ok=True,
                    ignore=shutil.ignore_patterns("*.so", "__pycache__", "csrc"))
    so = next(pkg.glob("_tnrt*.so"))
    linked = subprocess.run(["ldd", str(so)], capture_output=True, text=True).stdout
    assert "libasan" in linked and "libubsan" in linked, linked
    run_env = {**os.environ, "LD_PRELOAD": f"{ASAN} {UBSAN}", "PYTHONPATH": f"{out / 'lib'}:{ROOT}",
               "ASAN_OPTIONS": "detect_leaks=0:halt_on_error=1:abort_on_error=0:exitcode=99",
               "UBSAN_OPTIONS": "halt_on_error=1:print_stacktrace=1:exitcode=99"}
    run_env.pop("TRITNET_SANITIZE", None)
    return out / "lib", run_env


def _check(proc):
    text = proc.stdout + proc.stderr
    assert "AddressSanitizer" not in text and "runtime error:" not in text, text[-6000:]
    assert proc.returncode == 0, text[-6000:]


pytestmark = [pytest.mark.slow, pytest.mark.skipif(ASAN is None or UBSAN is None or not sys.platform.startswith("linux"),
                                                     reason="needs gcc with libasan and libubsan (Debian: gcc)")]


def test_the_sanitized_build_is_the_one_imported(sanitized):
    lib, env = sanitized
    proc = subprocess.run([sys.executable, "-c", "import tritnet_rt._tnrt as m; print(m.__file__)"], env=env,
                          capture_output=True, text=True, cwd=ROOT)
    _check(proc)
    assert proc.stdout.strip().startswith(str(lib)), proc.stdout


def test_runtime_tests_run_clean_under_asan_and_ubsan(sanitized):
    lib, env = sanitized
    here = Path(__file__).parent
    tests = [str(here / f) for f in ("test_kernels.py", "test_runtime_layers.py", "test_accuracy.py",
                                     "test_hostile.py")]
    # all but the two 10,000-image ResNet-20 agreement runs, whose time is PyTorch's under the sanitizer's malloc
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-s", "-x", "-p", "no:cacheprovider", *tests,
                           "-k", "not resnet20_top1_agrees"],
                          env=env, capture_output=True, text=True, cwd=ROOT, timeout=1200)
    _check(proc)
    assert " passed" in proc.stdout and " failed" not in proc.stdout, proc.stdout[-3000:]


def test_fuzz_corpus_runs_clean_under_asan_and_ubsan(sanitized, tmp_path):
    from tools.fuzz_packed import fuzz, make_seeds
    lib, env = sanitized
    # the sanitized -O1 build runs a valid but large mutant (a 32x16384 input) several times slower
    report = fuzz(make_seeds(tmp_path / "seeds"), 2000, seed=7, keep=tmp_path / "failures", env=env,
                  limit_memory=False, timeout=300)
    assert report["failures"] == [], report["failures"][:5]
    assert report["counts"]["ran"] > 120 and report["counts"]["format"] > 1500, report["counts"]
