"""load_model: the one loader every verb uses (source kinds, weights, method and layer choice, checkpoints)."""
import pytest
import torch

from tritnet.darknet import parse_cfg
from tritnet.models import create_model, load_model, model_checkpoint, save_atomic, source_kind
from tritnet.nn import is_ternary, ternarize_, ternary_report


def test_what_a_source_is_is_decided_in_one_place(shared_data, tmp_path):
    cfg = shared_data / "darknet" / "cfg" / "ttt5_224_160.cfg"
    assert source_kind(cfg) == "cfg" and source_kind(parse_cfg(cfg)) == "cfg"
    assert source_kind("resnet20") == "model" and source_kind(tmp_path / "r.pt") == "checkpoint"


def test_a_detector_cfg_with_a_layer_spec_and_float_spelled_float(shared_data):
    cfg = shared_data / "darknet" / "cfg" / "ttt5_224_160.cfg"
    net = load_model(cfg, method="twn", layers="2-6", per_channel=True).model
    ternary = [i for i, layer in enumerate(net.layers) if any(is_ternary(m) for m in layer.modules())]
    assert ternary == [2, 4, 6] and not net.training        # convs 2, 4, 6 (3 and 5 are maxpools)
    for spelling in (None, "float", "none"):
        net = load_model(cfg, method=spelling, layers="all").model
        assert not any(is_ternary(m) for m in net.modules())


def test_a_parsed_classifier_cfg_is_built_as_parsed_not_reread_from_its_file(shared_data):
    """A darknet classifier cfg given parsed keeps what the caller changed (here: which convs are ternary=1)."""
    from tritnet.darknet import set_ternary, ternary_layers
    path = shared_data / "darknet" / "reference" / "cfg" / "cifar_minin_b1.cfg"
    cfg = parse_cfg(path)
    on_file = ternary_layers(cfg)
    convs = [i for i, s in enumerate(cfg[1:]) if s.type == "convolutional"]
    set_ternary(cfg, None, on=False)
    set_ternary(cfg, convs[:1])
    edited = load_model(cfg, method="twn").model
    assert edited.ternary_indices == convs[:1] != on_file
    assert load_model(path, method="twn").model.ternary_indices == on_file


def test_a_registered_model_then_ternarized(shared_data):
    loaded = load_model("resnet20", shared_data / "pretrained" / "resnet_cifar10", method="ttn", layers="all_but_first_last", t_ex=2)
    rows = ternary_report(loaded.model)
    assert [r.method for r in rows] == ["float"] + ["ttn"] * 18 + ["float"]
    assert loaded.kind == "classifier" and loaded.model.layer1[0].conv1.config.t_ex == 2


def test_checkpoints_keep_their_ternarization_and_refuse_another(tmp_path):
    float_ckpt, ternary_ckpt = tmp_path / "f.pt", tmp_path / "t.pt"
    model = create_model("resnet20")
    save_atomic(model_checkpoint(model, class_names=list("abcdefghij")), float_ckpt)
    save_atomic(model_checkpoint(ternarize_(model, method="twn")), ternary_ckpt)
    loaded = load_model(float_ckpt, method="sttn", layers="last")          # a float checkpoint takes a method
    assert [r.method for r in ternary_report(loaded.model)][-2:] == ["float", "sttn"]
    assert loaded.class_names == list("abcdefghij")
    same = load_model(ternary_ckpt, method="twn").model                    # its own method: kept as it is
    assert torch.equal(same.conv1.weight, model.conv1.weight)
    with pytest.raises(ValueError, match="t.pt: a tritnet checkpoint whose layers are twn records its own"):
        load_model(ternary_ckpt, method="ttn")
    with pytest.raises(ValueError, match="is a folder; a folder of pretrained files needs a model name"):
        load_model(tmp_path)


def test_a_detector_checkpoint_of_another_network_is_one_line(shared_data, tmp_path):
    import torch
    from tritnet.models.load import DETECTOR_FORMAT
    torch.save({"format": DETECTOR_FORMAT, "model": {"layers.0.conv.weight": torch.zeros(1)}}, tmp_path / "x.ckpt")
    with pytest.raises(ValueError, match=r"x\.ckpt: checkpoint does not fit .*ttt5_224_160\.cfg"):
        load_model(shared_data / "darknet" / "cfg" / "ttt5_224_160.cfg", tmp_path / "x.ckpt")
