"""The ARM kernels on an x86 machine: cross-compiled (Debian's aarch64, armhf and armel gcc) into a standalone
C harness (arm_harness.c: no Python on the target), statically linked, and run under qemu-user with CPU models
that have and lack the dot-product and I8MM extensions; every path the CPU model supports is compared with the
serial kernels bit for bit, and the path cpu.c picks is checked per model. Also: the inner loops' instruction
counts from the disassembly (BENCHMARKS.md, section 7), an AddressSanitizer run, which ARM files build_ext.py
compiles, libatomic on armv6, and a SIMDe build of the NEON and dot-product kernels for machines without the
cross tools.

    python tests/runtime/test_arm.py      # the instruction-count table

Skipped where the tools are missing (.ci/run installs them: gcc-aarch64-linux-gnu gcc-arm-linux-gnueabihf
gcc-arm-linux-gnueabi qemu-user libsimde-dev)."""
import platform
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
RUNTIME = HERE.parents[1] / "runtime"
CSRC = RUNTIME / "tritnet_rt" / "csrc"
# build_ext.py's flags (checked below), plus warnings
FLAGS = ["-O3", "-std=c11", "-ffp-contract=off", "-fno-math-errno"]
KERNELS = ["cpu.c", "pool.c", "kernels_serial.c", "kernels_neon.c", "kernels_neon_dot.c", "kernels_neon_i8mm.c"]
# compiler command, qemu, extra link flags. armv6: Raspberry Pi OS 32-bit's baseline (armv6 + VFP; Debian's
# armel toolchain with -march=armv6 stands in for it), which has no 64-bit atomic instructions
TARGETS = {
    "aarch64": (["aarch64-linux-gnu-gcc"], "qemu-aarch64", []),
    "armv7": (["arm-linux-gnueabihf-gcc"], "qemu-arm", []),
    "armv6": (["arm-linux-gnueabi-gcc", "-march=armv6", "-marm", "-mfpu=vfp", "-mfloat-abi=softfp"], "qemu-arm",
              ["-latomic"]),
}
CASES = 150          # random GEMM shapes per path (each run: a few seconds under qemu)


def tool(*names):
    for n in names:
        if shutil.which(n):
            return shutil.which(n)
    return None


def need(target):
    cc, qemu, _ = TARGETS[target]
    if not tool(cc[0]):
        pytest.skip(f"needs {cc[0]} (apt-get install gcc-{cc[0][:-4]})")
    if not tool(qemu, qemu + "-static"):
        pytest.skip(f"needs {qemu} (apt-get install qemu-user)")
    return tool(qemu, qemu + "-static")


@pytest.fixture(scope="module")
def harness(tmp_path_factory):
    """target -> the statically linked harness, built once per module"""
    built = {}

    def build(target):
        if target not in built:
            cc, _, libs = TARGETS[target]
            exe = tmp_path_factory.mktemp(target) / "arm_harness"
            src = [str(HERE / "arm_harness.c")] + [str(CSRC / f) for f in KERNELS]
            out = subprocess.run([*cc, *FLAGS, "-Wall", "-Wextra", "-static", f"-I{CSRC}", *src, "-o", str(exe),
                                  "-lm", "-lpthread", *libs], capture_output=True, text=True)
            assert out.returncode == 0 and "warning:" not in out.stderr, out.stderr
            built[target] = exe
        return built[target]
    return build


def run_harness(qemu, cpu, exe, *args, timeout=300):
    return subprocess.run([qemu, "-cpu", cpu, str(exe), *args], capture_output=True, text=True, timeout=timeout)


def lines(out):
    keys = ("compiled", "supported", "selected")
    return dict(ln.split(": ", 1) for ln in out.splitlines() if ln.split(":")[0] in keys)


# target, qemu CPU model, the paths it must support (cpu.c), the one picked by default
RUNS = [
    ("aarch64", "cortex-a72", "serial neon", "neon"),                        # Raspberry Pi 4: no dotprod
    ("aarch64", "cortex-a76", "serial neon dotprod", "dotprod"),             # Raspberry Pi 5
    ("aarch64", "max", "serial neon dotprod i8mm", "i8mm"),                  # ARMv8.6+ (Neoverse V1/N2 class)
    ("armv7", "cortex-a7", "serial neon", "neon"),                           # Pi 2/3 with a 32-bit OS
    ("armv6", "arm1176", "serial", "serial"),                                # Pi 1 / Zero: no NEON
    ("armv6", "cortex-a7", "serial neon", "neon"),                           # Raspberry Pi OS 32-bit on a Pi 2+
]


