"""The AVX-512 and NEON kernels on a CPU that lacks them: compiled against SIMDe (portable emulation of the
intrinsics, Debian package libsimde-dev) and compared with the serial kernels, bit for bit. Skipped when
SIMDe or a C compiler is missing; the natively supported paths are tested in test_kernels.py."""
import shutil
import subprocess
from pathlib import Path

import pytest

CSRC = Path(__file__).resolve().parents[2] / "runtime" / "tritnet_rt" / "csrc"


@pytest.mark.skipif(not Path("/usr/include/simde/x86/avx512.h").exists() or not shutil.which("gcc"),
                    reason="needs gcc and SIMDe headers (apt-get install libsimde-dev)")
def test_avx512_neon_and_avx2_quantizer_kernels_match_serial_under_emulation(tmp_path):
    exe = tmp_path / "harness"
    src = [Path(__file__).with_name("simde_harness.c")] + [CSRC / f for f in
                                                           ("kernels_serial.c", "kernels_avx512.c", "kernels_avx2.c",
                                                            "kernels_neon.c")]
    subprocess.run(["gcc", "-O1", "-std=gnu11", "-DTN_SIMDE", "-ffp-contract=off", f"-I{CSRC}", *map(str, src),
                    "-o", str(exe), "-lm"], check=True, capture_output=True, text=True)
    out = subprocess.run([str(exe)], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and "50 passed, 0 failed" in out.stdout, out.stdout + out.stderr
