"""Model zoo: registry, pretrained CIFAR ResNets reproduce their accuracy, checkpoints refuse the wrong file."""
import pickle

import pytest
import torch

import tritnet
from tritnet.models import CheckpointError, get_model_info, load_into, model_checkpoint, read_checkpoint, save_atomic


@pytest.mark.parametrize("name,params", [("resnet20", 269_722), ("resnet32", 464_154), ("resnet44", 658_586),
                                         ("resnet56", 853_018)])
def test_cifar_resnet_sizes_match_the_paper(name, params):
    # He et al. 2016 (Table 6): 0.27M, 0.46M, 0.66M, 0.85M parameters
    model = tritnet.create_model(name)
    assert sum(p.numel() for p in model.parameters()) == params
    assert model(torch.zeros(2, 3, 32, 32)).shape == (2, 10)


def test_resnet18_and_sttn_variant_run_forward_and_backward():
    r18 = tritnet.create_model("resnet18", num_classes=7)
    assert sum(p.numel() for p in tritnet.create_model("resnet18").parameters()) == 11_689_512  # torchvision's
    assert r18(torch.zeros(1, 3, 64, 64)).shape == (1, 7)
    sttn = tritnet.create_model("resnet20_sttn")
    y = sttn(torch.randn(4, 3, 32, 32))
    y.sum().backward()
    rows = tritnet.ternary_report(sttn)
    assert sum(r.ternary for r in rows) == 18 and not rows[0].ternary and not rows[-1].ternary
    assert all(r.method == "sttn" for r in rows if r.ternary)
    assert all(p.grad is not None for n, p in sttn.named_parameters() if "weight2" in n)


def test_unknown_model_suggests_a_name():
    with pytest.raises(ValueError, match="did you mean .*resnet20"):
        tritnet.create_model("resnet2O")


def test_pretrained_loads_from_folder(shared_data):
    model = tritnet.create_model("resnet20", pretrained=shared_data / "pretrained/resnet_cifar10")
    ref = torch.load(next((shared_data / "pretrained/resnet_cifar10").glob("resnet20-*.th")), weights_only=True, map_location="cpu")
    assert torch.equal(model.conv1.weight, ref["state_dict"]["module.conv1.weight"])


def test_checkpoint_of_another_architecture_names_the_file(shared_data):
    path = next((shared_data / "pretrained/resnet_cifar10").glob("resnet20-*.th"))
    with pytest.raises(CheckpointError, match=f"{path.name}.*not a checkpoint of resnet32: missing 60"):
        tritnet.create_model("resnet32", pretrained=path)


def test_checkpoint_round_trip_keeps_ternary_layers(tmp_path):
    model = tritnet.ternarize_(tritnet.create_model("resnet20"), method="ttn", layers="all_but_first_last", t_ex=2)
    save_atomic(model_checkpoint(model, epoch=3), tmp_path / "c.pt")
    assert [p.name for p in tmp_path.iterdir()] == ["c.pt"]  # no temporary file left behind
    fresh = tritnet.create_model("resnet20")
    state = load_into(fresh, tmp_path / "c.pt")
    assert state["epoch"] == 3 and fresh.layer1[0].conv1.config == model.layer1[0].conv1.config
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        assert torch.equal(fresh.eval()(x), model.eval()(x))
    other = tritnet.create_model("resnet32")
    with pytest.raises(CheckpointError, match="architecture 'resnet20', model is 'resnet32'"):
        load_into(other, tmp_path / "c.pt")


class _Exploit:
    def __reduce__(self):
        import os
        return (os.system, ("touch pwned",))


def test_checkpoints_never_execute_code(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with open("evil.pt", "wb") as f:
        pickle.dump({"model": _Exploit()}, f)
    with pytest.raises(CheckpointError, match="evil.pt: not a readable checkpoint"):
        read_checkpoint("evil.pt")
    assert not (tmp_path / "pwned").exists()
    (tmp_path / "cut.pt").write_bytes(b"PK\x03\x04 truncated")
    with pytest.raises(CheckpointError, match="cut.pt"):
        read_checkpoint("cut.pt")


def test_model_info_has_input_facts():
    info = get_model_info("resnet20")
    assert info.input_size == (3, 32, 32) and info.num_classes == 10
