"""Classifier training, readable top to bottom: settings → data → model → ternarize → optimiser → loop.

    cfg = ClassifierTrainConfig(data="../shared/data/cifar10/cifar10-jpeg.tar.gz", model="resnet20",
                                weights="../shared/data/pretrained/resnet_cifar10", method="twn", epochs=3)
    result = train_classifier(cfg)
    # the same with knowledge transfer from the float network it starts from (``distill.py``)
    result = train_classifier(dataclasses.replace(cfg, distill=True))

Runs under torchrun too (one process per device, DistributedDataParallel); only rank 0 writes files.
"""
from __future__ import annotations

import dataclasses
import math
import random
import sys
import time
from dataclasses import dataclass
from typing import ClassVar
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F
from tqdm import tqdm
from tritnet_rt.cliargs import nonnegative_float, nonnegative_int, positive_float, positive_int

from ..atomic import write_bytes_atomic
from ..eval import evaluate, topk_correct
from ..models import (get_model_info, list_models, load_into, load_model, model_checkpoint, read_checkpoint,
                      save_atomic)
from ..darknet import is_cfg_name
from ..models.checkpoint import CheckpointError
from ..nn import format_report, is_ternary, ternary_report, weight_layers
from ..quant import method_name
from . import distributed as dist
from .calibrate import BN_BATCHES, batchnorms_after, recalibrate_batchnorm
from .distill import ClassifierTeacher, DistillConfig, classifier_loss
from .fields import check_fields
from .runs import CsvLog, MinLoss, new_run_dir, plot_curves, write_args

MINLOSS_AFTER = 0.05    # fraction of the run before min-loss checkpoints start
MINLOSS_EVERY = 20      # steps between two min-loss checkpoints at most
LOG_FIELDS = ["epoch", "lr", "train_loss", "train_top1", "valid_loss", "top1", "top5", "epoch_time_s",
              "images_per_s", "distill_loss", "teacher_s"]


