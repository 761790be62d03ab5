"""Fuzz the packed-model reader and runtime: mutate real packed files the way a hostile sender would and
require every mutant to load and run cleanly or to fail with ``FormatError``. Never a signal, a hang, another
exception type, or an allocation over the worker's memory limit.

    python tools/fuzz_packed.py --mutants 10000 --out bench/results/fuzz_packed.json

Seeds are small models made here (a ternary ResNet-20, an STTN ResNet-20 at 1.6 bits, darknet detectors with
yolo and region heads, a darknet classifier, an AlexeyAB detector) covering every op of the format. Mutants run in a worker process
that imports tritnet_rt only (no PyTorch), under an address-space limit; the parent times each one and
restarts the worker after a crash. A failing mutant is saved beside the report so it can be replayed:
``python tools/fuzz_packed.py --replay FILE``.
"""
from __future__ import annotations

import argparse
import copy
import json
import platform
import random
import resource
import select
import struct
import subprocess
import sys
import tempfile
import time
import zlib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MEMORY_LIMIT = 6 << 30               # the worker's address space: a real model of the seeds' size needs < 1 GiB
TIMEOUT_S = 60.0                     # one mutant, load and run

# ------------------------------------------------------------------------------------------ seeds
# tools/fuzz_seeds/*.cfg: small darknet networks covering every packed op (yolo.cfg, region.cfg, classifier.cfg;
# alexeyab.cfg: route groups (slice), mish, a depthwise swish conv, squeeze-and-excitation (scale_channels), a
# weighted shortcut of sources with other channel counts, yolo with scale_x_y, new_coords and diounms, resize input)
SEEDS = Path(__file__).resolve().parent / "fuzz_seeds"


def make_seeds(folder: Path) -> list[Path]:
    """Write the seed models to ``folder`` (deterministic) and return their paths. Needs tritnet (PyTorch)."""
    import torch
    import tritnet
    from tritnet.darknet import build_darknet, parse_cfg, set_ternary
    from tritnet.export import save, to_packed

    def random_bn(model, seed):
        g = torch.Generator().manual_seed(seed)
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.copy_(torch.randn(m.num_features, generator=g) * 0.1)
                m.running_var.copy_(torch.rand(m.num_features, generator=g) + 0.5)
        return model.eval()

    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    torch.manual_seed(0)
    m = random_bn(tritnet.create_model("resnet20"), 0)
    tritnet.ternarize_(m, method="twn", layers="all_but_first_last", per_channel=True)
    paths.append(folder / "resnet20.tnp")
    save(to_packed(m, bits=2, float_dtype="f16", class_names=[f"c{i}" for i in range(10)]), paths[-1])
    m = random_bn(tritnet.create_model("resnet20_sttn"), 1)
    paths.append(folder / "resnet20_sttn.tnp")
    save(to_packed(m, bits=1.6), paths[-1])
    for name, bits in (("yolo", 2), ("region", 1.6), ("classifier", 2), ("alexeyab", 2)):
        cfg = parse_cfg(SEEDS / f"{name}.cfg")
        set_ternary(cfg, [i for i, s in enumerate(cfg.layers) if s.type == "convolutional"][1:])
        torch.manual_seed(2)
        net = random_bn(build_darknet(cfg, None, method="twn", per_channel=True), 2)
        paths.append(folder / f"{name}.tnp")
        pm = to_packed(net, bits=bits, class_names=["a", "b"] if name != "classifier" else None)
        if name == "yolo":                  # calibrated int8 scales: input_quant and the chained convs
            import numpy as np

            from tritnet_rt.calibrate import calibrate
            pm = calibrate(pm, np.random.default_rng(0).random((8, *pm.model["input"]["shape"]), np.float32))
        save(pm, paths[-1])
    return paths


# ------------------------------------------------------------------------------------------ mutations

