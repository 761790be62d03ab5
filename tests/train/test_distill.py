"""Knowledge transfer: the losses against hand-computed values, a short run where the teacher pulls the student
closer than training without it, the stage-boundary batch-norm re-estimation and the warm-up."""
import math

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

import tritnet
from tritnet.nn import is_ternary
from tritnet.train import ClassifierTrainConfig, DistillConfig, train_classifier
from tritnet.train.calibrate import batchnorms_after, recalibrate_batchnorm
from tritnet.train.classifier import lr_factor, newly_ternary
from tritnet.train.distill import classifier_loss, feature_loss, head_loss, kd_kl


# ---------------------------------------------------------------------------------------------- classifier loss
def test_kl_with_temperature_by_hand():
    s, t = torch.tensor([[1.0, 0.0]]), torch.tensor([[0.0, 1.0]])
    # T = 2: softmax(t/2) = (q, p), softmax(s/2) = (p, q) with p = σ(0.5), q = 1 − p; log(p/q) = 0.5, so
    # KL = p·0.5 − q·0.5 = 0.5·tanh(0.25) and T²·KL = 2·tanh(0.25)
    assert kd_kl(s, t, 2.0).item() == pytest.approx(2 * math.tanh(0.25), rel=1e-6)
    assert kd_kl(t, t, 2.0).item() == pytest.approx(0.0, abs=1e-7)
    # averaged over the batch, not summed
    assert kd_kl(torch.cat([s, t]), torch.cat([t, t]), 2.0).item() == pytest.approx(math.tanh(0.25), rel=1e-6)


def test_temperature_squared_keeps_the_gradient_size():
    s = torch.tensor([[1.0, 0.0]], requires_grad=True)
    kd_kl(s, torch.tensor([[0.0, 1.0]]), 2.0).backward()
    # ∂(T²·KL)/∂s = T·(softmax(s/T) − softmax(t/T)) = 2·(p − q, q − p), p − q = tanh(0.25)
    assert torch.allclose(s.grad, torch.tensor([[2 * math.tanh(0.25), -2 * math.tanh(0.25)]]), atol=1e-6)


def test_label_and_teacher_terms_mix_by_alpha():
    s, t, y = torch.tensor([[1.0, 0.0]]), torch.tensor([[0.0, 1.0]]), torch.tensor([0])
    loss, parts = classifier_loss(s, t, y, DistillConfig(alpha=0.9, temperature=2.0))
    ce = math.log(1 + math.exp(-1))                                   # −log softmax(1, 0)[0]
    assert parts["label"].item() == pytest.approx(ce, rel=1e-6)
    assert loss.item() == pytest.approx(0.1 * ce + 0.9 * 2 * math.tanh(0.25), rel=1e-6)
    loss, _ = classifier_loss(s, t, y, DistillConfig(alpha=0.0))
    assert loss.item() == pytest.approx(F.cross_entropy(s, y).item())
    with pytest.raises(ValueError, match="alpha"):
        DistillConfig(alpha=1.5)
    with pytest.raises(ValueError, match="temperature"):
        ClassifierTrainConfig(data="x", weights="w", distill=True, distill_temperature=0.0)
    with pytest.raises(ValueError, match="needs a teacher"):
        ClassifierTrainConfig(data="x", distill=True)


# ---------------------------------------------------------------------------------------------- detector losses
def _sig(v):
    return 1 / (1 + math.exp(-v))


def _region_act(z, classes):
    """A [region] softmax=1 head's activation of z (B, A·(5 + C), H, W)."""
    b, _, h, w = z.shape
    y = z.reshape(b, -1, 5 + classes, h, w)
    return torch.cat([torch.sigmoid(y[:, :, :2]), y[:, :, 2:4], torch.sigmoid(y[:, :, 4:5]),
                      torch.softmax(y[:, :, 5:], 2)], 2).reshape(z.shape)