@dataclass
class ClassifierTrainConfig:
    data: str                               # image folder / .tar.gz, CIFAR pickle folder, or darknet .data
    model: str = "resnet20"                 # registered model name (see `tritnet models`) or a darknet .cfg
    weights: str | None = None              # initial weights: a checkpoint, or a folder of pretrained files
    method: str | None = None               # twn | ttn | sttn; None trains the float model
    layers: str | None = None               # all | all_but_first_last | layer names; darknet cfg: cfg (its
                                            # ternary=1 flags) | all | layer indices. Default: all / cfg
    threshold: float | None = None          # ternarizer threshold factor (method default when None)
    per_channel: bool = False
    t_ex: int = 1                           # TTN residual expansion (1, 2, 4)
    bn_recalibrate: int = BN_BATCHES        # batches to re-estimate the BN statistics from the first layer
                                            # made ternary on (a stage: its newly ternary layers) before training
    bn_eval: int = BN_BATCHES               # batches re-estimating every BN statistic before each evaluation
    epochs: int = 10
    batch_size: int = 128
    optimizer: str = "sgd"                  # sgd | adam
    lr: float | None = None                 # default: 0.1 from scratch, 0.01 fine-tuning from weights (sgd)
    momentum: float = 0.9
    weight_decay: float = 1e-4
    schedule: str = "cosine"                # cosine | multistep | constant
    milestones: tuple[float, ...] = (0.5, 0.75)  # multistep: fractions of the run (or epochs if > 1)
    gamma: float = 0.1
    warmup: float = 0.0                     # linear learning-rate warm-up over this fraction of the run
    distill: bool = False                   # knowledge transfer from a frozen float teacher (distill.py)
    teacher: str | None = None              # its checkpoint or pretrained folder (default: weights, built float)
    teacher_model: str | None = None        # its architecture when not the run's (a checkpoint records its own)
    distill_alpha: float | None = None      # share of the soft (teacher) term; DistillConfig's when None
    distill_temperature: float | None = None  # softening of both logits; DistillConfig's when None
    train_per_class: int | None = None      # use only the first N training images of each class
    valid_per_class: int | None = None
    workers: int = 2
    cache_dir: str | None = None            # where decoded images are cached between runs
    project: str = "runs/classify"
    name: str = "train"
    resume: str | None = None               # a run folder (or its weights/last.pt) to continue
    seed: int = 0
    device: str = "auto"
    progress: bool = True

    # what the command line (``tritnet classifier train``, generated from these fields) and __post_init__ check
    RULES: ClassVar[dict] = {
        "epochs": positive_int, "batch_size": positive_int, "lr": positive_float, "momentum": nonnegative_float,
        "weight_decay": nonnegative_float, "gamma": positive_float, "threshold": positive_float, "t_ex": positive_int,
        "bn_recalibrate": nonnegative_int, "bn_eval": nonnegative_int, "train_per_class": positive_int,
        "valid_per_class": positive_int, "workers": nonnegative_int, "milestones": positive_float}
    CHOICES: ClassVar[dict] = {"method": ("twn", "ttn", "sttn", "float"), "t_ex": (1, 2, 4),
                               "optimizer": ("sgd", "adam"), "schedule": ("cosine", "multistep", "constant")}
    HELP: ClassVar[dict] = {
        "data": "image folder or .tar.gz (train/ and test/ inside), CIFAR pickle folder, or darknet .data",
        "model": "registered model (see `tritnet models`) or a darknet classifier .cfg",
        "weights": "initial weights: checkpoint file or pretrained folder; for a .cfg also darknet .weights (a "
                   "partial backbone is fine)",
        "method": "ternarization method (default, or float: train the float model)",
        "layers": "layers to ternarize (tritnet.layerspec): all | all_but_first_last | names | indices | ranges | "
                  "fractions; a darknet cfg: its ternary=1 layers by default",
        "threshold": "threshold factor (TWN 0.7, TTN 0.05)", "per_channel": "one scale per output channel (TWN/TTN)",
        "t_ex": "TTN residual expansion", "bn_recalibrate": "batches re-estimating batch-norm statistics from the "
                                                             "first ternary layer on, before training",
        "bn_eval": "batches re-estimating all batch-norm statistics before each epoch's evaluation and checkpoint "
                   "(0: keep the running averages of training)",
        "lr": "default 0.1 (scratch) / 0.01 (from weights)",
        "milestones": "multistep: epochs, or fractions of the run if <= 1",
        "warmup": "linear learning-rate warm-up over this fraction of the run (default 0)",
        "distill": "knowledge transfer from a frozen float teacher",
        "teacher": "the teacher's checkpoint or pretrained folder (default: --weights, built float)",
        "teacher_model": "the teacher's architecture, e.g. a larger network (default: the one a tritnet checkpoint "
                         "records, else --model); it must take the same input",
        "distill_alpha": "share of the teacher term (default 0.5)",
        "distill_temperature": "softening temperature of both logits (default 4)",
        "train_per_class": "use only the first N training images of each class",
        "cache_dir": "keep decoded images here between runs",
        "resume": "run folder (or its weights/last.pt) to continue"}

    def __post_init__(self):
        # The command line's own rules (train/fields.py), so a config built in Python or by a stage's --set
        # fails here naming the field, not as NaN checkpoints or a run folder holding only args.yaml.
        self.method = method_name(self.method)
        check_fields(self)
        if not 0 <= self.warmup < 1:
            raise ValueError(f"warmup: a fraction of the run in [0, 1), got {self.warmup}")
        if self.distill:
            self.distill_config()                # the temperature and alpha checks
            if not (self.teacher or self.weights or self.resume):
                raise ValueError("distill: knowledge transfer needs a teacher: pass teacher (a checkpoint or "
                                 "pretrained folder) or the starting weights it defaults to")

    def distill_config(self) -> DistillConfig:
        given = {"alpha": self.distill_alpha, "temperature": self.distill_temperature}
        return DistillConfig(**{k: v for k, v in given.items() if v is not None})

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["milestones"] = list(self.milestones)
        return d


def log_line(message: str):
    """Progress messages go to stderr (beside the bar), so stdout carries only results (e.g. --json)."""
    tqdm.write(message, file=sys.stderr)


def _seed_all(seed: int):
    random.seed(seed)
    torch.manual_seed(seed)