@pytest.mark.parametrize("target,cpu,supported,selected", RUNS, ids=[f"{r[0]}-{r[1]}" for r in RUNS])
def test_every_supported_arm_path_matches_serial_under_qemu(harness, target, cpu, supported, selected):
    qemu = need(target)
    out = run_harness(qemu, cpu, harness(target), str(CASES))
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-2000:]
    info = lines(out.stdout)
    assert info["compiled"] == ("serial neon dotprod i8mm" if target == "aarch64" else "serial neon")
    assert info["supported"] == supported and info["selected"] == selected, out.stdout[:300]
    m = re.search(r"(\d+) passed, (\d+) failed", out.stdout)
    assert m and m.group(2) == "0", out.stdout[-3000:]
    # the pool alone on armv6 without NEON; every NEON path otherwise (the popcount GEMM and float steps once)
    assert int(m.group(1)) >= (2 if selected == "serial" else CASES), out.stdout[-500:]
    for path in supported.split()[1:]:
        assert f"testing {path}" in out.stdout


@pytest.mark.parametrize("target,cpu", [("aarch64", "max"), ("armv7", "cortex-a15")])
def test_arm_kernels_read_and_write_nothing_out_of_bounds_under_asan(tmp_path, target, cpu):
    """AddressSanitizer (the cross toolchain's libasan, dynamically linked, run with qemu -L): the harness
    allocates the activations to the last byte the serial kernel reads, so a SIMD load past it is caught."""
    qemu = need(target)
    cc = TARGETS[target][0]
    probe = tmp_path / "probe.c"
    probe.write_text("int main(void) { return 0; }\n")
    linked = subprocess.run([*cc, "-fsanitize=address", str(probe), "-o", str(tmp_path / "probe")],
                            capture_output=True, text=True)
    if linked.returncode:       # the toolchain's libasan is missing: not the kernels' fault
        pytest.skip(f"no AddressSanitizer runtime for {cc[0]}: {linked.stderr[-300:]}")
    exe = tmp_path / "arm_harness_asan"
    src = [str(HERE / "arm_harness.c")] + [str(CSRC / f) for f in KERNELS]
    out = subprocess.run([*cc, "-O1", "-g", "-fsanitize=address", "-std=c11", "-ffp-contract=off", f"-I{CSRC}", *src,
                          "-o", str(exe), "-lm", "-lpthread"], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-3000:]          # a kernel that does not compile is a failure
    sysroot = "/usr/" + cc[0][:-4]
    run = subprocess.run([qemu, "-L", sysroot, "-cpu", cpu, str(exe), "60"], capture_output=True, text=True,
                         timeout=300, env={"ASAN_OPTIONS": "detect_leaks=0"})
    assert run.returncode == 0 and "ERROR: AddressSanitizer" not in run.stderr, run.stderr[-3000:]
    assert re.search(r"\d+ passed, 0 failed", run.stdout), run.stdout[-2000:]


@pytest.mark.parametrize("cpu,isa", [("cortex-a72", "dotprod"), ("cortex-a76", "i8mm")])
def test_a_path_the_cpu_model_lacks_traps_so_the_detection_checks_mean_something(harness, cpu, isa):
    qemu = need("aarch64")
    out = run_harness(qemu, cpu, harness("aarch64"), "2", "--force", isa, timeout=60)
    assert isa not in lines(out.stdout)["supported"]
    assert out.returncode in (-4, 132) or "Illegal instruction" in out.stderr, (out.returncode, out.stdout, out.stderr)


def test_armv6_pool_needs_libatomic_and_build_ext_links_it(tmp_path, monkeypatch):
    """GCC has no 64-bit atomic instructions for armv6 (ldrexd came with armv6k) and calls libatomic: the
    extension failed to load on Raspberry Pi OS 32-bit with __atomic_load_8 undefined."""
    cc = TARGETS["armv6"][0]
    if not tool(cc[0]):
        pytest.skip(f"needs {cc[0]}")
    obj = tmp_path / "pool.o"
    subprocess.run([*cc, *FLAGS, "-c", str(CSRC / "pool.c"), "-o", str(obj)], check=True)
    nm = subprocess.run([tool("arm-linux-gnueabi-nm", "nm"), "-u", str(obj)], capture_output=True, text=True).stdout
    assert "__atomic_load_8" in nm
    sys.path.insert(0, str(RUNTIME))
    try:
        import build_ext
    finally:
        sys.path.remove(str(RUNTIME))
    monkeypatch.setattr(platform, "machine", lambda: "armv6l")
    monkeypatch.setattr(sys, "maxsize", 2**31 - 1)
    assert "atomic" in build_ext.extension("csrc").libraries


