"""Knowledge transfer: a frozen float teacher beside the ternary student, and the losses that pull the student
towards it. The teacher runs in eval mode (batch norm with its running statistics), without gradients, on the
student's own batch; it is never saved with the student and never wrapped by DistributedDataParallel.

Classifiers (Hinton et al. 2015, "Distilling the Knowledge in a Neural Network")::

    loss = (1 − α)·CE(s, y) + α·T²·KL(softmax(t/T) ‖ softmax(s/T))

T² keeps the soft term's gradients the size of the hard term's whatever the temperature.

Detectors (Xu et al. 2018, "Training a Binary Weight Object Detector by Knowledge Transfer for Autonomous
Driving", which the seeds cite)::

    loss = detection loss + λ_head·head loss + λ_feature·feature loss

* head loss, on the raw outputs of every [region]/[yolo] head, per anchor and cell: the Bernoulli KL of the
  objectness, plus the teacher's objectness p_t times (smooth-L1 distance of the four box outputs + KL of
  the class outputs). Most anchors see background; weighting boxes and classes by p_t keeps thousands of
  meaningless background boxes from drowning the few the teacher sees objects in. The box term is smooth
  L1 (squared below 1, linear above), as box regression usually is: w and h are unbounded logarithms, and
  one wild teacher box must not make a gradient step of its own.
* feature loss (feature mimicking): at chosen layers, the mean square between the teacher's map and the
  student's, after a 1x1 adaptation conv on the student side where the channel counts differ.

Both are summed over a batch's images and divided by the images per update, as the detection loss is
(``yolo/loss.py``), so the weights mean the same thing at any batch or subdivision.

    cfg = DistillConfig()                                      # the defaults (how they were chosen: below)
    teacher = ClassifierTeacher(float_model)
    loss, parts = classifier_loss(student(x), teacher(x), y, cfg)
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Optional

import torch
import torch.nn as nn
import torch.nn.functional as F

__all__ = ["DistillConfig", "kd_kl", "classifier_loss", "head_loss", "feature_loss", "ClassifierTeacher",
           "DetectorDistiller", "default_feature_layers", "parse_layers", "freeze"]


@dataclass(frozen=True)
class DistillConfig:
    """Weights, temperature and layers of knowledge transfer.

    temperature, alpha: classifiers (softened logits; share of the soft term, the label loss gets 1 − alpha).
    head, feature: detectors (weights of the head-output and feature-mimic losses beside the detection loss;
    feature 0 turns mimicking off). layers: detectors, the darknet layer indices whose outputs are mimicked;
    None: the input of each head's last conv (the deepest feature map, the one the head reads).

    The defaults come from short CPU runs (TWN, all layers ternary, two seeds each):
    * classifiers, ResNet-20 from the pretrained network, 2 epochs of 5,000 CIFAR-10 images, top-1 on 2,000
      test images: no transfer 79.00 / 79.30; T = 4, α = 0.5: 80.60 / 80.30; T = 4, α = 0.9: 79.60 / 78.45;
      T = 2, α = 0.5: 79.15 / 78.85 (T = 2, α = 0.9: 79.35, one seed). T = 4, α = 0.5 was best on both seeds.
      At BENCHMARKS.md 9c's budget (8 epochs of 10,000 images, the float fine-tuned network as teacher, three
      seeds): α = 0.5 / 0.9 / 1.0 at T = 4 within 0.1 of each other (85.28 / 85.19 / 85.26), T = 2 0.3 lower.
    * detectors, ttt5_224_160 on BCCD, 100 iterations of per-channel TWN from a float detector trained 500
      iterations (15.7 mAP@0.5), mAP on the 72 test images: no transfer 20.80 / 15.04; head 1: 22.68 /
      20.40; head 1 + feature 1: 13.47 / 13.05 (feature 10: 11.34, feature alone: 19.54, one seed). So the
      head-output loss is on and feature mimicking off by default. Tried again on a long run (BENCHMARKS.md 10e:
      2,000 iterations from a float detector of 42.2, BN statistics re-estimated before scoring, one seed): head 1
      42.28, head 1 + feature 1 41.44, head 1 + feature 100 (the feature term about the head term's size) 41.54:
      mimicking still gains nothing, and stays off.
    """
    temperature: float = 4.0
    alpha: float = 0.5
    head: float = 1.0
    feature: float = 0.0
    layers: Optional[tuple] = None

    def __post_init__(self):
        if not self.temperature > 0:
            raise ValueError(f"distill temperature must be positive, got {self.temperature}")
        if not 0 <= self.alpha <= 1:
            raise ValueError(f"distill alpha must be in [0, 1], got {self.alpha}")
        if self.head < 0 or self.feature < 0:
            raise ValueError(f"distill weights must be ≥ 0, got head={self.head}, feature={self.feature}")


def freeze(model: nn.Module) -> nn.Module:
    """Eval mode and no gradients: how a teacher runs."""
    model.eval()
    for p in model.parameters():
        p.requires_grad_(False)
    return model


# ---------------------------------------------------------------------------------------------- classifiers
def kd_kl(student_logits: torch.Tensor, teacher_logits: torch.Tensor, temperature: float) -> torch.Tensor:
    """T²·KL(softmax(t/T) ‖ softmax(s/T)), averaged over the batch."""
    t = float(temperature)
    return F.kl_div(F.log_softmax(student_logits / t, 1), F.log_softmax(teacher_logits.detach() / t, 1),
                    reduction="batchmean", log_target=True) * t * t


def classifier_loss(student_logits, teacher_logits, labels, cfg: DistillConfig):
    """((1 − α)·CE + α·T²·KL, {"label": CE, "distill": T²·KL}) for one batch."""
    ce = F.cross_entropy(student_logits, labels)
    kd = kd_kl(student_logits, teacher_logits, cfg.temperature)
    return (1 - cfg.alpha) * ce + cfg.alpha * kd, {"label": ce.detach(), "distill": kd.detach()}


class ClassifierTeacher:
    """A frozen classifier called on the student's batch; ``seconds`` adds up the time spent in it."""

    def __init__(self, model: nn.Module):
        self.model = freeze(model)
        self.seconds = 0.0

    @torch.no_grad()
    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        t = time.perf_counter()
        out = self.model(x)
        self.seconds += time.perf_counter() - t
        return out


# ---------------------------------------------------------------------------------------------- detectors
def _bernoulli_kl(p_t: torch.Tensor, z_s: torch.Tensor) -> torch.Tensor:
    """KL(Bern(p_t) ‖ Bern(σ(z_s))) elementwise: zero where the student's probability equals the teacher's."""
    return (F.binary_cross_entropy_with_logits(z_s, p_t, reduction="none")
            + torch.xlogy(p_t, p_t) + torch.xlogy(1 - p_t, 1 - p_t))


def head_loss(z_s: torch.Tensor, z_t: torch.Tensor, act_t: torch.Tensor, classes: int,
              class_kind: str = "softmax", act_s: Optional[torch.Tensor] = None) -> torch.Tensor:
    """The head-output loss of one head, summed over images, anchors and cells.

    z_s, z_t: the head's input (the raw conv output), act_t (and act_s): its activated output, all
    (B, anchors·(5 + classes), H, W) in darknet's [anchor][entry][row][col] order. Entries 0-3 are the box
    (x, y after the logistic, w, h raw: compared as the head outputs them), 4 the objectness (logistic),
    then the classes: ``softmax`` ([region] softmax=1) or ``logistic`` ([yolo], [region] softmax=0).

        Σ KL(p_t ‖ p_s)  +  p_t·( Σ_box smoothL1(b_s − b_t)  +  class term )

    with smoothL1(d) = d²/2 for |d| < 1, else |d| − 1/2.
    """
    b, _, h, w = z_s.shape
    shape = (b, -1, 5 + classes, h, w)
    zs, zt, at = z_s.reshape(shape), z_t.detach().reshape(shape), act_t.detach().reshape(shape)
    as_ = act_s.reshape(shape) if act_s is not None else None
    p_t = at[:, :, 4]
    obj = _bernoulli_kl(p_t, zs[:, :, 4])
    box_s = torch.cat([torch.sigmoid(zs[:, :, :2]), zs[:, :, 2:4]], 2) if as_ is None else as_[:, :, :4]
    box = F.smooth_l1_loss(box_s, at[:, :, :4], reduction="none", beta=1.0).sum(2)
    if classes == 0:
        cls = torch.zeros_like(box)
    elif class_kind == "softmax":
        cls = F.kl_div(F.log_softmax(zs[:, :, 5:], 2), F.log_softmax(zt[:, :, 5:], 2), reduction="none",
                       log_target=True).sum(2)
    elif class_kind == "logistic":
        cls = _bernoulli_kl(torch.sigmoid(zt[:, :, 5:]), zs[:, :, 5:]).sum(2)
    else:
        raise ValueError(f"unknown class activation {class_kind!r}; choose softmax or logistic")
    return (obj + p_t * (box + cls)).sum()


def feature_loss(f_s: torch.Tensor, f_t: torch.Tensor, adapter: Optional[nn.Module] = None) -> torch.Tensor:
    """Σ over images of the mean square (over channels, rows, columns) between the teacher's feature map and
    the student's, the student's first through ``adapter`` (a 1x1 conv where the channel counts differ)."""
    if adapter is not None:
        f_s = adapter(f_s)
    if f_s.shape != f_t.shape:
        raise ValueError(f"feature mimicking: student map {tuple(f_s.shape)} and teacher map {tuple(f_t.shape)} "
                         "differ (rows and columns must match; an adaptation conv only changes channels)")
    return ((f_s - f_t.detach()) ** 2).flatten(1).mean(1).sum()


def default_feature_layers(net) -> tuple:
    """The input of each head's last conv: layer h − 2 for a head at h (darknet layers read the previous one)."""
    return tuple(sorted({h - 2 for h in net.head_indices if h >= 2}))


def parse_layers(text) -> Optional[tuple]:
    """``"9"`` or ``"7,9"`` (or a sequence of ints) → (7, 9); None/empty → None (the default layers)."""
    if text is None or text == "" or text == ():
        return None
    items = text.split(",") if isinstance(text, str) else list(text)
    try:
        return tuple(int(str(i).strip()) for i in items if str(i).strip())
    except ValueError:
        raise ValueError(f"distill layers: expected darknet layer indices such as 7,9, got {text!r}") from None


def _class_kind(info) -> str:
    return "softmax" if info.type == "region" and info.attrs.get("softmax") else "logistic"


class _StudentOutputs(nn.Module):
    """The student's forward for training with a teacher: each head's (input, output), as ``HeadInputs``, and
    the mimicked layers' outputs through their adaptation convs (a module, so DDP syncs the adapters too)."""

    def __init__(self, net, layers: tuple, adapters: nn.ModuleDict):
        super().__init__()
        self.net, self.layers, self.adapters = net, layers, adapters

    def forward(self, x):
        outs = self.net.forward_all(x)
        pairs = [(outs[i - 1], outs[i]) for i in self.net.head_indices]
        feats = [self.adapters[str(i)](outs[i]) if str(i) in self.adapters else outs[i] for i in self.layers]
        return pairs, feats


class DetectorDistiller:
    """Head-output and feature-mimic transfer from a frozen darknet ``teacher`` to the ``student`` network.

    The teacher must have the student's heads (same classes and anchors per head); mimicked layers must have
    the same rows and columns in both, and a 1x1 adaptation conv (trained with the student) maps the
    student's channels to the teacher's where they differ.
    """

    def __init__(self, student, teacher, cfg: DistillConfig):
        self.teacher, self.cfg = freeze(teacher), cfg
        if len(student.head_indices) != len(teacher.head_indices):
            raise ValueError(f"teacher {teacher.cfg.path} has {len(teacher.head_indices)} detection heads, the "
                             f"student {len(student.head_indices)}")
        self.heads = []
        for hs, ht in zip(student.head_indices, teacher.head_indices):
            si, ti = student.infos[hs], teacher.infos[ht]
            if si.out_shape[0] != ti.out_shape[0] or si.attrs["classes"] != ti.attrs["classes"]:
                raise ValueError(f"teacher head at layer {ht} ({ti.out_shape[0]} outputs, {ti.attrs['classes']} "
                                 f"classes) does not match the student's at layer {hs} ({si.out_shape[0]}, "
                                 f"{si.attrs['classes']})")
            self.heads.append((ht, si.attrs["classes"], _class_kind(si)))
        self.layers = cfg.layers if cfg.layers is not None else default_feature_layers(student)
        if cfg.feature == 0:
            self.layers = ()
        self.adapters = nn.ModuleDict()
        for i in self.layers:
            for net, who in ((student, "student"), (teacher, "teacher")):
                if not 0 <= i < len(net.infos):
                    raise ValueError(f"distill layer {i}: the {who} has layers 0-{len(net.infos) - 1}")
            cs, ct = student.infos[i].out_shape[0], teacher.infos[i].out_shape[0]
            if student.infos[i].out_shape[1:] != teacher.infos[i].out_shape[1:]:
                raise ValueError(f"distill layer {i}: student output {student.infos[i].out_shape} and teacher "
                                 f"output {teacher.infos[i].out_shape} differ in rows and columns")
            if cs != ct:
                self.adapters[str(i)] = nn.Conv2d(cs, ct, 1, bias=False)
        self.seconds = 0.0

    def train_adapters(self, optimizer, state: dict, decay: float, device) -> None:
        """The adaptation convs train with the student, in an optimiser group of their own (darknet's decay,
        the run's rate); a resumed run takes their values back from ``state`` (see ``state()``)."""
        if not len(self.adapters):
            return
        self.adapters.to(device)
        if state.get("distill_adapters"):
            self.adapters.load_state_dict(state["distill_adapters"])
        optimizer.add_param_group({"params": list(self.adapters.parameters()), "weight_decay": decay,
                                   "lr_scale": 1.0})

    def state(self) -> dict:
        """What a checkpoint keeps of the transfer: the adaptation convs, if any."""
        return {"distill_adapters": self.adapters.state_dict()} if len(self.adapters) else {}

    def student_outputs(self, net) -> nn.Module:
        """The module to train (wrap it for DDP): returns (head pairs, mimicked features)."""
        return _StudentOutputs(net, self.layers, self.adapters)

    def loss(self, x, pairs, feats, batch: int):
        """(λ_head·head loss + λ_feature·feature loss for this sub-batch, divided by the images per update;
        {"head", "feature"} unweighted, as floats). The teacher's forward is timed into ``seconds``."""
        t0 = time.perf_counter()
        with torch.no_grad():
            outs = self.teacher.forward_all(x)
        total, parts = 0.0, {"head": 0.0, "feature": 0.0}
        if self.cfg.head > 0:
            h = sum(head_loss(zs, outs[i - 1], outs[i], classes, kind, act_s)
                    for (zs, act_s), (i, classes, kind) in zip(pairs, self.heads)) / batch
            total = total + self.cfg.head * h
            parts["head"] = float(h.detach())
        if self.layers:
            f = sum(feature_loss(fs, outs[i]) for fs, i in zip(feats, self.layers)) / batch
            total = total + self.cfg.feature * f
            parts["feature"] = float(f.detach())
        self.seconds += time.perf_counter() - t0
        return total, parts