_FIXED = struct.Struct("<8sHHIQQI28s")
HOSTILE = [-1, 0, 1, 2, 3, 7, 64, 1000, 100000, 2 ** 31, 2 ** 63, -2 ** 31, 0.5, 1.5, -0.0, 1e30, -1e30, 1e-30,
           "", "x", "conv", "yolo", "input", "linear", "prelu", "letterbox", "tern2", None, True, False, [], {},
           [1], [1, 2], [0, 0, 0, 0], [-1], [1e30, 1e30], [1] * 40, {"stride": 2}, [[1]], "a" * 300]


def split(blob: bytes):
    """(fixed header fields, header dict, data bytes) of a well-formed file."""
    fields = list(_FIXED.unpack_from(blob))
    hlen, dlen = fields[4], fields[5]
    start = 64 + hlen + (-hlen) % 64
    return fields, json.loads(blob[64:64 + hlen]), bytearray(blob[start:start + dlen])


def join(fields, header, data, raw_json: bytes | None = None) -> bytes:
    """Re-encode with correct lengths and checksums, so a mutant reaches the checks behind the CRCs."""
    hj = raw_json if raw_json is not None else json.dumps(header, separators=(",", ":")).encode()
    f = list(fields)
    f[3], f[4], f[5], f[6] = zlib.crc32(hj), len(hj), len(data), zlib.crc32(bytes(data))
    return _FIXED.pack(*f) + hj + b"\0" * ((-len(hj)) % 64) + bytes(data)


def _paths(obj, prefix=()):
    """Every (path, value) in a JSON tree."""
    yield prefix, obj
    if isinstance(obj, dict):
        for k, v in obj.items():
            yield from _paths(v, prefix + (k,))
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            yield from _paths(v, prefix + (i,))


def _set(root, path, value):
    for k in path[:-1]:
        root = root[k]
    root[path[-1]] = value


def _delete(root, path):
    for k in path[:-1]:
        root = root[k]
    del root[path[-1]]


def _hostile_for(value, rng):
    if isinstance(value, bool) or rng.random() < 0.5:
        return copy.deepcopy(rng.choice(HOSTILE))
    if isinstance(value, (int, float)):
        return rng.choice([value + 1, value - 1, value * 2, -value, value * 1000, value // 2 if isinstance(value, int)
                           else value / 2, 0])
    if isinstance(value, list) and value:
        v = copy.deepcopy(value)
        op = rng.randrange(3)
        if op == 0:
            v.pop(rng.randrange(len(v)))
        elif op == 1:
            v.append(copy.deepcopy(rng.choice(v)))
        else:
            rng.shuffle(v)
        return v
    return copy.deepcopy(rng.choice(HOSTILE))


def _json_edit(h, d, rng):
    """Replace, delete or add one value anywhere in the header."""
    paths = [p for p, _ in _paths(h) if p]
    path = rng.choice(paths)
    value = _get(h, path)
    r = rng.random()
    if r < 0.7:
        _set(h, path, _hostile_for(value, rng))
    elif r < 0.85 and isinstance(path[-1], str):
        _delete(h, path)
    else:
        parent = _get(h, path[:-1])
        if isinstance(parent, dict):
            parent[rng.choice(["extra", "pad", "activation", "residual", "input", "scale"])] = rng.choice(HOSTILE)
        else:
            parent.insert(rng.randrange(len(parent) + 1), copy.deepcopy(rng.choice(HOSTILE)))


def _get(root, path):
    for k in path:
        root = root[k]
    return root


def _nodes(h):
    return h["graph"]["nodes"]


def _duplicate_node(h, d, rng):
    nodes = _nodes(h)
    i = rng.randrange(len(nodes))
    twin = copy.deepcopy(nodes[i])
    if rng.random() < 0.5:                        # the case: a concat named like an earlier conv
        twin = {"name": nodes[i]["name"], "op": "concat", "inputs": [nodes[i]["name"]] * rng.choice([2, 4, 16, 40]),
                "attrs": {}, "tensors": {}}
    nodes.insert(rng.randrange(i + 1, len(nodes) + 1), twin)


