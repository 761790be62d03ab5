"""Every compiled ISA path this CPU runs, forced one at a time, against the serial path (bit-identical) and
against an exact numpy model of the int8 and popcount convolutions."""
import numpy as np
import pytest

import tritnet_rt
from tritnet_rt.format import PackedModel
from tritnet_rt.net import Net

ISAS = tritnet_rt.capabilities()["supported"]


@pytest.fixture(autouse=True)
def restore():
    isa, th = tritnet_rt.get_isa(), tritnet_rt.get_num_threads()
    yield
    tritnet_rt.set_isa(isa)
    tritnet_rt.set_num_threads(th)


def conv_model(rng, c, n, h, w, k=3, stride=1, pad=1, act="leaky", residual=False, ternary_in=False, per_layer=False,
               fixed=None):
    pm = PackedModel({"input": {"shape": [c, h, w]}}, {"kind": "graph"}, {"inputs": ["input"], "outputs": ["y"], "nodes": []})
    codes = rng.integers(-1, 2, (n, c, k, k)).astype(np.int8)
    t = {"weight": pm.add("w", codes, "tern2"),
         "scale": pm.add("s", rng.uniform(0.5, 2, 1 if per_layer else n).astype(np.float32), "f32"),
         "bias": pm.add("b", rng.normal(0, 1, n).astype(np.float32), "f32")}
    attrs = {"in_channels": c, "out_channels": n, "kernel": [k, k], "stride": stride, "pad": [pad] * 4, "activation": act}
    inputs = ["input"]
    if act == "prelu":
        t["prelu"] = pm.add("p", rng.uniform(0, .3, n).astype(np.float32), "f32")
    if ternary_in:
        t["act_a"] = pm.add("a", rng.uniform(0.5, 2, c).astype(np.float32), "f32")
        t["act_b"] = pm.add("bb", rng.normal(0, .3, c).astype(np.float32), "f32")
        attrs["input"] = "ternary"
    if fixed:                                           # (scale, zero point) calibrated at export
        attrs["input_quant"] = {"scale": fixed[0], "zero_point": fixed[1]}
    if residual:
        inputs.append("input")
        attrs["residual"] = {"stride": stride, "channel_offset": (n - c) // 2}
    pm.graph["nodes"].append({"name": "y", "op": "conv", "inputs": inputs, "attrs": attrs, "tensors": t})
    return pm, codes


def oracle(pm, codes, x):
    """Exact numpy model of one image: the runtime's quantization, integer conv, float32 epilogue."""
    node = pm.graph["nodes"][0]
    a = node["attrs"]
    n, c, k, _ = codes.shape
    s, p = a["stride"], a["pad"][0]
    f32 = np.float32
    if a.get("input") == "ternary":
        v = pm.tensors["a"][:, None, None] * x + pm.tensors["bb"][:, None, None]
        u = ((v >= 0.5).astype(np.int64) - (v < -0.5).astype(np.int64))
        zp, asc = 0, f32(1)
    else:
        if "input_quant" in a:
            asc, zp = f32(a["input_quant"]["scale"]), a["input_quant"]["zero_point"]
        else:
            mn, mx = min(f32(x.min()), f32(0)), max(f32(x.max()), f32(0))
            asc = f32((mx - mn) / f32(255))
            zp = int(np.clip(np.rint(-mn / asc), 0, 255))
        v = np.clip(x * (f32(1) / asc), -512, 512).astype(f32)
        v = ((v + f32(12582912)) - f32(12582912)) + f32(zp)
        u = np.clip(v, 0, 255).astype(np.int64)
    up = np.pad(u, ((0, 0), (p, p), (p, p)), constant_values=zp)
    ho, wo = (x.shape[1] + 2 * p - k) // s + 1, (x.shape[2] + 2 * p - k) // s + 1
    acc = np.zeros((n, ho, wo), np.int64)
    for dy in range(k):
        for dx in range(k):
            patch = up[:, dy:dy + s * ho:s, dx:dx + s * wo:s]
            acc += np.einsum("nc,chw->nhw", codes[:, :, dy, dx].astype(np.int64), patch)
    acc -= zp * codes.reshape(n, -1).sum(1)[:, None, None]
    scale = (asc * np.broadcast_to(pm.tensors["s"], (n,))).astype(f32)
    y = acc.astype(f32) * scale[:, None, None] + pm.tensors["b"][:, None, None]
    if "residual" in a:
        off = a["residual"]["channel_offset"]
        y[off:off + c] += x[:, ::s, ::s]
    if a["activation"] == "leaky":
        y = np.where(y > 0, y, f32(0.1) * y)
    elif a["activation"] == "relu":
        y = np.where(y > 0, y, f32(0))
    elif a["activation"] == "prelu":
        y = np.where(y > 0, y, pm.tensors["p"][:, None, None] * y)
    elif a["activation"] == "logistic":
        y = 1 / (1 + np.exp(-y))
    return y.astype(f32)


def poison(buf):
    """Every float buffer of a plan but its input set to NaN: a kernel that skips work cannot pass on what the run
    before (another ISA) left there."""
    for name, a in buf.items():
        if name != "input" and a.dtype == np.float32:
            a[...] = np.nan


def run_everywhere(plan, buf, x, planar, outputs) -> dict:
    """{(isa, threads): copies of the ``outputs`` buffers} after running ``plan`` on images x (NCHW) with every ISA
    this CPU has and 1 and 2 threads, the buffers poisoned before each run."""
    runs = {}
    for isa in ISAS:
        for threads in (1, 2):
            tritnet_rt.set_isa(isa)
            tritnet_rt.set_num_threads(threads)
            buf["input"][...] = x if planar else x.transpose(0, 2, 3, 1)
            poison(buf)
            plan.run()
            runs[isa, threads] = [buf[o].copy() for o in outputs]
    return runs


CASES = [dict(c=3, n=16, h=9, w=11), dict(c=16, n=40, h=8, w=8, act="relu", residual=True),
         dict(c=32, n=64, h=9, w=7, stride=2, residual=True, act="relu"), dict(c=72, n=20, h=5, w=6, k=1, pad=0),
         dict(c=300, n=17, h=3, w=3, act="linear", per_layer=True), dict(c=16, n=24, h=7, w=7, act="prelu"),
         dict(c=16, n=32, h=8, w=8, act="prelu", ternary_in=True, residual=True),
         dict(c=64, n=8, h=5, w=5, stride=2, ternary_in=True), dict(c=8, n=12, h=6, w=5, act="logistic"),
         # 64-channel groups plus a 16-channel tail, pixel tails, a residual straddling blocks
         dict(c=40, n=80, h=7, w=9, act="prelu"), dict(c=24, n=72, h=5, w=5, residual=True, act="leaky"),
         # AMX: K walked in several blocks with partial sums (deep K; many pixels), an odd last channel block
         dict(c=1400, n=48, h=5, w=6, act="leaky"), dict(c=48, n=48, h=32, w=32, residual=True, act="relu"),
         # AMX, gathered: channel groups in several tasks over the same pixels (a thread's gather kept between them)
         dict(c=700, n=136, h=4, w=5, act="relu"),
         # a fixed input scale: inputs (normal, sd 1.5) beyond its range saturate at 0 and 255; padding is the zp
         dict(c=3, n=16, h=9, w=11, fixed=(0.02, 100)), dict(c=24, n=40, h=6, w=7, stride=2, fixed=(0.015, 7)),
         dict(c=16, n=32, h=8, w=8, residual=True, act="relu", fixed=(0.05, 255)),
         # popcount: two 8-channel blocks at a time plus an odd one, a residual straddling them, fewer channels
         # than one pair, and 3 and 1 bytes of bits per tap (the im2col's generic copy)
         dict(c=16, n=40, h=6, w=7, act="prelu", ternary_in=True, residual=True),
         dict(c=24, n=12, h=5, w=5, act="relu", ternary_in=True), dict(c=8, n=20, h=5, w=5, stride=2, ternary_in=True)]


@pytest.mark.parametrize("case", CASES, ids=[str(i) for i in range(len(CASES))])
def test_every_isa_matches_the_oracle_and_serial(case):
    rng = np.random.default_rng(len(str(case)))
    pm, codes = conv_model(rng, **case)
    x = rng.normal(0, 1.5, (3, case["c"], case["h"], case["w"])).astype(np.float32)
    # ternary activations run as bit planes (popcount) and as 8-bit codes (int8 GEMM), and the int8 GEMM's
    # weights as int8 or at 2 bits (AMX expands them in the kernel; elsewhere a task's blocks are expanded first):
    # every combination on every ISA
    modes = ("bits", "int8") if case.get("ternary_in") else ("auto",)
    nets = {(m, bits): Net(pm, ternary_inputs=m, weight_bits=bits) for m in modes for bits in (8, 2)}
    assert {d.get("wbits") for n in nets.values() for d in n.prep.data.values()} >= {2, 8}
    want = np.stack([oracle(pm, codes, xi) for xi in x])
    results = {}
    for isa in ISAS:
        for threads in (1, 2):
            tritnet_rt.set_isa(isa)
            tritnet_rt.set_num_threads(threads)
            for mode, net in nets.items():
                for _, buf, _ in net._plans.values():
                    poison(buf)
                results[isa, threads, mode] = net(x)[0]
    ref = results["serial", 1, next(iter(nets))]
    np.testing.assert_allclose(ref, want, rtol=1e-6, atol=1e-5 * np.abs(want).max())
    for key, got in results.items():
        assert np.array_equal(got, ref), f"{key} differs from serial"


@pytest.mark.parametrize("activations", ["int8", "float"])
@pytest.mark.parametrize("case", [CASES[0], CASES[3], CASES[4]], ids=["c3", "k1", "c300"])
def test_the_nchw_input_read_in_place_gives_the_transposed_inputs_result_bit_for_bit(case, activations):
    """A conv reading the network's input takes the caller's NCHW images as they are (its padding pass
    interleaves the channels): the same bits as the NHWC copy every other op reads, on every ISA and threads."""
    rng = np.random.default_rng(7)
    pm, _ = conv_model(rng, **case)
    x = rng.normal(0, 1.5, (2, case["c"], case["h"], case["w"])).astype(np.float32)
    planar, nhwc = Net(pm, activations=activations), Net(pm, activations=activations)
    nhwc.prep.planar_input = False
    assert planar.prep.planar_input
    for isa in ISAS:
        for threads in (1, 2):
            tritnet_rt.set_isa(isa)
            tritnet_rt.set_num_threads(threads)
            assert np.array_equal(planar(x)[0], nhwc(x)[0]), (isa, threads)


@pytest.mark.parametrize("n,c,k", [(16, 4, 3), (17, 3, 3), (40, 72, 1), (5, 300, 1), (33, 16, 5)])
def test_t8_weight_layout_is_the_documented_one(n, c, k):
    """pack_t8 (a block of 16 channels at a time) against the layout written out in one expression:
    [N16/16][K/4][16][4] with K = kh·kw·Cp in (ky, kx, channel) order, channels padded to 4, then 1 KiB of 0."""
    from tritnet_rt.plan import pack_t8
    codes = np.random.default_rng(n * c).integers(-1, 2, (n, c, k, k)).astype(np.int8)
    cp, n16 = -(-c // 4) * 4, -(-n // 16) * 16
    w = np.zeros((n16, k, k, cp), np.int8)
    w[:n, :, :, :c] = codes.transpose(0, 2, 3, 1)
    want = w.reshape(n16 // 16, 16, k * k * cp // 4, 4).transpose(0, 2, 1, 3).reshape(-1)
    packed, sums, got_cp = pack_t8(codes)
    assert got_cp == cp and np.array_equal(packed[:-1024], want) and not packed[-1024:].any()
    assert np.array_equal(sums, codes.reshape(n, -1).sum(1))


def test_a_loaded_net_drops_the_codes_its_layouts_replace_and_runs_the_same(tmp_path):
    """Net.load keeps one copy of the weights (the packed layouts), a Net of a PackedModel someone else holds
    leaves it whole; both give the same bits."""
    from tritnet_rt.format import load_packed, save_packed
    rng = np.random.default_rng(2)
    pm, _ = conv_model(rng, 16, 32, 8, 8)
    save_packed(pm, tmp_path / "m.tnp")
    held = load_packed(tmp_path / "m.tnp")
    weight = [n["tensors"]["weight"] for n in held.graph["nodes"] if n["op"] == "conv"][0]
    shared, owned = Net(held), Net.load(tmp_path / "m.tnp")
    assert weight in held.tensors and weight not in owned.pm.tensors
    x = rng.normal(size=(2, 16, 8, 8)).astype(np.float32)
    assert np.array_equal(shared(x)[0], owned(x)[0])


@pytest.mark.parametrize("name", ["yolov3-tiny", "yolov2-tiny-voc"])
def test_shared_buffers_never_overlap_a_buffer_still_in_use(shared_data, name):
    """build lays outputs and scratch into shared blocks: at every op, what it writes shares no memory with
    any other buffer used both before and after that op (its inputs included), and the blocks hold less than
    the buffers they replace."""
    from tests.runtime.helpers import darknet_net
    from tritnet.export import to_packed
    from tritnet_rt.plan import WRITTEN_FIRST, Prepared, build
    ops, buf, keep = build(Prepared(to_packed(darknet_net(shared_data, name, size=64))), 2)
    uses = {}
    for i, (_, _, _, bufs) in enumerate(ops):
        for a in bufs.values():
            if isinstance(a, np.ndarray):
                uses.setdefault(id(a), [a, i, i])[2] = i
    for i, (_, _, _, bufs) in enumerate(ops):
        written = [a for f, a in bufs.items() if f in WRITTEN_FIRST and isinstance(a, np.ndarray)]
        live = [a for a, first, last in uses.values() if first < i <= last or first <= i < last]
        for w in written:
            assert not any(np.shares_memory(w, b) for b in live if b is not w), (i, ops[i][0])
    roots = {id(a.base if a.base is not None else a): a for a, _, _ in uses.values()}
    shared = [a for a, _, _ in uses.values() if a.base is not None and a.base.dtype == np.uint8]
    assert shared and sum(a.nbytes for a in shared) > sum(r.nbytes for r in roots.values() if r.dtype == np.uint8
                                                          and r.ndim == 1 and any(a.base is r for a in shared))


def test_batch_does_not_change_an_image_result():
    rng = np.random.default_rng(1)
    pm, _ = conv_model(rng, 16, 32, 8, 8)
    net = Net(pm)
    x = rng.normal(size=(4, 16, 8, 8)).astype(np.float32)
    assert np.array_equal(net(x)[0][2:3], net(x[2:3])[0])


def test_isa_switch_and_env(monkeypatch):
    assert "serial" in ISAS and tritnet_rt.capabilities()["active"] in ISAS
    with pytest.raises(ValueError, match="unknown ISA"):
        tritnet_rt.set_isa("mmx")
    for isa in set(tritnet_rt.capabilities()["compiled"]) - set(ISAS):
        with pytest.raises(ValueError, match="not supported"):
            tritnet_rt.set_isa(isa)
    with pytest.raises(ValueError):
        tritnet_rt.set_num_threads(0)
    import subprocess
    import sys
    out = subprocess.run([sys.executable, "-c", "import tritnet_rt; print(tritnet_rt.get_isa(), tritnet_rt.get_num_threads())"],
                         env={**__import__("os").environ, "TRITNET_ISA": "serial", "TRITNET_NUM_THREADS": "3"},
                         capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["serial", "3"]


def test_runtime_imports_no_torch():
    import subprocess
    import sys
    code = ("import sys; sys.modules['torch'] = None; import tritnet_rt, tritnet_rt.net, tritnet_rt.heads, "
            "tritnet_rt.detect; print('ok')")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.stdout.strip() == "ok", out.stderr


def test_tritnet_runtime_is_the_runtime_and_imports_no_torch():
    import subprocess
    import sys
    code = ("import sys; sys.modules['torch'] = None; import tritnet.runtime as r, tritnet_rt; "
            "print(r is tritnet_rt, hasattr(r, 'load'))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.stdout.strip() == "True True", out.stderr


def test_python_threads_running_plans_at_once_get_their_own_results():
    """The pool and a plan's buffers are shared: runs from several Python threads (the GIL is released while a
    plan runs) must queue, not interleave."""
    import threading
    rng = np.random.default_rng(5)
    pm, _ = conv_model(rng, 32, 64, 12, 12)
    net = Net(pm)
    xs = [rng.normal(size=(2, 32, 12, 12)).astype(np.float32) for _ in range(4)]
    tritnet_rt.set_num_threads(2)
    want = [net(x)[0] for x in xs]
    bad = []

    def work(k):
        for _ in range(30):
            if not np.array_equal(net(xs[k])[0], want[k]):
                bad.append(k)

    threads = [threading.Thread(target=work, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not bad


def test_a_batch_too_big_for_the_caches_runs_in_micro_batches_with_the_same_results():
    rng = np.random.default_rng(2)
    pm, _ = conv_model(rng, 16, 32, 40, 40)
    net = Net(pm)
    x = rng.normal(size=(5, 16, 40, 40)).astype(np.float32)
    whole = net(x)[0]
    net.CACHE_BYTES = 2 * 4 * 32 * 40 * 40         # two images of the largest activation at a time
    assert net.micro_batch(5) == 2
    assert np.array_equal(net(x)[0], whole) and net(x)[0].shape == (5, 32, 40, 40)


@pytest.mark.parametrize("name, size", [("yolov2-tiny-voc", 96), ("yolov3-tiny", 64)])
def test_conv_fused_with_its_maxpool_gives_the_unfused_result_bit_for_bit(shared_data, name, size):
    """A conv whose only reader is a 2x2/2 maxpool runs as one op writing the pooled rows: the same floats
    as the conv and the maxpool run one after the other, on every ISA and thread count, batch 1 and 3."""
    from tests.runtime.helpers import darknet_net
    from tritnet.export import to_packed
    from tritnet_rt import _ext
    from tritnet_rt.plan import Prepared, build, pooled_convs
    prep = Prepared(to_packed(darknet_net(shared_data, name, size=size)))
    fused = pooled_convs(prep)
    # yolov3-tiny's l8 is also read by a route, so its full output must exist: not fused
    assert fused == ({"l0": "l1", "l2": "l3", "l4": "l5", "l6": "l7", "l8": "l9"} if name == "yolov2-tiny-voc"
                     else {"l0": "l1", "l2": "l3", "l4": "l5", "l6": "l7"})
    assert prep.planar_input                     # only l0 reads the input: it stays NCHW
    rng = np.random.default_rng(3)
    for batch in (1, 3):
        x = rng.uniform(0, 1, (batch, 3, size, size)).astype(np.float32)
        runs = {}
        for fuse in (False, True):
            ops, buf, keep = build(prep, batch, fuse=fuse)
            assert len(ops) == len(build(prep, batch, fuse=False)[0]) - (len(fused) if fuse else 0)
            for key, got in run_everywhere(_ext().Plan(ops), buf, x, True, prep.pm.graph["outputs"]).items():
                runs[(fuse, *key)] = got
        ref = runs[False, "serial", 1]
        for key, got in runs.items():
            assert all(np.array_equal(a, b) for a, b in zip(got, ref)), key


@pytest.mark.parametrize("c, n, h, w", [(300, 60, 6, 10), (8, 40, 4, 14), (24, 16, 2, 2), (96, 72, 8, 22)])
def test_fused_pool_with_channel_tails_and_odd_window_counts(c, n, h, w):
    """The fused 2x2/2 pool on shapes the networks above lack: channel counts that end inside a 64-channel group
    (60), a pair (40) or a block (72), pooled rows of 5, 7, 1 and 11 windows (the AVX-512 kernel takes three at
    a time), deep and shallow K, weights at 8 and 2 bits: the unfused plan's bits on every ISA."""
    from tritnet_rt.plan import Prepared, build
    rng = np.random.default_rng(c + n)
    pm, _ = conv_model(rng, c=c, n=n, h=h, w=w)
    pm.graph["nodes"][0]["name"] = "conv"
    pm.graph["nodes"].append({"name": "y", "op": "maxpool", "inputs": ["conv"], "tensors": {},
                              "attrs": {"size": 2, "stride": 2, "pad": [0, 0], "out": [h // 2, w // 2]}})
    x = rng.normal(0, 1.5, (2, c, h, w)).astype(np.float32)
    runs = {}
    for bits in (8, 2):
        prep = Prepared(pm, weight_bits=bits)
        for fuse in (False, True):
            ops, buf, keep = build(prep, 2, fuse=fuse)
            assert len(ops) == (1 if fuse else 2)
            for key, (got,) in run_everywhere(tritnet_rt._ext().Plan(ops), buf, x, prep.planar_input,
                                              ["y"]).items():
                runs[(bits, fuse, *key)] = got
    ref = runs[8, False, "serial", 1]
    assert ref.shape == (2, n, h // 2, w // 2) or ref.shape == (2, h // 2, w // 2, n)
    for key, got in runs.items():
        assert np.array_equal(got, ref), key


@pytest.mark.parametrize("name, size", [("yolov2-tiny-voc", 96), ("yolov3-tiny", 64), ("resnet20", 32)])
def test_a_conv_writing_its_readers_int8_input_gives_the_unchained_result_bit_for_bit(shared_data, name, size):
    """With calibrated scales, a conv (or conv + maxpool) read only by an int8 conv quantizes its output straight
    into that conv's padded 8-bit input, which then skips its quantize pass: the same bytes, so the same
    floats as writing float32 and quantizing in the reader, on every ISA and thread count, batch 1 and 3."""
    import tritnet
    from tests.runtime.helpers import darknet_net
    from tritnet.export import to_packed
    from tritnet_rt import _ext
    from tritnet_rt.calibrate import calibrate
    from tritnet_rt.plan import Prepared, build, chained_convs, pooled_convs
    rng = np.random.default_rng(4)
    if name == "resnet20":
        torch = pytest.importorskip("torch")
        torch.manual_seed(0)
        model = tritnet.ternarize_(tritnet.create_model("resnet20").eval(), method="twn", per_channel=True)
        x_cal = rng.normal(0, 1, (8, 3, size, size)).astype(np.float32)
    else:
        model = darknet_net(shared_data, name, size=size)
        x_cal = rng.uniform(0, 1, (8, 3, size, size)).astype(np.float32)
    prep = Prepared(calibrate(to_packed(model), x_cal))
    chained = chained_convs(prep, pooled_convs(prep))
    want = {"yolov2-tiny-voc": {"l0": "l2", "l2": "l4", "l4": "l6", "l6": "l8", "l8": "l10", "l12": "l13",
                                "l13": "l14"},      # l10 -> the 2x2/1 maxpool; l14 is the head
            # a route reads l8 and l13; l10 -> the 2x2/1 maxpool, l18 -> the upsample; l15 and l22 are heads
            "yolov3-tiny": {"l0": "l2", "l2": "l4", "l4": "l6", "l6": "l8", "l12": "l13", "l14": "l15",
                            "l21": "l22"}}
    if name in want:
        assert chained == want[name]
    else:                                   # each block's first conv: its output feeds the second conv only
        assert len(chained) == 9 and all(prep.by_name[r]["inputs"][0] == w for w, r in chained.items())
    for batch in (1, 3):
        x = rng.uniform(0, 1, (batch, 3, size, size)).astype(np.float32)
        runs = {}
        for chain in (False, True):
            ops, buf, keep = build(prep, batch, chain=chain)
            assert sum(op[1]["x_quantized"] for op in ops if op[0].startswith("conv")) == (len(chained) if chain
                                                                                             else 0)
            for key, got in run_everywhere(_ext().Plan(ops), buf, x, prep.planar_input,
                                           prep.pm.graph["outputs"]).items():
                runs[(chain, *key)] = got
        ref = runs[False, "serial", 1]
        for key, got in runs.items():
            assert all(np.array_equal(g, r) for g, r in zip(got, ref)), key


def test_ternary_input_modes():
    from tritnet_rt.plan import ternary_input_mode
    assert ternary_input_mode("bits") == "bits" and ternary_input_mode("int8") == "int8"
    # the faster of the two as measured on each ISA (plan.py's note): int8 on AVX2 and AMX, popcount elsewhere
    for isa in tritnet_rt._ext().supported():
        tritnet_rt.set_isa(isa)
        assert ternary_input_mode() == ("int8" if isa in ("avx2", "amx") else "bits"), isa
    with pytest.raises(ValueError, match="ternary_inputs: 'popcount' is not one of auto, bits, int8"):
        ternary_input_mode("popcount")


def test_weight_bits_rule():
    """auto keeps a layer's weights at 2 bits (K >= AMX_MIN_K) only on the ISAs with a 2-bit kernel: on AMX every
    such layer (it expands beside the tiles), on AVX-512 those of 1 MB of int8 weights and more (it expands ahead
    of the tiles); 8 and 2 force."""
    from tritnet_rt.plan import weight_bits_rule
    min_k = tritnet_rt._ext().AMX_MIN_K
    assert min_k == 256 and weight_bits_rule(8)(10 ** 6, 64) == 8 and weight_bits_rule(2)(4, 1) == 2
    tritnet_rt.set_isa("avx2" if "avx2" in ISAS else "serial")
    assert weight_bits_rule()(10 ** 6, 1024) == 8
    if "amx" in ISAS:
        tritnet_rt.set_isa("amx")
        assert weight_bits_rule()(min_k, 16) == 2 and weight_bits_rule()(min_k - 4, 4096) == 8
    if "avx512" in ISAS:
        tritnet_rt.set_isa("avx512")
        rule = weight_bits_rule()
        # yolov2-tiny-voc's 13x13 convs (1.2 MB and more) at 2 bits; ResNet-20's (36 KB at most) at 8
        assert rule(2304, 512) == 2 and rule(9216, 1024) == 2 and rule(1152, 256) == 8 and rule(576, 64) == 8
        assert rule(4096, 256) == 2 and rule(4096, 255) == 8 and rule(min_k - 4, 1 << 20) == 8
    with pytest.raises(ValueError, match="weight_bits: 4 is not one of auto, 8, 2"):
        weight_bits_rule(4)


@pytest.mark.parametrize("batch", [2, 5])
def test_a_batch_split_between_threads_gives_the_same_bits(batch):
    """With two threads and at least two images, a net whose weights are small runs one contiguous share of the
    batch a thread, each through the whole network on its own thread (run_together): the same bits as one
    thread, as image by image, and as two threads sharing every layer (the split turned off), on every ISA."""
    rng = np.random.default_rng(14)
    pm, _ = conv_model(rng, c=16, n=40, h=6, w=7, act="prelu")
    x = rng.normal(0, 1.5, (batch, 16, 6, 7)).astype(np.float32)
    for isa in ISAS:
        tritnet_rt.set_isa(isa)
        tritnet_rt.set_num_threads(1)
        one = Net(pm)(x)[0]
        alone = np.concatenate([Net(pm)(x[i:i + 1])[0] for i in range(batch)])
        tritnet_rt.set_num_threads(2)
        split, shared = Net(pm), Net(pm)
        shared.SPLIT_MAX_WEIGHT_BYTES = 0
        got_split, got_shared = split(x)[0], shared(x)[0]
        assert {slot for _, slot in split._plans} == {0, 1} and {slot for _, slot in shared._plans} == {0}
        assert {b for b, _ in split._plans} == {batch // 2, batch - batch // 2}
        for got in (alone, got_split, got_shared):
            assert np.array_equal(got, one), isa
        assert split.memory_bytes(batch) > shared.memory_bytes(batch)       # a set of buffers a thread


def test_run_together_refuses_what_it_cannot_run():
    """run_together takes (plan, x or None) pairs of distinct plans; x as run(x) takes it."""
    from tritnet_rt.plan import Prepared, build
    rng = np.random.default_rng(15)
    pm, _ = conv_model(rng, **CASES[0])
    ext = tritnet_rt._ext()
    ops, buf, _ = build(Prepared(pm), 1)
    plan, other = ext.Plan(ops, input=buf["input"]), ext.Plan(ops)
    with pytest.raises(ValueError, match="a plan given twice"):
        ext.run_together([(plan, None), (plan, None)])
    with pytest.raises(TypeError):
        ext.run_together([plan])
    with pytest.raises(ValueError, match="made without its input buffer"):
        ext.run_together([(other, np.zeros(buf["input"].shape, np.float32))])
    with pytest.raises(ValueError, match="C-contiguous float32"):
        ext.run_together([(plan, np.zeros(3, np.float32))])
    ext.run_together([])


def test_weights_and_activation_buffers_start_on_a_cache_line():
    """The kernels read weights and activations 64 bytes at a time; a buffer off a 64-byte boundary splits every
    such read across two cache lines (numpy's own alignment is 16: yolov2-tiny-voc ran 2-10% slower). Every
    array a conv reads or writes, in shared blocks or not, at 8 and 2 bits, starts on one."""
    from tritnet_rt.plan import Prepared, build, zeros64
    assert all(zeros64((n, 3), dtype).ctypes.data % 64 == 0 for n in (1, 7, 100) for dtype in (np.uint8, np.float32))
    rng = np.random.default_rng(13)
    pm, _ = conv_model(rng, c=40, n=80, h=7, w=9)
    for bits in (8, 2):
        for share in (False, True):
            ops, buf, keep = build(Prepared(pm, weight_bits=bits), 2, share=share)
            arrays = {k: a for _, _, _, bufs in ops for k, a in bufs.items() if isinstance(a, np.ndarray)}
            assert {"weights", "q", "out"} <= set(arrays)
            assert {k: a.ctypes.data % 64 for k, a in arrays.items() if k in ("weights", "q", "out")} == \
                {"weights": 0, "q": 0, "out": 0}


def test_two_bit_layout_by_hand():
    """pack_t8(bits=2) against csrc/tn.h's layout written out for one block: channel c's four codes k = 4r..4r+3
    in byte (r, slot(c)), code j as v & 3 in bits 2j..2j+1, K padded to 64 with zero codes."""
    from tritnet_rt.plan import pack_t8
    codes = np.zeros((16, 4, 1, 1), np.int8)            # K = 4: one row of 16 bytes, then 15 rows of zeros
    codes[0, :, 0, 0] = [1, -1, 0, 1]                    # 0b01_00_11_01 = 0x4D, slot 0
    codes[2, :, 0, 0] = [-1, 0, 0, 0]                    # 0b11 = 3, channel 2's slot is 8
    codes[5, :, 0, 0] = [0, 0, 0, -1]                    # 0b11000000 = 0xC0, channel 5's slot is 3
    w, wsum, cp = pack_t8(codes, 2)
    want = np.zeros(256, np.uint8)
    want[[0, 8, 3]] = [0x4D, 0x03, 0xC0]
    assert cp == 4 and np.array_equal(w, want) and wsum[[0, 2, 5]].tolist() == [1, -1, -1]
    assert tritnet_rt._ext().W2_SLOTS == (0, 1, 8, 9, 2, 3, 10, 11, 4, 5, 12, 13, 6, 7, 14, 15)


@pytest.mark.parametrize("case", [CASES[0], CASES[2], CASES[12]], ids=["c3", "stride2_residual", "c48_32x32"])
def test_a_plan_without_input_slack_gives_the_same_bits(case):
    """The AMX kernel's direct tiles read up to 16 pixel strides and a 64-byte chunk past a tile's first pixel,
    into the slack after the padded input (plan.py); without it (input_slack 0) the image's last tiles go to the
    AVX-512 kernel instead. Both plans, int8 and 2-bit weights, every ISA: the serial plan's bits."""
    from tritnet_rt.plan import Prepared, build
    rng = np.random.default_rng(11)
    pm, _ = conv_model(rng, **case)
    x = rng.normal(0, 1.5, (2, case["c"], case["h"], case["w"])).astype(np.float32)
    runs = {}
    for bits in (8, 2):
        prep = Prepared(pm, weight_bits=bits)
        for slack in (True, False):
            ops, buf, keep = build(prep, 2)
            (name, fields, floats, bufs), = ops
            if not slack:
                q = bufs["q"][:bufs["q"].size - fields["input_slack"]]
                ops = [(name, {**fields, "input_slack": 0}, floats, {**bufs, "q": q})]
            plan = tritnet_rt._ext().Plan(ops)
            for isa in ISAS:
                tritnet_rt.set_isa(isa)
                buf["input"][...] = x if prep.planar_input else x.transpose(0, 2, 3, 1)
                buf["y"][...] = np.nan                   # nothing left from the ISA before
                plan.run()
                runs[bits, slack, isa] = buf["y"].copy()
    ref = runs[8, True, "serial"]
    for key, got in runs.items():
        assert np.array_equal(got, ref), key


def test_run_reads_the_callers_images_in_place_and_restores_its_input_buffer():
    """Net.forward hands C-contiguous float32 NCHW images to Plan.run(x), which reads them where the plan's input
    buffer would be (no copy) for that run only: the same bits as copying them in, and run() afterwards reads the
    plan's own buffer again. Anything else is refused with the reason."""
    from tritnet_rt.plan import Prepared, build
    rng = np.random.default_rng(12)
    pm, _ = conv_model(rng, **CASES[0])
    prep = Prepared(pm)
    assert prep.planar_input
    ops, buf, keep = build(prep, 2)
    plan = tritnet_rt._ext().Plan(ops, input=buf["input"])
    x1, x2 = (rng.normal(0, 1.5, (2, 3, 9, 11)).astype(np.float32) for _ in range(2))
    buf["input"][...] = x1
    plan.run()
    copied = buf["y"].copy()
    buf["input"][...] = x2
    plan.run(x1)
    assert np.array_equal(buf["y"], copied)
    plan.run()                                           # x2, from the plan's own buffer
    want2 = buf["y"].copy()
    buf["input"][...] = x1
    plan.run(x2)
    assert np.array_equal(buf["y"], want2) and not np.array_equal(want2, copied)
    frozen = x1.copy()
    frozen.flags.writeable = False
    net = Net(pm)
    assert np.array_equal(net(frozen)[0], net(x1)[0]) and np.array_equal(net(x1[:, :, ::-1].copy())[0],
                                                                         net(x1[:, :, ::-1])[0])
    for bad, message in [(x1[:1], "x must be C-contiguous float32 of 2376 bytes"),
                         (x1.astype(np.float64)[:, :, :, :1].copy(), "x must be C-contiguous float32"),
                         (x1.view(np.int32), "x must be C-contiguous float32"),
                         (x1[:, :, ::-1], "contiguous"), (frozen, "read-only|not writable")]:
        with pytest.raises((ValueError, BufferError, TypeError), match=message):
            plan.run(bad)
    with pytest.raises(ValueError, match="made without its input buffer"):
        tritnet_rt._ext().Plan(ops).run(x1)