ARM_FILES = ["kernels_neon.c", "kernels_neon_dot.c", "kernels_neon_i8mm.c"]


@pytest.mark.parametrize("machine,bits,files,atomic", [
    ("x86_64", 64, ["kernels_avx2.c", "kernels_avx512.c", "kernels_amx.c"], False),
    ("aarch64", 64, ARM_FILES, False),
    ("arm64", 64, ARM_FILES, False),          # macOS
    ("armv7l", 32, ARM_FILES, True),
    ("aarch64", 32, ARM_FILES, True),         # a 32-bit Raspberry Pi OS on a 64-bit kernel
])
def test_build_ext_compiles_the_arm_files_on_arm(monkeypatch, machine, bits, files, atomic):
    sys.path.insert(0, str(RUNTIME))
    try:
        import build_ext
    finally:
        sys.path.remove(str(RUNTIME))
    monkeypatch.delenv("TRITNET_SANITIZE", raising=False)
    monkeypatch.setattr(platform, "machine", lambda: machine)
    monkeypatch.setattr(sys, "maxsize", 2**63 - 1 if bits == 64 else 2**31 - 1)
    monkeypatch.setattr(sys, "platform", "linux")
    ext = build_ext.extension("csrc")
    names = [Path(s).name for s in ext.sources]
    assert names[:5] == ["module.c", "ops.c", "pool.c", "cpu.c", "kernels_serial.c"] and names[5:] == files
    assert ("atomic" in ext.libraries) == atomic
    assert ext.extra_compile_args == FLAGS


@pytest.mark.parametrize("flags", [["-march=armv7-a", "-mfpu=neon"], ["-march=armv6", "-marm", "-mfpu=vfp"]],
                         ids=["armv7-neon-flags", "armv6-hard-float"])
def test_32bit_arm_builds_compile_clean_with_neon_code(tmp_path, flags):
    """NEON in the flags (no pragma needed), and Raspberry Pi OS 32-bit's own configuration (armv6, VFP,
    hard float: the NEON file turns NEON on for itself). The static harness runs the armel variant of the
    latter; this compiles the hard-float one."""
    if not tool("arm-linux-gnueabihf-gcc"):
        pytest.skip("needs arm-linux-gnueabihf-gcc")
    obj = tmp_path / "neon.o"
    for src in ("cpu.c", "kernels_neon.c"):
        out = subprocess.run(["arm-linux-gnueabihf-gcc", *FLAGS, "-Wall", "-Wextra", *flags, "-c", str(CSRC / src),
                              "-o", str(obj)], capture_output=True, text=True)
        assert out.returncode == 0 and "warning:" not in out.stderr, out.stderr
    dis = subprocess.run([tool("arm-linux-gnueabihf-objdump"), "-d", str(obj)], capture_output=True, text=True).stdout
    assert "vmlal.s8" in dis and "vcnt.8" in dis


@pytest.mark.skipif(not Path("/usr/include/simde/arm/neon.h").exists() or not shutil.which("gcc"),
                    reason="needs gcc and SIMDe headers (apt-get install libsimde-dev)")