def _rename_node(h, d, rng):
    nodes = _nodes(h)
    a, b = rng.randrange(len(nodes)), rng.randrange(len(nodes))
    nodes[a]["name"] = rng.choice([nodes[b]["name"], "input", "", nodes[a]["name"] + "'"])


def _rewire(h, d, rng):
    nodes = _nodes(h)
    node = rng.choice(nodes)
    names = ["input"] + [n["name"] for n in nodes]
    k = rng.choice([0, 1, 2, 3, 17, 32768])
    node["inputs"] = [rng.choice(names) for _ in range(min(k, 64))] if k != 32768 else [names[0]] * k


def _swap_nodes(h, d, rng):
    nodes = _nodes(h)
    a, b = rng.randrange(len(nodes)), rng.randrange(len(nodes))
    nodes[a], nodes[b] = nodes[b], nodes[a]


def _change_op(h, d, rng):
    node = rng.choice(_nodes(h))
    node["op"] = rng.choice(["conv", "maxpool", "avgpool", "concat", "add", "upsample", "reorg", "linear", "act",
                             "identity", "region", "yolo", "softmax", "slice", "scale_channels", "shortcut",
                             "deconv"])


def _scale_attr(h, d, rng):
    """Blow up or zero a numeric attribute (upsample stride 1000, maxpool size 100000, channels 1e9...)."""
    node = rng.choice(_nodes(h))
    nums = [p for p, v in _paths(node["attrs"]) if p and isinstance(v, (int, float)) and not isinstance(v, bool)]
    if nums:
        p = rng.choice(nums)
        _set(node["attrs"], p, rng.choice([0, -1, 1000, 100000, 10 ** 9, 2 ** 40, 1e30]))


def _swap_tensor_role(h, d, rng):
    nodes = [n for n in _nodes(h) if n["tensors"]]
    if len(nodes) >= 1:
        a, b = rng.choice(nodes), rng.choice(nodes)
        ra, rb = rng.choice(list(a["tensors"])), rng.choice(list(b["tensors"]))
        a["tensors"][ra], b["tensors"][rb] = b["tensors"][rb], a["tensors"][ra]


def _tensor_entry(h, d, rng):
    """Unaligned, overlapping or out-of-range offsets, wrong byte counts, shapes or dtypes."""
    name = rng.choice(list(h["tensors"]))
    t = h["tensors"][name]
    other = h["tensors"][rng.choice(list(h["tensors"]))]
    key = rng.choice(["offset", "nbytes", "shape", "dtype", "overlap"])
    if key == "offset":
        t["offset"] = rng.choice([t["offset"] + 1, t["offset"] + 4, t["offset"] - 64, len(d), len(d) + 64, -64])
    elif key == "nbytes":
        t["nbytes"] = rng.choice([t["nbytes"] + 1, t["nbytes"] - 1, 0, t["nbytes"] * 4, 2 ** 40])
    elif key == "shape":
        s = list(t["shape"]) or [1]
        i = rng.randrange(len(s))
        s[i] = rng.choice([0, 1, s[i] * 2, s[i] + 1, 10 ** 6, -1])
        t["shape"] = rng.choice([s, s[::-1], s + [1], [s[0], 1]])
    elif key == "dtype":
        t["dtype"] = rng.choice(["tern2", "tern1.6", "f32", "f16", "i32", "i8", "f64"])
    else:
        t["offset"] = other["offset"]