def test_head_loss_weighted_by_teacher_objectness_by_hand():
    # one cell, two anchors, two classes; entries x, y, w, h, obj, c0, c1
    z_t = torch.tensor([0.0, 0.0, 0.5, -0.5, 0.0, 1.0, 0.0,          # anchor 0: the teacher sees an object, p_t = .5
                        0.0, 0.0, 0.0, 0.0, -20.0, 0.0, 0.0]).view(1, 14, 1, 1)   # anchor 1: background
    z_s = torch.tensor([0.0, 0.0, 0.1, -0.5, 0.0, 0.0, 0.0,
                        3.0, -3.0, 5.0, -5.0, 0.0, 4.0, -4.0]).view(1, 14, 1, 1)
    loss = head_loss(z_s, z_t, _region_act(z_t, 2), 2, "softmax", _region_act(z_s, 2))
    # anchor 0: objectness KL(.5‖.5) = 0; box smooth-L1 of (0.1 − 0.5): 0.4²/2 = 0.08; classes
    # KL(softmax(1, 0) ‖ (.5, .5))
    p = _sig(1.0)
    cls = p * math.log(p / 0.5) + (1 - p) * math.log((1 - p) / 0.5)
    anchor0 = 0.5 * (0.08 + cls)
    # anchor 1: its big box and class differences weigh p_t = σ(−20) ≈ 2e-9: only the objectness KL(p_t ‖ .5)
    # ≈ log 2 is left (box smooth-L1: |5 − 0| − 0.5 and |−5 − 0| − 0.5 past 1, squared halves below)
    pt = _sig(-20.0)
    anchor1 = pt * math.log(pt / 0.5) + (1 - pt) * math.log((1 - pt) / 0.5)
    assert loss.item() == pytest.approx(anchor0 + anchor1, rel=1e-5)
    assert head_loss(z_t, z_t, _region_act(z_t, 2), 2, "softmax").item() == pytest.approx(0.0, abs=1e-6)


def test_head_loss_logistic_classes_by_hand():
    # a [yolo] head: classes through the logistic, each class a Bernoulli KL
    z_t = torch.tensor([0.0, 0.0, 3.0, 0.0, 20.0, 2.0]).view(1, 6, 1, 1)     # p_t ≈ 1, class prob σ(2)
    z_s = torch.tensor([0.0, 0.0, 0.0, 0.0, 20.0, 0.0]).view(1, 6, 1, 1)
    act_t = torch.cat([torch.sigmoid(z_t[:, :2]), z_t[:, 2:4], torch.sigmoid(z_t[:, 4:])], 1)
    q = _sig(2.0)
    # w differs by 3: smooth L1 is linear there, 3 − 0.5 (a squared error would give 9)
    want = _sig(20.0) * (2.5 + q * math.log(q / 0.5) + (1 - q) * math.log((1 - q) / 0.5))
    assert head_loss(z_s, z_t, act_t, 1, "logistic").item() == pytest.approx(want, rel=1e-5)


def test_feature_loss_with_and_without_adaptation_by_hand():
    f_s = torch.tensor([[[[1.0, 3.0]]]])                       # (1, 1, 1, 2)
    f_t = torch.tensor([[[[0.0, 1.0]]]])
    assert feature_loss(f_s, f_t).item() == pytest.approx((1 + 4) / 2)      # mean square over the map
    assert feature_loss(torch.cat([f_s, f_t]), torch.cat([f_t, f_t])).item() == pytest.approx(2.5)  # Σ images
    # student with 2 channels, teacher with 1: a 1x1 conv adapts; weights (1, 1) turn (1, 2) into 3, (4 − 3)² = 1
    adapter = nn.Conv2d(2, 1, 1, bias=False)
    with torch.no_grad():
        adapter.weight.fill_(1.0)
    f_s2 = torch.tensor([1.0, 2.0]).view(1, 2, 1, 1)
    loss = feature_loss(f_s2, torch.tensor([4.0]).view(1, 1, 1, 1), adapter)
    assert loss.item() == pytest.approx(1.0)
    loss.backward()                                            # ∂/∂w = 2·(3 − 4)·f_s = (−2, −4)
    assert torch.allclose(adapter.weight.grad.flatten(), torch.tensor([-2.0, -4.0]))
    with pytest.raises(ValueError, match="differ"):
        feature_loss(f_s2, torch.zeros(1, 1, 1, 1))


