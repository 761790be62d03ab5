"""The fuzz test: 4,000 seeded mutants of real packed files (byte flips, truncations, header-JSON edits with the
checksums made right, duplicated and renamed nodes, rewired inputs, wrong shapes, offsets and dtypes, blown-up
attributes, corrupted tensor data) each load and run cleanly or fail with FormatError, in a worker process
under an address-space limit and a per-file timeout: never a signal, a hang, another exception type or an
allocation over the limit. The 10,000-mutant run is tools/fuzz_packed.py (BENCHMARKS.md)."""
import pytest

from tools.fuzz_packed import fuzz, make_seeds


@pytest.mark.slow
def test_mutants_load_and_run_or_fail_with_format_error(tmp_path):
    report = fuzz(make_seeds(tmp_path / "seeds"), 4000, seed=2026, keep=tmp_path / "failures")
    counts = report["counts"]
    assert report["failures"] == [], report["failures"][:5]
    assert counts["tried"] == 4000 and counts["format"] + counts["ran"] == 4000
    # the mutants reach both sides: most are refused, a good share pass the checks and run the kernels
    assert counts["format"] > 3000 and counts["ran"] > 250, counts
