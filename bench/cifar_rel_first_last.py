"""Experiment (BENCHMARKS.md 9m): the first conv and the classifier with TTN's Residual Expansion Layer.

Section 9k found those two layers the costliest to make ternary (3.5 and 1.0 top-1 points alone, with 0.4% of the
weights). Here they become TTN's REL (``--rel-tex`` ternary tensors a layer, thresholds 0.05, 0.1, ... of max|W|,
one scale per channel), every other layer as the row says (TWN per channel): ``bench/staged_cifar.py`` with
``tritnet.train.classifier.build_model`` wrapped so the student gets ``ternarize_(model, method="ttn",
layers=--rel-layers, t_ex=--rel-tex)`` after the row's own ternarization. Every other argument is staged_cifar.py's.

    python bench/cifar_rel_first_last.py --rel-tex 2 --epochs 8 --rows direct_kt_ft ...
"""
import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
import tritnet  # noqa: E402
import tritnet.train.classifier as classifier  # noqa: E402

REL = {"layers": "conv1,linear", "t_ex": 2}
_build_model = classifier.build_model


def build_model(cfg, num_classes):
    model = _build_model(cfg, num_classes)
    if cfg.method:                            # the student; the teacher and the float rows are built float
        tritnet.ternarize_(model, method="ttn", layers=REL["layers"], per_channel=True, t_ex=REL["t_ex"])
    return model


def main():
    import staged_cifar
    ap = argparse.ArgumentParser(add_help=False)
    ap.add_argument("--rel-layers", default=REL["layers"])
    ap.add_argument("--rel-tex", type=int, choices=(2, 4), default=REL["t_ex"])
    ours, rest = ap.parse_known_args()
    REL.update(layers=ours.rel_layers, t_ex=ours.rel_tex)
    # the wrapping happens here, not at import, so importing this file (tests/test_bench_scripts.py) changes nothing
    classifier.build_model = build_model
    staged_cifar.main_for(rest)


if __name__ == "__main__":
    main()