# ---------------------------------------------------------------------------------------------- BN re-estimation
class _Tiny(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1, self.bn1 = nn.Conv2d(3, 4, 3, padding=1, bias=False), nn.BatchNorm2d(4)
        self.conv2, self.bn2 = nn.Conv2d(4, 5, 3, padding=1, bias=False), nn.BatchNorm2d(5)

    def forward(self, x):
        return self.bn2(self.conv2(F.relu(self.bn1(self.conv1(x)))))


def test_bn_reestimation_of_the_newly_ternary_part_matches_a_hand_computation():
    torch.manual_seed(0)
    model = _Tiny()
    with torch.no_grad():
        for bn in (model.bn1, model.bn2):
            bn.running_mean.uniform_(-1, 1)
            bn.running_var.uniform_(0.5, 2)
            bn.weight.uniform_(0.5, 1.5)
            bn.bias.uniform_(-0.5, 0.5)
    tritnet.ternarize_(model, method="twn", layers=["conv2"])          # the stage's new ternary layer
    bn1_before = (model.bn1.running_mean.clone(), model.bn1.running_var.clone())
    batches = [(torch.randn(6, 3, 5, 5), None) for _ in range(3)]
    recalibrate_batchnorm(model, batches + batches, 3, only=batchnorms_after(model, model.conv2))
    # by hand: bn1 normalises with each batch's own statistics (training mode), conv2 uses α·T; bn2's new
    # running mean / variance are the plain averages of the batches' means and unbiased variances
    means, variances = [], []
    with torch.no_grad():
        t = model.conv2.ternary_weight()
        for x, _ in batches:
            h = model.conv1(x)
            mu, var = h.mean((0, 2, 3), keepdim=True), h.var((0, 2, 3), unbiased=False, keepdim=True)
            h = F.relu((h - mu) / torch.sqrt(var + model.bn1.eps) * model.bn1.weight.view(1, -1, 1, 1)
                       + model.bn1.bias.view(1, -1, 1, 1))
            y = F.conv2d(h, t, padding=1)
            means.append(y.mean((0, 2, 3)))
            variances.append(y.var((0, 2, 3), unbiased=True))
    assert torch.allclose(model.bn2.running_mean, torch.stack(means).mean(0), atol=1e-5)
    assert torch.allclose(model.bn2.running_var, torch.stack(variances).mean(0), atol=1e-5)
    # upstream of the new ternary layer nothing changed
    assert torch.equal(model.bn1.running_mean, bn1_before[0]) and torch.equal(model.bn1.running_var, bn1_before[1])
    assert model.bn1.momentum == 0.1 and model.bn2.momentum == 0.1


def test_newly_ternary_layers_are_the_ones_the_start_checkpoint_holds_float(tmp_path):
    from tritnet.models import model_checkpoint, save_atomic
    model = tritnet.create_model("resnet20")
    tritnet.ternarize_(model, method="twn", layers=["layer3.2.conv2", "linear"])
    save_atomic(model_checkpoint(model), tmp_path / "stage.pt")
    cfg = ClassifierTrainConfig(data="x", weights=str(tmp_path / "stage.pt"), method="twn")
    tritnet.ternarize_(model, method="twn", layers=["layer3.2.conv1", "layer3.2.conv2", "linear"])
    assert newly_ternary(model, cfg) == ["layer3.2.conv1"]
    assert newly_ternary(model, ClassifierTrainConfig(data="x")) == ["layer3.2.conv1", "layer3.2.conv2", "linear"]


def test_warmup_ramps_the_learning_rate_then_follows_the_schedule():
    cfg = ClassifierTrainConfig(data="x", schedule="constant", warmup=0.1)
    assert [lr_factor(cfg, s, 100) for s in (0, 4, 9, 10, 50)] == [0.1, 0.5, 1.0, 1.0, 1.0]
    cos = ClassifierTrainConfig(data="x", warmup=0.1)
    assert lr_factor(cos, 4, 100) == pytest.approx(0.5 * 0.5 * (1 + math.cos(math.pi * 0.04)))
    with pytest.raises(ValueError, match="warmup"):
        ClassifierTrainConfig(data="x", warmup=1.0)


def test_a_larger_teacher_is_built_as_named_or_as_its_checkpoint_records(shared_data, tmp_path):
    """teacher_model builds the teacher as another architecture (ResNet-32 teaching ResNet-20), with the same
    outputs as that network loaded directly; a tritnet checkpoint of it needs no name; a teacher whose input is
    prepared otherwise (a darknet classifier cfg: x/255 at its own size) or whose checkpoint records other classes
    is refused."""
    from tritnet.models import load_pretrained, model_checkpoint, save_atomic
    from tritnet.train.classifier import build_teacher
    pretrained = str(shared_data / "pretrained" / "resnet_cifar10")
    reference = tritnet.create_model("resnet32")
    load_pretrained(reference, pretrained, reference.model_info)
    reference.eval()
    x = torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    base = dict(data="x", model="resnet20", weights=pretrained, method="twn", distill=True)
    classes = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]

    named = build_teacher(ClassifierTrainConfig(**base, teacher_model="resnet32"), classes, "cpu")
    assert sum(isinstance(m, nn.Conv2d) for m in named.model.modules()) == 31      # 1 + 3 stages x 5 blocks x 2
    assert torch.equal(named(x), reference(x))
    save_atomic(model_checkpoint(reference, class_names=classes), tmp_path / "resnet32.pt")
    recorded = build_teacher(ClassifierTrainConfig(**base, teacher=str(tmp_path / "resnet32.pt")), classes, "cpu")
    assert torch.equal(recorded(x), reference(x))
    with pytest.raises(ValueError, match="resnet32.pt: a teacher of other classes"):
        build_teacher(ClassifierTrainConfig(**base, teacher=str(tmp_path / "resnet32.pt")), classes[::-1], "cpu")
    default = build_teacher(ClassifierTrainConfig(**base), classes, "cpu")
    assert sum(isinstance(m, nn.Conv2d) for m in default.model.modules()) == 19
    assert not any(is_ternary(m) for m in default.model.modules())     # the student's method not applied
    cfg = str(shared_data / "darknet" / "weights" / "cifar_minin.cfg")
    with pytest.raises(ValueError, match="cifar_minin.cfg: takes other input than resnet20"):
        build_teacher(ClassifierTrainConfig(**base, teacher_model=cfg), classes, "cpu")


