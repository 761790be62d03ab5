"""The pieces of ``tritnet bench`` that make its comparisons honest: real images as input, the ratio in words,
the layers the runtime keeps on one thread, interleaved rounds, peak memory of a fresh process per tool."""
import numpy as np
import pytest
import torch

import tritnet
from tests.runtime.helpers import darknet_net, random_bn_
from tritnet.export import save, to_packed
from tritnet.export import bench
from tritnet.export.images import default_images, load_images


def test_the_ratio_reads_one_way_only():
    assert bench.ratio_words(2.0) == "tritnet_rt 2.00x faster"
    assert bench.ratio_words(0.8) == "tritnet_rt 1.25x slower"
    assert bench.ratio_words(1.0) == "tritnet_rt 1.00x faster"


def test_rounds_interleave_the_tools_in_a_rotating_order():
    order = []
    fns = {k: (lambda k=k: order.append(k)) for k in "abc"}
    per = bench.time_interleaved(fns, rounds=3, calls=2, gap_s=0)
    assert {k: len(v) for k, v in per.items()} == {"a": 3, "b": 3, "c": 3}
    firsts = order[::3 * 3]                                  # each tool: 1 warm-up + 2 calls, 3 tools a round
    assert firsts == ["a", "b", "c"]
    s = bench.summarize({"runtime": [1.0, 2.0, 1.0], "x": [3.0, 4.0, 2.0]}, batch=4)
    assert s["x"]["speedup_of_runtime"] == 2.0 and s["x"]["runtime_is"] == "tritnet_rt 2.00x faster"
    assert s["runtime"]["median_ms"] == 1.0 and s["runtime"]["images_per_s"] == 4000


def test_calls_are_chosen_from_the_fastest_tool():
    import time
    calls = bench.choose_calls({"fast": lambda: None, "slow": lambda: time.sleep(0.01)}, seconds=0.01)
    assert calls > 10


def test_single_thread_convs_are_the_ones_under_the_runtime_threshold(shared_data):
    import tritnet_rt
    from tritnet_rt.net import Net
    torch.manual_seed(0)
    net = Net(to_packed(random_bn_(tritnet.create_model("resnet20").eval())))
    yolo = Net(to_packed(darknet_net(shared_data, "yolov2-tiny-voc")))
    assert bench.single_thread_convs(net, 1, 1) == []                     # one thread: nothing held back
    was = tritnet_rt.get_isa()
    try:
        for isa in tritnet_rt._ext().supported():
            tritnet_rt.set_isa(isa)
            limit = tritnet_rt._ext().par_min_macs()
            small = bench.single_thread_convs(net, 1, 2)
            if isa == "amx":          # its convs take a few microseconds: ResNet-20's (2.4M at most) all on one
                assert limit == 8e6 and len(small) == 19 and all(c["macs"] < limit for c in small)
            else:                     # the first conv (0.44M multiply-adds) alone; the others (1.2M-2.4M) split
                assert limit == 1e6 and small == [{"layer": "conv1", "macs": 32 * 32 * 16 * 9 * 3}]
            assert bench.single_thread_convs(yolo, 1, 2) == []           # 21.6M and more: every conv split
    finally:
        tritnet_rt.set_isa(was)
    # batch 8 on two threads: ResNet-20 (0.1 MB of weights) is split into two shares of 4 images, each thread
    # running every layer on its own; yolov2-tiny-voc (4 MB) shares its layers between the threads
    assert [n for _, _, n in net.shares(8, 2)] == [4, 4] and bench.single_thread_convs(net, 8, 2) == []
    assert [n for _, _, n in yolo.shares(8, 2)] == [8] and len(net.shares(8, 1)) == 1


def test_images_are_real_and_preprocessed_like_the_runtime(shared_data):
    pm = to_packed(darknet_net(shared_data, "yolov2-tiny-voc", size=96))
    assert default_images(pm, shared_data) == shared_data / "bccd" / "JPEGImages"
    x = load_images(pm, shared_data / "bccd" / "JPEGImages", 3)
    assert x.shape == (3, 3, 96, 96) and x.dtype == np.float32
    assert (x[:, :, :5] == 0.5).all() and x[:, :, 48].std() > 0.05      # 640x480 letterboxed: grey bands
    with pytest.raises(ValueError, match="0 images, 3 are needed"):
        load_images(pm, shared_data / "darknet" / "weights", 3)


@pytest.mark.parametrize("tool", ["runtime", "ort_fp32"])
def test_peak_memory_comes_from_a_fresh_process_of_the_tool_alone(tmp_path, tool):
    pytest.importorskip("onnxruntime")
    torch.manual_seed(0)
    pm = to_packed(random_bn_(tritnet.create_model("resnet20").eval()))
    save(pm, tmp_path / "r.tnp")
    files = bench.prepare(pm, tmp_path / "r.tnp", tmp_path, [tool], None)
    x = np.random.default_rng(0).standard_normal((1, 3, 32, 32), dtype=np.float32)
    mb = bench.peak_rss_mb(tool, files, x, 1, tmp_path, calls=2)
    assert 5 < mb < 400                      # the process holds numpy and the tool, never PyTorch (blocked there)