def _model_edit(h, d, rng):
    m = h["model"]
    key = rng.choice(["input", "preprocess", "mean", "classes", "task"])
    if key == "input":
        s = m["input"]["shape"]
        i = rng.randrange(3)
        s[i] = rng.choice([0, 1, s[i] * 2, s[i] + 1, 1000, 16384, 100000])
    elif key == "preprocess":
        m["input"]["preprocess"] = rng.choice(["letterbox", "normalize", "resize", None, 3])
    elif key == "mean":
        m["input"]["mean"] = rng.choice([[0.5], [0.0] * 3, [1e30] * 3, "x", None])
        m["input"]["std"] = rng.choice([[0.0] * 3, [1.0] * 3, [-1.0] * 3, None])
    elif key == "classes":
        m["classes"] = rng.choice([[], ["a"], [1, 2], "ab", None, ["x"] * 1000])
    else:
        m["task"] = rng.choice(["detect", "classify", "segment", None])


def _data_flip(h, d, rng):
    """Corrupt tensor data behind a correct checksum: invalid codes, NaN and huge floats."""
    for _ in range(rng.choice([1, 4, 64])):
        if d:
            d[rng.randrange(len(d))] = rng.randrange(256)


def _plausible(h, d, rng):
    """An edit that often stays valid, so the mutant runs: another activation, stride, padding, scale or
    input size, a float tensor's values."""
    node = rng.choice(_nodes(h))
    a = node["attrs"]
    key = rng.choice(["activation", "stride", "pad", "alpha", "scale", "size", "values"])
    if key == "activation" and "activation" in a:
        a["activation"] = rng.choice(["linear", "relu", "leaky", "logistic"])
    elif key in ("stride", "size") and key in a:
        a[key] = rng.choice([1, 2, 3])
    elif key == "pad" and "pad" in a:
        a["pad"] = [rng.choice([0, 1, 2]) for _ in a["pad"]]
    elif key in ("alpha", "scale") and key in a:
        a[key] = rng.choice([0.0, -1.0, 1e6, 1e-6, 3.5])
    elif key == "size":
        s = h["model"]["input"]["shape"]
        s[1], s[2] = rng.choice([(s[1] * 2, s[2]), (s[1], s[2] + 8), (8, 8), (s[1] + 1, s[2] + 1)])
    else:
        name = rng.choice(list(h["tensors"]))
        t = h["tensors"][name]
        if t["dtype"] == "f32" and t["nbytes"] >= 4:
            import numpy as np
            v = np.frombuffer(bytes(d[t["offset"]:t["offset"] + t["nbytes"]]), "<f4").copy()
            v[rng.randrange(v.size)] = rng.choice([0.0, -1e30, 1e30, 1e-38, -3.0])
            d[t["offset"]:t["offset"] + t["nbytes"]] = v.tobytes()


JSON_MUTATIONS = [_plausible, _plausible, _plausible, _json_edit, _json_edit, _json_edit, _duplicate_node, _rename_node, _rewire, _swap_nodes,
                  _change_op, _scale_attr, _scale_attr, _swap_tensor_role, _tensor_entry, _tensor_entry, _model_edit,
                  _data_flip]