def build_model(cfg: ClassifierTrainConfig, num_classes: int) -> nn.Module:
    """The model a run trains: ``load_model`` of its source, weights, method and layers."""
    return load_model(cfg.model, cfg.weights, method=cfg.method, layers=cfg.layers, num_classes=num_classes,
                      per_channel=cfg.per_channel, threshold=cfg.threshold, t_ex=cfg.t_ex).model


def input_format(model_name: str) -> dict:
    """How the loaders must prepare images for a model: its normalisation, and its input size for a darknet
    cfg (darknet classifiers take x/255 at the cfg's width and height)."""
    if is_cfg_name(model_name):
        from ..darknet import parse_cfg
        net = parse_cfg(model_name).net
        c = net.param("channels")
        return {"mean": (0.0,) * c, "std": (1.0,) * c, "size": (net.param("height"), net.param("width"))}
    info = get_model_info(model_name)
    return {"mean": info.mean, "std": info.std}


def make_optimizer(cfg: ClassifierTrainConfig, model: nn.Module) -> torch.optim.Optimizer:
    lr = cfg.lr if cfg.lr is not None else (0.01 if cfg.weights else 0.1)
    if cfg.optimizer == "adam":
        return torch.optim.Adam(model.parameters(), lr=lr if cfg.lr is not None else 1e-3,
                                weight_decay=cfg.weight_decay)
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(model.parameters(), lr=lr, momentum=cfg.momentum, nesterov=cfg.momentum > 0,
                               weight_decay=cfg.weight_decay)
    raise ValueError(f"unknown optimizer {cfg.optimizer!r}; choose sgd or adam")


def lr_factor(cfg: ClassifierTrainConfig, step: int, total: int) -> float:
    """Multiplier of the base learning rate at ``step`` of ``total`` optimiser steps."""
    frac = step / max(total, 1)
    # warm-up: a linear ramp over the first warmup·total steps, on top of the schedule (which counts from 0)
    warm = min(1.0, (step + 1) / max(1, round(cfg.warmup * total))) if cfg.warmup > 0 else 1.0
    if cfg.schedule == "cosine":
        return warm * 0.5 * (1 + math.cos(math.pi * frac))
    if cfg.schedule == "multistep":
        marks = [m / cfg.epochs if m > 1 else m for m in cfg.milestones]
        return warm * cfg.gamma ** sum(frac >= m for m in marks)
    if cfg.schedule == "constant":
        return warm
    raise ValueError(f"unknown schedule {cfg.schedule!r}; choose cosine, multistep or constant")


def _start_ternary(cfg: ClassifierTrainConfig) -> set:
    """Layers the starting weights already hold ternary (a tritnet checkpoint records them, e.g. a stage's)."""
    if not cfg.weights or Path(cfg.weights).is_dir() or is_cfg_name(cfg.model):
        return set()
    try:
        return set(read_checkpoint(cfg.weights).get("ternary") or {})
    except CheckpointError:
        return set()


def newly_ternary(model: nn.Module, cfg: ClassifierTrainConfig) -> list:
    """Names of the layers this run made ternary (ternary now, float in the starting weights), in model order."""
    before = _start_ternary(cfg)
    return [n for n, m in weight_layers(model) if is_ternary(m) and n not in before]


def _checkpoint_record(source) -> dict:
    """What a checkpoint file records (architecture, class names); {} for a folder or a file without a record."""
    if not source or not Path(source).is_file():
        return {}
    try:
        return read_checkpoint(source)
    except CheckpointError:
        return {}


