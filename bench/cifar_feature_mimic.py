"""Experiment (BENCHMARKS.md 9e): feature mimicking for the CIFAR classifier, beside the logit transfer.

``bench/staged_cifar.py`` with one change, made by wrapping three functions of ``tritnet.train.classifier``: the
loss gains ``--feature-weight`` · Σ MSE(student stage output, teacher stage output) over the ResNet's stages
(``--feature-layers``, default layer1,layer2,layer3; the teacher is the same architecture, so no adaptation conv).
Every other argument is staged_cifar.py's; the results file records the whole command. The library's
classifier transfer stays logits only: at 8 epochs of 10,000 images this term did not help (9e).

    python bench/cifar_feature_mimic.py --feature-weight 1 --epochs 8 --train-per-class 1000 --rows direct_kt_ft ...
"""
import argparse
import sys
from pathlib import Path

import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).parent))
import tritnet.train.classifier as classifier  # noqa: E402

BETA, LAYERS = 1.0, ["layer1", "layer2", "layer3"]
student_maps, teacher_maps, building_teacher = {}, {}, []
_build_model, _build_teacher, _loss = classifier.build_model, classifier.build_teacher, classifier.classifier_loss


def _keep(store, name):
    def hook(module, inputs, output):
        store[name] = output
    return hook


def build_model(*args, **kwargs):
    model = _build_model(*args, **kwargs)
    if not building_teacher:                 # build_teacher builds through build_model too
        for name in LAYERS:
            model.get_submodule(name).register_forward_hook(_keep(student_maps, name))
    return model


def build_teacher(*args, **kwargs):
    building_teacher.append(True)
    try:
        teacher = _build_teacher(*args, **kwargs)
    finally:
        building_teacher.clear()
    for name in LAYERS:
        teacher.model.get_submodule(name).register_forward_hook(_keep(teacher_maps, name))
    return teacher


def classifier_loss(student_logits, teacher_logits, labels, cfg):
    loss, parts = _loss(student_logits, teacher_logits, labels, cfg)
    mimic = sum(F.mse_loss(student_maps[n], teacher_maps[n].detach()) for n in LAYERS)
    return loss + BETA * mimic, parts


def main():
    global BETA, LAYERS
    import staged_cifar
    ap = argparse.ArgumentParser(add_help=False)
    ap.add_argument("--feature-weight", type=float, default=BETA)
    ap.add_argument("--feature-layers", default=",".join(LAYERS))
    ours, rest = ap.parse_known_args()
    BETA, LAYERS = ours.feature_weight, ours.feature_layers.split(",")
    # the wrapping happens here, not at import, so importing this file (tests/test_bench_scripts.py) changes nothing
    classifier.build_model, classifier.build_teacher, classifier.classifier_loss = build_model, build_teacher, \
        classifier_loss
    staged_cifar.main_for(rest)


if __name__ == "__main__":
    main()