def mutate(blob: bytes, rng: random.Random) -> tuple[bytes, str]:
    """One mutant of ``blob`` and the names of the mutations applied."""
    kind = rng.random()
    if kind < 0.08:                                   # raw bytes, checksums left as they are
        b = bytearray(blob)
        for _ in range(rng.choice([1, 2, 8])):
            b[rng.randrange(len(b))] ^= 1 << rng.randrange(8)
        return bytes(b), "byte_flip"
    if kind < 0.14:
        cut = rng.choice([rng.randrange(len(blob)), rng.randrange(64), len(blob) - 1])
        return blob[:cut] + (b"\0" * rng.choice([0, 0, 7, 64]) if rng.random() < 0.3 else b""), "truncate"
    fields, header, data = split(blob)
    if kind < 0.2:                                    # the fixed header's fields
        i = rng.choice([1, 2, 7])
        fields[i] = rng.choice([0, 1, 2, 65535]) if i != 7 else bytes([rng.randrange(1, 256)]) + bytes(27)
        return join(fields, header, data), "fixed_header"
    if kind < 0.25:                                   # the JSON text itself
        hj = bytearray(json.dumps(header, separators=(",", ":")).encode())
        choice = rng.randrange(4)
        if choice == 0:
            hj[rng.randrange(len(hj))] = rng.randrange(256)
        elif choice == 1:
            hj = bytearray(b"[" * 100000 + b"]" * 100000)
        elif choice == 2:
            hj = hj.replace(b'"graph"', b'"graph":{"inputs":[],"outputs":[],"nodes":[]},"graph"', 1)
        else:
            hj = hj.replace(b"1.0", b"NaN", 1)
        return join(fields, header, data, bytes(hj)), "json_text"
    names = []
    for _ in range(rng.choice([1, 1, 2, 3])):
        m = rng.choice(JSON_MUTATIONS)
        try:
            m(header, data, rng)
        except (KeyError, IndexError, TypeError, ValueError, AttributeError):
            pass                                      # the mutation did not apply to an already mutated header
        names.append(m.__name__.strip("_"))
    return join(fields, header, data), "+".join(names)


# ------------------------------------------------------------------------------------------ the worker

def run_one(path: str) -> tuple[str, str]:
    """Load and run one file: ("format", message), ("ran", ""), or ("other", what went wrong)."""
    import numpy as np
    import tritnet_rt
    from tritnet_rt.format import FormatError, load_packed
    from tritnet_rt.net import Net
    try:
        pm = load_packed(path)
    except FormatError as e:
        return "format", str(e).splitlines()[0][:300]
    except Exception as e:                            # noqa: BLE001 - the point is to catch anything else
        return "other", f"load: {type(e).__name__}: {str(e)[:300]}"
    try:
        net = Net(pm)
        c, h, w = net.input_shape
        rng = np.random.default_rng(0)
        small = c * h * w <= 3 * 64 * 64                # a mutant may validly ask for a 32x16384 input
        batch = 2 if small else 1
        net.forward(rng.standard_normal((batch, c, h, w)).astype(np.float32))
        image = rng.integers(0, 256, (23, 37, 3), dtype=np.uint8) if c == 3 else None
        if image is not None:
            heads = [n for n in pm.graph["nodes"] if n["op"] in ("region", "yolo")]
            net.detect(image, thresh=0.01) if heads else net.classify(image)
        if small:
            isa = tritnet_rt.get_isa()
            tritnet_rt.set_isa("serial")              # the oracle path reads the same buffers
            try:
                net.forward(rng.standard_normal((1, c, h, w)).astype(np.float32))
            finally:
                tritnet_rt.set_isa(isa)
        return "ran", ""
    except Exception as e:                            # noqa: BLE001
        return "other", f"run: {type(e).__name__}: {str(e)[:300]}"


def worker() -> None:
    """Read file paths from stdin, one a line; answer one JSON line each."""
    for line in sys.stdin:
        status, message = run_one(line.strip())
        sys.stdout.write(json.dumps([status, message]) + "\n")
        sys.stdout.flush()


def _limit_memory():
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT, MEMORY_LIMIT))


class Worker:
    """A worker process under the memory limit; ``env`` replaces the environment (a sanitizer build runs
    without the limit: AddressSanitizer reserves terabytes of address space for its shadow memory)."""

    def __init__(self, env=None, limit_memory: bool = True):
        self.env, self.limit_memory = env, limit_memory
        self.proc = None

    def start(self):
        self.proc = subprocess.Popen([sys.executable, str(Path(__file__).resolve()), "--worker"], cwd=str(ROOT),
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     text=True, bufsize=1, env=self.env,
                                     preexec_fn=_limit_memory if self.limit_memory else None)

    def ask(self, path: str, timeout: float = TIMEOUT_S) -> tuple[str, str]:
        """The worker's answer; ("crash", ...) if it died, ("hang", ...) if it took too long (then restarted)."""
        if self.proc is None or self.proc.poll() is not None:
            self.start()
        self.proc.stdin.write(path + "\n")
        self.proc.stdin.flush()
        ready, _, _ = select.select([self.proc.stdout], [], [], timeout)
        if not ready:
            self.stop()
            return "hang", f"no answer in {timeout:.0f} s"
        line = self.proc.stdout.readline()
        if not line:
            rc = self.proc.wait()
            err = self.proc.stderr.read()[-2000:]
            self.proc = None
            return "crash", f"worker died (exit status {rc}): {err}"
        return tuple(json.loads(line))

    def stop(self):
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait()
            self.proc = None


