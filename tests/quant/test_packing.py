import numpy as np
import pytest

from tritnet.quant import pack_2bit, pack_trits, packed_bytes, unpack_2bit, unpack_trits


def test_2bit_layout_by_hand():
    # codes +1 → 2, 0 → 1, -1 → 0; weight i at bits 2·i: [1, 0, -1, 1] = 2 | 1<<2 | 0<<4 | 2<<6 = 0x86
    assert pack_2bit([1, 0, -1, 1]) == bytes([0x86])
    assert pack_2bit([-1]) == bytes([0b01010100])  # padded with code 0 (value 1)


def test_trits_layout_by_hand():
    # digits (c+1) = [2, 1, 0, 2, 1] → 2 + 1·3 + 0·9 + 2·27 + 1·81 = 140
    assert pack_trits([1, 0, -1, 1, 0]) == bytes([140])


@pytest.mark.parametrize("n", [1, 4, 5, 7, 1000, 1003])
def test_round_trips_and_sizes(n):
    codes = np.random.default_rng(n).integers(-1, 2, n).astype(np.int8)
    a, b = pack_2bit(codes), pack_trits(codes)
    assert len(a) == packed_bytes(n, 2) == -(-n // 4) and len(b) == packed_bytes(n, 1.6) == -(-n // 5)
    assert (unpack_2bit(a, n) == codes).all() and (unpack_trits(b, n) == codes).all()


def test_bad_input_is_refused():
    with pytest.raises(ValueError):
        pack_2bit([2])
    with pytest.raises(ValueError, match="invalid code 3"):
        unpack_2bit(bytes([0xFF]), 4)
    with pytest.raises(ValueError, match="invalid code 3"):      # in the padding slot too: a writer never puts it
        unpack_2bit(bytes([0b11010101]), 3)
    with pytest.raises(ValueError, match="above 242"):
        unpack_trits(bytes([250]), 5)
    with pytest.raises(ValueError, match=r"1 bytes of 2-bit data for 5 weights \(want 2\)"):
        unpack_2bit(bytes([0]), 5)
    with pytest.raises(ValueError, match=r"3 bytes of 2-bit data for 5 weights \(want 2\)"):   # extra bytes too
        unpack_2bit(bytes([0x55, 0x55, 0x55]), 5)
    with pytest.raises(ValueError, match=r"2 bytes of trit data for 5 weights \(want 1\)"):
        unpack_trits(bytes([121, 121]), 5)


@pytest.mark.parametrize("storage", ["tern2", "tern1.6"])
def test_lazy_codes_decode_any_rows_from_their_bytes(storage):
    """LazyCodes (Net.load's ternary tensors): rows starting and ending inside a byte (7 codes a row: 4 and 5 a
    byte never line up) decode to the same codes as the whole tensor."""
    from tritnet_rt.format import LazyCodes
    codes = np.random.default_rng(1).integers(-1, 2, (23, 7, 1, 1)).astype(np.int8)
    raw = (pack_2bit if storage == "tern2" else pack_trits)(codes.reshape(-1))
    lazy = LazyCodes(memoryview(raw), storage, codes.shape, "w", "m.tnp")
    assert lazy.shape == (23, 7, 1, 1) and lazy.ndim == 4 and np.array_equal(np.asarray(lazy), codes)
    for start, stop in [(0, 16), (16, 32), (1, 2), (3, 22), (22, 23), (5, 5)]:
        assert np.array_equal(lazy[start:stop], codes[start:stop]), (start, stop)


def test_net_load_never_holds_a_layers_codes():
    """Net.load lays out the int8 weights 16 rows of codes at a time: the traced peak of loading a model of one
    2,359,296-weight conv stays under its int8 codes (2.25 MiB), where decoding the tensor alone would pass it."""
    import tracemalloc

    import tritnet_rt
    from tritnet_rt.format import PackedModel, encode_packed
    codes = np.random.default_rng(2).integers(-1, 2, (512, 512, 3, 3)).astype(np.int8)
    pm = PackedModel({"input": {"shape": [512, 4, 4]}}, {"kind": "graph"}, {"inputs": ["input"], "outputs": ["y"],
                     "nodes": [{"name": "y", "op": "conv", "inputs": ["input"], "attrs": {
                         "in_channels": 512, "out_channels": 512, "kernel": [3, 3], "stride": 1, "pad": [1] * 4,
                         "activation": "linear"}, "tensors": {"weight": "w", "scale": "s", "bias": "b"}}]})
    pm.add("w", codes, "tern2")
    pm.add("s", np.ones(512, np.float32), "f32")
    pm.add("b", np.zeros(512, np.float32), "f32")
    data = encode_packed(pm)
    import tempfile
    from pathlib import Path
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "big.tnp"
        path.write_bytes(data)
        tracemalloc.start()
        try:
            net = tritnet_rt.load(path, weight_bits=2)
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
    # the file's bytes (590 KB) + 2-bit weights (590 KB) + a block's codes and the checks' per-byte flags
    assert peak < codes.nbytes, peak
    x = np.random.default_rng(3).normal(0, 1, (1, 512, 4, 4)).astype(np.float32)
    assert np.array_equal(net(x)[0], tritnet_rt.net.Net(pm, weight_bits=2)(x)[0])
