"""Training options are generated from the config dataclasses (tritnet.cli.options.config_options): every field
is an option with the field's default, darknet's aliases work, and the config checks the same rules when built
in Python."""
import argparse
import dataclasses

import pytest

from tritnet.cli.options import config_from_args, config_options
from tritnet.train.classifier import ClassifierTrainConfig
from tritnet.yolo import DetectorTrainConfig


def _parser(cls, positional):
    p = argparse.ArgumentParser(exit_on_error=False)
    config_options(p, cls, positional=positional, skip=("progress",))
    return p


@pytest.mark.parametrize("cls,positional,given", [
    (DetectorTrainConfig, ("data", "cfg", "weights"), ["a.data", "b.cfg"]),
    (ClassifierTrainConfig, ("data",), ["images"]),
])
def test_every_field_is_an_option_with_its_default(cls, positional, given):
    a = _parser(cls, positional).parse_args(given)
    built = config_from_args(cls, a)
    for f in dataclasses.fields(cls):
        if f.name not in positional and f.name != "progress":
            assert getattr(built, f.name) == f.default, f.name


def test_detector_options_darknet_aliases_and_negative_flags():
    p = _parser(DetectorTrainConfig, ("data", "cfg", "weights"))
    a = p.parse_args(["d.data", "c.cfg", "w.weights", "-clear", "-map", "-thresh", ".5", "--no-plots",
                      "--method", "float", "--distill-head", "2", "--multiscale", "sdl"])
    c = config_from_args(DetectorTrainConfig, a)
    assert (c.weights, c.clear, c.map, c.thresh, c.plots, c.distill_head, c.multiscale) == \
        ("w.weights", True, True, 0.5, False, 2.0, "sdl")
    assert c.method is None                       # "float": one spelling of no ternarization


@pytest.mark.parametrize("argv", [["--thresh", "1.5"], ["--workers", "-1"], ["--multiscale", "huge"],
                                  ["--save-every", "0"], ["--method", "xnor"]])
def test_detector_options_refuse_what_the_config_refuses(argv):
    with pytest.raises((argparse.ArgumentError, SystemExit)):
        _parser(DetectorTrainConfig, ("data", "cfg", "weights")).parse_args(["d.data", "c.cfg", *argv])


@pytest.mark.parametrize("cls,kw,field", [
    (DetectorTrainConfig, {"thresh": 1.5}, "thresh"), (DetectorTrainConfig, {"workers": -1}, "workers"),
    (DetectorTrainConfig, {"method": "xnor"}, "method"), (DetectorTrainConfig, {"multiscale": "huge"}, "multiscale"),
    (ClassifierTrainConfig, {"milestones": (0.5, -1)}, "milestones"), (ClassifierTrainConfig, {"epochs": 0}, "epochs"),
])
def test_configs_built_in_python_check_the_same_rules(cls, kw, field):
    positional = {"data": "d"} if cls is ClassifierTrainConfig else {"data": "d", "cfg": "c"}
    with pytest.raises(ValueError, match=f"^{field}: "):
        cls(**positional, **kw)