def build_teacher(cfg: ClassifierTrainConfig, class_names: list, device) -> ClassifierTeacher:
    """The frozen teacher: ``teacher`` (or the starting ``weights``) built float as ``teacher_model``, else as the
    registered architecture its tritnet checkpoint records (a larger trained network teaches without naming it
    twice), else as the run's model; a checkpoint that records ternary layers keeps them. It sees the student's
    batches, so it must take the same input, and its logits must mean the run's classes in the run's order."""
    source = cfg.teacher or cfg.weights
    record = _checkpoint_record(source)
    recorded = record.get("arch") if record.get("arch") in list_models() and not is_cfg_name(cfg.model) else None
    arch = cfg.teacher_model or recorded or cfg.model
    if arch != cfg.model and input_format(arch) != input_format(cfg.model):
        raise ValueError(f"teacher_model {arch}: takes other input than {cfg.model} ({input_format(arch)} against "
                         f"{input_format(cfg.model)}); the teacher sees the student's batches")
    taught = record.get("class_names")
    if taught and list(taught) != list(class_names):
        raise ValueError(f"{source}: a teacher of other classes ({', '.join(map(str, taught[:5]))}, ...) than the "
                         f"run's ({', '.join(map(str, class_names[:5]))}, ...)")
    model = build_model(dataclasses.replace(cfg, model=arch, weights=source, method=None, layers=None),
                        len(class_names))
    return ClassifierTeacher(model.to(device))


def _resolve_resume(resume: str) -> tuple[Path, Path]:
    p = Path(resume)
    ckpt = p / "weights" / "last.pt" if p.is_dir() else p
    run_dir = ckpt.parent.parent if ckpt.parent.name == "weights" else ckpt.parent
    if not ckpt.is_file():
        raise CheckpointError(f"{ckpt}: nothing to resume (no last checkpoint)")
    return run_dir, ckpt