# ---------------------------------------------------------------------------------------------- a short run
def _teacher_distance(student, teacher, batches) -> float:
    """Mean KL(teacher ‖ student) of the output distributions (T = 1) over fixed batches, the student computing as
    in training (batch statistics): a 12-step run barely moves the BN running averages the eval mode would use,
    so those would measure how stale the averages are rather than what the training did to the network."""
    student.train()
    with torch.no_grad():
        return sum(float(kd_kl(student(x), teacher(x), 1.0)) for x in batches) / len(batches)


def test_transfer_pulls_the_ternary_student_towards_the_teacher(shared_data, tmp_path):
    """Same start (the pretrained ResNet-20 made all ternary), seed, data and steps; with the float network
    as teacher (default weights and temperature) the student ends nearer to it than the run trained on labels
    alone."""
    from tritnet.data import build_classification_loaders
    from tritnet.models import load_pretrained
    from tritnet.train import load_classifier
    pretrained = shared_data / "pretrained" / "resnet_cifar10"
    base = dict(data=str(shared_data / "cifar10/cifar10-jpeg.tar.gz"), model="resnet20", weights=str(pretrained),
                method="twn", train_per_class=20, valid_per_class=10, epochs=3, batch_size=50, lr=0.01, workers=0,
                bn_recalibrate=2, project=str(tmp_path), progress=False, seed=3)
    plain = train_classifier(ClassifierTrainConfig(**base, name="plain"))
    taught = train_classifier(ClassifierTrainConfig(**base, name="taught", distill=True))
    assert "step_ms" in taught and 0 < taught["teacher_ms"] < taught["step_ms"] and taught["overhead"] > 0
    teacher = tritnet.create_model("resnet20")
    load_pretrained(teacher, pretrained, teacher.model_info)
    teacher.eval()
    info = teacher.model_info
    images = build_classification_loaders(base["data"], batch_size=50, workers=0, train_per_class=20,
                                          valid_per_class=10, mean=info.mean, std=info.std, flip=False, padding=0)
    batches = [x for x, _ in images.train]              # the training images, unaugmented, in one fixed order
    d_plain = _teacher_distance(load_classifier(plain["run_dir"] + "/weights/last.pt")[0], teacher, batches)
    d_taught = _teacher_distance(load_classifier(taught["run_dir"] + "/weights/last.pt")[0], teacher, batches)
    assert d_taught < 0.85 * d_plain, (d_taught, d_plain)
    rows = (tmp_path / "taught" / "results.csv").read_text().splitlines()
    assert "distill_loss" in rows[0] and "teacher_s" in rows[0] and rows[1].split(",")[-1] != ""