def fuzz(seeds: list[Path], mutants: int, seed: int = 0, keep: Path | None = None, env=None,
         limit_memory: bool = True, timeout: float = TIMEOUT_S, progress: bool = False) -> dict:
    """Run ``mutants`` mutants of ``seeds``; counts, and every failure with its mutation and message."""
    rng = random.Random(seed)
    blobs = [(p.name, p.read_bytes()) for p in seeds]
    counts = {"tried": 0, "format": 0, "ran": 0, "other": 0, "crash": 0, "hang": 0}
    failures = []
    w = Worker(env, limit_memory)
    start = time.time()
    with tempfile.TemporaryDirectory() as tmp:
        for k in range(mutants):
            name, blob = blobs[k % len(blobs)]
            mutant, how = mutate(blob, rng)
            path = Path(tmp) / f"m{k}.tnp"
            path.write_bytes(mutant)
            status, message = w.ask(str(path), timeout)
            counts["tried"] += 1
            counts[status] += 1
            if status not in ("format", "ran"):
                failure = {"mutant": k, "seed": name, "mutation": how, "status": status, "message": message}
                if keep is not None:
                    keep.mkdir(parents=True, exist_ok=True)
                    failure["file"] = str(keep / f"fail_{k}.tnp")
                    Path(failure["file"]).write_bytes(mutant)
                failures.append(failure)
            path.unlink()
            if progress and (k + 1) % 500 == 0:
                print(f"{k + 1}/{mutants}  {counts}  {time.time() - start:.0f} s", file=sys.stderr, flush=True)
    w.stop()
    return {"counts": counts, "failures": failures, "seconds": round(time.time() - start, 1)}


def _cpu_model() -> str:
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--mutants", type=int, default=10000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--seeds-dir", type=Path, default=None, help="where the seed models go (default: a temp dir)")
    ap.add_argument("--out", type=Path, default=None, help="the JSON report")
    ap.add_argument("--replay", type=Path, default=None, help="run one saved mutant in this process and print the result")
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    a = ap.parse_args(argv)
    if a.worker:
        worker()
        return 0
    if a.replay:
        print(run_one(str(a.replay)))
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        seeds_dir = a.seeds_dir or Path(tmp)
        seeds = make_seeds(seeds_dir)
        keep = a.out.with_suffix("") if a.out else None
        report = fuzz(seeds, a.mutants, a.seed, keep=keep, progress=True)
    import tritnet_rt
    report.update({"command": " ".join([Path(sys.argv[0]).name] + (argv or sys.argv[1:])),
                   "cpu": _cpu_model(), "isa": tritnet_rt.get_isa(), "date": time.strftime("%Y-%m-%d"),
                   "seeds": [p.name for p in seeds], "memory_limit_bytes": MEMORY_LIMIT,
                   "timeout_s": TIMEOUT_S})
    text = json.dumps(report, indent=1)
    if a.out:
        a.out.parent.mkdir(parents=True, exist_ok=True)
        a.out.write_text(text + "\n")
    print(json.dumps(report["counts"]))
    for f in report["failures"][:20]:
        print(f)
    return 1 if report["failures"] else 0


if __name__ == "__main__":
    sys.exit(main())
