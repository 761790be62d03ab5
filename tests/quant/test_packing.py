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