def train_classifier(cfg: ClassifierTrainConfig) -> dict:
    """Train (or fine-tune, or ternarize-and-fine-tune) a classifier.

    Returns {"run_dir", "top1", "top5", "loss", "best_top1", "epochs", "model"} (the trained model itself).
    """
    from ..data import build_classification_loaders

    # ------------------------------------------------------------------ processes and device
    world = dist.setup()
    device = dist.pick_device(cfg.device)
    _seed_all(cfg.seed + world.rank)

    # ------------------------------------------------------------------ resume or new run folder
    start_epoch, best_top1, state = 0, -1.0, None
    smooth = MinLoss()                  # darknet's smoothed loss (.9·avg + .1·loss) and its minimum so far
    if cfg.resume:
        run_dir, ckpt_path = _resolve_resume(cfg.resume)
        state = read_checkpoint(ckpt_path)
        saved = dict(state.get("config", {}))
        saved.pop("resume", None)
        cfg = ClassifierTrainConfig(**{**saved, "resume": cfg.resume, "progress": cfg.progress,
                                       "workers": cfg.workers, "device": cfg.device})
        start_epoch, best_top1 = int(state["epoch"]) + 1, float(state.get("best_top1", -1.0))
        smooth = MinLoss(state.get("avg_loss", -1.0), state.get("min_avg_loss", 1e10))
        if (run_dir / "weights" / "minloss.pt").is_file():   # written between two epoch checkpoints
            saved = read_checkpoint(run_dir / "weights" / "minloss.pt")
            smooth.min = min(smooth.min, float(saved.get("avg_loss", 1e10)))
    elif world.is_main:
        run_dir = new_run_dir(cfg.project, cfg.name)
    else:
        run_dir = None
    run_dir = Path(dist.broadcast_object(str(run_dir) if run_dir else None, world))

    # ------------------------------------------------------------------ data
    data = build_classification_loaders(
        cfg.data, batch_size=cfg.batch_size, workers=cfg.workers, train_per_class=cfg.train_per_class,
        valid_per_class=cfg.valid_per_class, cache_dir=cfg.cache_dir, distributed=world.size > 1,
        rank=world.rank, world_size=world.size, seed=cfg.seed, **input_format(cfg.model))
    class_names = list(data.class_names)

    # ------------------------------------------------------------------ model, ternarization, optimiser
    model = build_model(cfg if state is None else dataclasses.replace(cfg, weights=None), len(class_names))
    if state is not None:
        load_into(model, ckpt_path, state)
    model.to(device)
    new = newly_ternary(model, cfg) if state is None and cfg.weights and cfg.bn_recalibrate > 0 else []
    if new:     # the layers from the first new ternary one on see other inputs now: re-estimate their BN
        first = model.get_submodule(new[0])
        recalibrate_batchnorm(model, data.train, cfg.bn_recalibrate, device, only=batchnorms_after(model, first))
    if world.is_main and cfg.method:
        log_line(format_report(ternary_report(model)))
    teacher = build_teacher(cfg, class_names, device) if cfg.distill else None
    kd = cfg.distill_config() if cfg.distill else None
    net = dist.wrap(model, world, device)
    opt = make_optimizer(cfg, model)
    base_lrs = [g["lr"] for g in opt.param_groups]
    if state is not None and "optimizer" in state:
        opt.load_state_dict(state["optimizer"])
        base_lrs = list(state.get("base_lrs", base_lrs))

    log = CsvLog(run_dir / "results.csv", LOG_FIELDS)
    step_log = CsvLog(run_dir / "steps.csv", ["epoch", "step", "loss"])  # every step: for loss curves
    if world.is_main:
        if state is None:
            write_args(run_dir, cfg.to_dict())
        else:
            log.truncate_after(start_epoch)  # CSV epochs count from 1: keep the finished ones
            step_log.truncate_after(start_epoch)

    steps_per_epoch = len(data.train)
    total_steps = steps_per_epoch * cfg.epochs
    last_minloss = -MINLOSS_EVERY
    last = {}
    timing = {"steps": 0, "seconds": 0.0, "teacher": 0.0}     # this process's run, for the transfer's cost
    # ------------------------------------------------------------------ the loop
    for epoch in range(start_epoch, cfg.epochs):
        data.set_epoch(epoch)
        net.train()
        t0, seen, loss_sum, correct, step_losses = time.time(), 0, 0.0, 0, []
        kd_sum, teacher_before = 0.0, teacher.seconds if teacher else 0.0
        bar = tqdm(data.train, desc=f"epoch {epoch + 1}/{cfg.epochs}", disable=not (cfg.progress and world.is_main),
                   unit="batch", dynamic_ncols=True, leave=False)
        for i, (x, y) in enumerate(bar):
            step = epoch * steps_per_epoch + i
            for g, base in zip(opt.param_groups, base_lrs):
                g["lr"] = base * lr_factor(cfg, step, total_steps)
            x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
            out = net(x)
            if teacher is not None:
                loss, parts = classifier_loss(out, teacher(x), y, kd)
                label_loss = parts["label"]
                kd_sum += float(parts["distill"]) * len(y)
            else:
                loss = label_loss = F.cross_entropy(out, y)
            if not torch.isfinite(loss):
                raise FloatingPointError(f"loss became {float(loss)} at epoch {epoch + 1}, step {i}; "
                                         "lower the learning rate")
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            # the logged loss is the label loss, with or without a teacher, so runs compare (and min-loss
            # chooses) on the same quantity
            value = float(label_loss.detach())
            seen += len(y)
            loss_sum += value * len(y)
            step_losses.append((step + 1, value))
            avg_loss = smooth.update(value)
            # the min-loss checkpoint the seeds' stages chain on, after a warm-up (darknet: after burn_in),
            # written at most every MINLOSS_EVERY steps
            if smooth.improved(world.is_main and step >= MINLOSS_AFTER * total_steps
                               and step - last_minloss >= MINLOSS_EVERY):
                last_minloss = step
                save_atomic(model_checkpoint(model, epoch=epoch, step=step + 1, avg_loss=avg_loss,
                                             class_names=class_names, config=cfg.to_dict()),
                            run_dir / "weights" / "minloss.pt")
            correct += topk_correct(out.detach(), y, ks=(1,))[0]
            bar.set_postfix(loss=f"{loss_sum / seen:.3f}", acc=f"{100 * correct / seen:.1f}%",
                            lr=f"{opt.param_groups[0]['lr']:.2g}")
        bar.close()
        train_time = time.time() - t0
        teacher_time = (teacher.seconds - teacher_before) if teacher else 0.0
        timing["steps"] += steps_per_epoch
        timing["seconds"] += train_time
        timing["teacher"] += teacher_time

        if cfg.bn_eval:
            # The running averages mix statistics of weights the last steps have left behind (ternary codes flip
            # until the end). CIFAR ResNet-20 (BENCHMARKS.md 9i): +0.14 top-1 for nine ternary and +0.13 for two
            # float 8-epoch runs, +0.04 for three ternary 20-epoch ones. Training uses batch statistics, and the
            # passes' augmentation draws are given back to the RNG, so this changes only what is evaluated and saved.
            with torch.random.fork_rng(devices=[]):
                recalibrate_batchnorm(model, data.train, cfg.bn_eval, device)
        dist.sync_buffers(model, world)
        metrics = evaluate(model, data.valid, device)
        # every process evaluated the same model on its own shard: combine the counts
        metrics = dist.average_metrics(metrics, world)
        if world.is_main:
            row = {"epoch": epoch + 1, "lr": f"{opt.param_groups[0]['lr']:.6g}",
                   "train_loss": f"{loss_sum / max(seen, 1):.5f}", "train_top1": f"{100 * correct / max(seen, 1):.3f}",
                   "valid_loss": f"{metrics['loss']:.5f}", "top1": f"{metrics['top1']:.3f}",
                   "top5": f"{metrics['top5']:.3f}", "epoch_time_s": f"{train_time:.1f}",
                   "images_per_s": f"{seen * world.size / max(train_time, 1e-9):.1f}",
                   "distill_loss": f"{kd_sum / max(seen, 1):.5f}" if teacher else "",
                   "teacher_s": f"{teacher_time:.1f}" if teacher else ""}
            log.append(row)
            step_log.extend([{"epoch": epoch + 1, "step": k, "loss": f"{v:.5f}"} for k, v in step_losses])
            is_best = metrics["top1"] > best_top1
            best_top1 = max(best_top1, metrics["top1"])
            ckpt = model_checkpoint(model, epoch=epoch, best_top1=best_top1, metrics=metrics, avg_loss=smooth.avg,
                                    min_avg_loss=smooth.min,
                                    class_names=class_names, config=cfg.to_dict(), optimizer=opt.state_dict(),
                                    base_lrs=base_lrs)
            save_atomic(ckpt, run_dir / "weights" / "last.pt")
            if is_best:
                save_atomic(ckpt, run_dir / "weights" / "best.pt")
            if is_cfg_name(cfg.model):       # and darknet's own files, which darknet runs as they are
                weights = model.net.encode_weights(seen=(epoch + 1) * steps_per_epoch * cfg.batch_size * world.size)
                for name in ("last",) + (("best",) if is_best else ()):
                    write_bytes_atomic(run_dir / "weights" / f"{name}.weights", weights)
            plot_curves(log.rows(), run_dir / "curves.png", f"{cfg.model} {cfg.method or 'float'}")
            log_line(f"epoch {epoch + 1}/{cfg.epochs}  train loss {loss_sum / max(seen, 1):.4f}  "
                       f"valid loss {metrics['loss']:.4f}  top-1 {metrics['top1']:.2f}%  top-5 {metrics['top5']:.2f}%  "
                       f"({row['images_per_s']} img/s)")
        last = metrics
        dist.barrier(world)

    if not last:  # resumed a finished run, or zero epochs: report the model as it is
        last = dist.average_metrics(evaluate(model, data.valid, device), world)
    cost = step_cost(timing)
    if world.is_main and teacher is not None and cost:
        log_line(f"knowledge transfer: teacher {cost['teacher_ms']:.1f} ms of {cost['step_ms']:.1f} ms a step, "
                 f"+{100 * cost['overhead']:.0f}% over the step without it")
    dist.teardown(world)
    return {"run_dir": str(run_dir), "top1": last["top1"], "top5": last["top5"], "loss": last["loss"],
            "best_top1": max(best_top1, last["top1"]), "epochs": cfg.epochs, "model": model, **cost}


def step_cost(timing: dict) -> dict:
    """{"step_ms", "teacher_ms", "overhead"}: mean training step of this run (data loading included), the part
    spent in the teacher's forward, and its cost relative to the step without it; {} if no step ran."""
    if not timing["steps"]:
        return {}
    step, teacher = 1000 * timing["seconds"] / timing["steps"], 1000 * timing["teacher"] / timing["steps"]
    return {"step_ms": step, "teacher_ms": teacher, "overhead": teacher / max(step - teacher, 1e-9)}

