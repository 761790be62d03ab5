"""Every benchmark script imports: the commands BENCHMARKS.md cites must still run after a refactor of the API
they call (one once kept a `layers=**options` that a rename left behind, a syntax error no test saw)."""
import importlib.util
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "bench"
SCRIPTS = sorted(p for p in BENCH.glob("*.py") if not p.name.startswith("_"))


def test_the_bench_folder_has_its_scripts():
    assert {"classify_methods.py", "runtime_bench.py", "staged_cifar.py", "staged_bccd.py"} <= {p.name for p in SCRIPTS}


@pytest.mark.parametrize("script", SCRIPTS, ids=[p.stem for p in SCRIPTS])
def test_a_bench_script_imports(script, monkeypatch):
    monkeypatch.syspath_prepend(str(BENCH))
    spec = importlib.util.spec_from_file_location(f"bench_{script.stem}", script)
    module = importlib.util.module_from_spec(spec)
    import tritnet.train.classifier as classifier
    before = dict(vars(classifier))
    spec.loader.exec_module(module)         # runs the module's top level, not its __main__ block
    # importing a script changes nothing of the library (one wrapped the trainer at import and broke later tests)
    assert {k: v for k, v in vars(classifier).items() if before.get(k) is not v} == {}
    assert 'if __name__ == "__main__":' in script.read_text(), f"{script.name}: not a command"
    sys.modules.pop(f"bench_{script.stem}", None)