def test_neon_and_dotprod_paths_match_serial_under_simde(tmp_path):
    """Where qemu is missing: the NEON and SDOT kernels against SIMDe's emulation (it has no USMMLA)."""
    exe = tmp_path / "harness"
    src = [HERE / "arm_harness.c"] + [CSRC / f for f in ("pool.c", "kernels_serial.c", "kernels_neon.c",
                                                         "kernels_neon_dot.c")]
    subprocess.run(["gcc", "-O1", "-std=gnu11", "-DTN_SIMDE", "-ffp-contract=off", "-fno-math-errno", f"-I{CSRC}",
                    *map(str, src), "-o", str(exe), "-lm", "-lpthread"], check=True, capture_output=True, text=True)
    out = subprocess.run([str(exe), "40"], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0 and re.search(r"\d+ passed, 0 failed", out.stdout), out.stdout[-3000:]
    assert "testing neon" in out.stdout and "testing dotprod" in out.stdout


# ---- instruction counts of the inner loops, from objdump of the cross-compiled objects

# multiply-adds per instruction: int8 GEMM (smlal .8h: 8; sdot .4s: 16; usmmla: 2x2x8 = 32); popcount GEMM:
# one cnt of 128 bits per 128 ternary products, but two of them (both, neg) per product, so 64
MACS = {"smlal": 8, "smlal2": 8, "vmlal.s8": 8, "sdot": 16, "usmmla": 32, "smmla": 32, "cnt": 64, "vcnt.8": 64}
_COND = "eq|ne|cs|cc|hs|lo|mi|pl|vs|vc|hi|ls|ge|lt|gt|le|al|any|none|nfrst|last|first"
_BRANCH = re.compile(rf"^(b(\.({_COND}))?|b({_COND})?(\.[wn])?|cbn?z|tbn?z)$")
COUNTED = {   # target, object: the GEMM functions whose inner loops go into the table
    ("aarch64", "kernels_neon.c"): ["tn_gemm_t8_neon", "tn_gemm_tt_neon"],
    ("aarch64", "kernels_neon_dot.c"): ["tn_gemm_t8_dotprod"],
    ("aarch64", "kernels_neon_i8mm.c"): ["tn_gemm_t8_i8mm"],
    ("armv7", "kernels_neon.c"): ["tn_gemm_t8_neon", "tn_gemm_tt_neon"],
}


def disassemble(objdump, obj):
    """{function: [(address, mnemonic, operands)]}"""
    text = subprocess.run([objdump, "-d", "--no-show-raw-insn", str(obj)], capture_output=True, text=True,
                          check=True).stdout
    funcs, cur = {}, None
    for line in text.splitlines():
        m = re.match(r"^[0-9a-f]+ <(.+)>:$", line)
        if m:
            cur = funcs.setdefault(m.group(1), [])
            continue
        m = re.match(r"^\s+([0-9a-f]+):\s+(\S+)\s*(.*)$", line)
        if m and cur is not None:
            cur.append((int(m.group(1), 16), m.group(2), m.group(3)))
    return funcs


def inner_loops(ins):
    """(instructions, multiply-adds) per iteration of each innermost loop (a backward branch with no other
    backward branch inside) that does multiply-adds"""
    back = []
    for addr, op, args in ins:
        t = re.search(r"([0-9a-f]+) <", args)
        if _BRANCH.match(op) and t and int(t.group(1), 16) <= addr:
            back.append((int(t.group(1), 16), addr))
    for start, end in back:
        if any(start <= s and e <= end and (s, e) != (start, end) for s, e in back):
            continue
        body = [x for x in ins if start <= x[0] <= end]
        macs = sum(MACS.get(op, 0) for _, op, _ in body)
        if macs:
            yield len(body), macs


def main_loop(ins):
    """the full tile's loop: the most multiply-adds per iteration; of several such (the tile inlined at more
    than one call), the one with the most instructions"""
    return max(inner_loops(ins), key=lambda x: (x[1], x[0]))


def loop_counts(tmp):
    rows = []
    for (target, src), funcs in COUNTED.items():
        cc = TARGETS[target][0]
        obj = Path(tmp) / f"{target}_{src}.o"
        subprocess.run([*cc, *FLAGS, "-c", str(CSRC / src), "-o", str(obj)], check=True)
        dis = disassemble(tool(cc[0][:-3] + "objdump"), obj)
        for f in funcs:
            n, macs = main_loop(dis[f])
            rows.append((target, f, n, macs, 256 * n / macs))
    return rows


def test_inner_loop_instruction_counts(tmp_path):
    """The old NEON int8 loop took 91 instructions per 256 multiply-adds (a load, eor and dup per activation
    byte for two smlal); the SDOT loop must take at most a third of that."""
    for cc in ("aarch64-linux-gnu-gcc", "arm-linux-gnueabihf-gcc"):
        if not tool(cc) or not tool(cc[:-3] + "objdump"):
            pytest.skip(f"needs {cc} and its objdump")
    per = {(t, f): p for t, f, _, _, p in loop_counts(tmp_path)}
    assert per["aarch64", "tn_gemm_t8_dotprod"] <= 91 / 3
    assert per["aarch64", "tn_gemm_t8_i8mm"] <= per["aarch64", "tn_gemm_t8_dotprod"]
    assert per["aarch64", "tn_gemm_t8_neon"] <= 50 and per["armv7", "tn_gemm_t8_neon"] <= 60
    assert per["aarch64", "tn_gemm_tt_neon"] <= 20


if __name__ == "__main__":
    import tempfile
    with tempfile.TemporaryDirectory() as d:
        print(f"{'target':8s} {'function':22s} {'instructions':>12s} {'MACs':>6s} {'per 256 MACs':>13s}")
        for target, f, n, macs, per in loop_counts(d):
            print(f"{target:8s} {f:22s} {n:12d} {macs:6d} {per:13.1f}")
