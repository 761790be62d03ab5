"""Classifier training, readable top to bottom: settings → data → model → ternarize → optimiser → loop.

    cfg = ClassifierTrainConfig(data="../shared/data/cifar10/cifar10-jpeg.tar.gz", model="resnet20",
                                weights="../shared/data/pretrained/resnet_cifar10", method="twn", epochs=3)
    result = train_classifier(cfg)

Runs under torchrun too (one process per device, DistributedDataParallel); only rank 0 writes files.
"""
from __future__ import annotations

import dataclasses
import math
import random
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F
from tqdm import tqdm
from tritnet_rt.cliargs import nonnegative_float, nonnegative_int, positive_float, positive_int

from ..atomic import write_bytes_atomic
from ..eval import evaluate, topk_correct
from ..models import create_model, get_model_info, load_into, model_checkpoint, read_checkpoint, save_atomic
from ..models.darknet_classifier import is_cfg_name
from ..models.checkpoint import CheckpointError
from ..nn import format_report, ternarize, ternary_report
from . import distributed as dist
from .calibrate import recalibrate_batchnorm
from .runs import CsvLog, new_run_dir, plot_curves, write_args

MINLOSS_AFTER = 0.05    # fraction of the run before min-loss checkpoints start
MINLOSS_EVERY = 20      # steps between two min-loss checkpoints at most
LOG_FIELDS = ["epoch", "lr", "train_loss", "train_top1", "valid_loss", "top1", "top5", "epoch_time_s",
              "images_per_s"]


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
    bn_recalibrate: int = 20                # batches to re-estimate BN statistics after ternarizing weights
    epochs: int = 10
    batch_size: int = 128
    optimizer: str = "sgd"                  # sgd | adam
    lr: float | None = None                 # default: 0.1 from scratch, 0.01 fine-tuning from weights (sgd)
    momentum: float = 0.9
    weight_decay: float = 1e-4
    schedule: str = "cosine"                # cosine | multistep | constant
    milestones: tuple[float, ...] = (0.5, 0.75)  # multistep: fractions of the run (or epochs if > 1)
    gamma: float = 0.1
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

    def __post_init__(self):
        # The command line's own rules (tritnet_rt.cliargs), so a config built in Python or by a stage's --set
        # fails here naming the field, not as NaN checkpoints or a run folder holding only args.yaml.
        rules = {"epochs": positive_int, "batch_size": positive_int, "lr": positive_float,
                 "momentum": nonnegative_float, "weight_decay": nonnegative_float, "gamma": positive_float,
                 "threshold": positive_float, "t_ex": positive_int, "bn_recalibrate": nonnegative_int,
                 "train_per_class": positive_int, "valid_per_class": positive_int, "workers": nonnegative_int}
        values = [(name, getattr(self, name), rule) for name, rule in rules.items()]
        values += [("milestones", m, positive_float) for m in self.milestones]
        for name, value, rule in values:
            if value is not None:
                try:
                    rule(value)
                except ValueError as e:
                    raise ValueError(f"{name}: {e}") from None

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


def _quant_options(cfg: ClassifierTrainConfig) -> dict:
    opts = {}
    if cfg.method in ("twn", "ttn"):
        opts["per_channel"] = cfg.per_channel
        if cfg.threshold is not None:
            opts["threshold"] = cfg.threshold
    if cfg.method == "ttn":
        opts["t_ex"] = cfg.t_ex
    return opts


def build_model(cfg: ClassifierTrainConfig, num_classes: int) -> nn.Module:
    if is_cfg_name(cfg.model):
        # a darknet cfg: its ternary=1 layers (or --layers all / indices) are ternary with cfg.method
        opts = _quant_options(cfg) if cfg.method else {}
        return create_model(cfg.model, pretrained=cfg.weights, num_classes=num_classes, method=cfg.method,
                            layers=cfg.layers or "cfg", **opts)
    model = create_model(cfg.model, num_classes=num_classes)
    if cfg.weights:
        path = Path(cfg.weights)
        if path.is_dir():
            from ..models import load_pretrained
            load_pretrained(model, path, model.model_info)
        else:
            load_into(model, path)
    if cfg.method:
        ternarize(model, cfg.method, cfg.layers or "all", **_quant_options(cfg))
    return model


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
    if cfg.schedule == "cosine":
        return 0.5 * (1 + math.cos(math.pi * frac))
    if cfg.schedule == "multistep":
        marks = [m / cfg.epochs if m > 1 else m for m in cfg.milestones]
        return cfg.gamma ** sum(frac >= m for m in marks)
    if cfg.schedule == "constant":
        return 1.0
    raise ValueError(f"unknown schedule {cfg.schedule!r}; choose cosine, multistep or constant")


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
    avg_loss, min_avg = -1.0, 1e10      # darknet's smoothed loss (.9·avg + .1·loss) and its minimum so far
    if cfg.resume:
        run_dir, ckpt_path = _resolve_resume(cfg.resume)
        state = read_checkpoint(ckpt_path)
        saved = dict(state.get("config", {}))
        saved.pop("resume", None)
        cfg = ClassifierTrainConfig(**{**saved, "resume": cfg.resume, "progress": cfg.progress,
                                       "workers": cfg.workers, "device": cfg.device})
        start_epoch, best_top1 = int(state["epoch"]) + 1, float(state.get("best_top1", -1.0))
        avg_loss, min_avg = float(state.get("avg_loss", -1.0)), float(state.get("min_avg_loss", 1e10))
        if (run_dir / "weights" / "minloss.pt").is_file():   # written between two epoch checkpoints
            min_avg = min(min_avg, float(read_checkpoint(run_dir / "weights" / "minloss.pt").get("avg_loss", 1e10)))
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
    if state is None and cfg.method and cfg.weights and cfg.bn_recalibrate > 0:
        recalibrate_batchnorm(model, data.train, cfg.bn_recalibrate, device)
    if world.is_main and cfg.method:
        log_line(format_report(ternary_report(model)))
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
    # ------------------------------------------------------------------ the loop
    for epoch in range(start_epoch, cfg.epochs):
        data.set_epoch(epoch)
        net.train()
        t0, seen, loss_sum, correct, step_losses = time.time(), 0, 0.0, 0, []
        bar = tqdm(data.train, desc=f"epoch {epoch + 1}/{cfg.epochs}", disable=not (cfg.progress and world.is_main),
                   unit="batch", dynamic_ncols=True, leave=False)
        for i, (x, y) in enumerate(bar):
            step = epoch * steps_per_epoch + i
            for g, base in zip(opt.param_groups, base_lrs):
                g["lr"] = base * lr_factor(cfg, step, total_steps)
            x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
            out = net(x)
            loss = F.cross_entropy(out, y)
            if not torch.isfinite(loss):
                raise FloatingPointError(f"loss became {float(loss)} at epoch {epoch + 1}, step {i}; "
                                         "lower the learning rate")
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            seen += len(y)
            loss_sum += float(loss.detach()) * len(y)
            step_losses.append((step + 1, float(loss.detach())))
            avg_loss = float(loss.detach()) if avg_loss < 0 else 0.9 * avg_loss + 0.1 * float(loss.detach())
            # the min-loss checkpoint the seeds' stages chain on, after a warm-up (darknet: after burn_in),
            # written at most every MINLOSS_EVERY steps
            if (world.is_main and step >= MINLOSS_AFTER * total_steps and avg_loss < min_avg
                    and step - last_minloss >= MINLOSS_EVERY):
                min_avg, last_minloss = avg_loss, step
                save_atomic(model_checkpoint(model, epoch=epoch, step=step + 1, avg_loss=avg_loss,
                                             class_names=class_names, config=cfg.to_dict()),
                            run_dir / "weights" / "minloss.pt")
            correct += topk_correct(out.detach(), y, ks=(1,))[0]
            bar.set_postfix(loss=f"{loss_sum / seen:.3f}", acc=f"{100 * correct / seen:.1f}%",
                            lr=f"{opt.param_groups[0]['lr']:.2g}")
        bar.close()
        train_time = time.time() - t0

        dist.sync_buffers(model, world)
        metrics = evaluate(model, data.valid, device)
        # every process evaluated the same model on its own shard: combine the counts
        metrics = dist.average_metrics(metrics, world)
        if world.is_main:
            row = {"epoch": epoch + 1, "lr": f"{opt.param_groups[0]['lr']:.6g}",
                   "train_loss": f"{loss_sum / max(seen, 1):.5f}", "train_top1": f"{100 * correct / max(seen, 1):.3f}",
                   "valid_loss": f"{metrics['loss']:.5f}", "top1": f"{metrics['top1']:.3f}",
                   "top5": f"{metrics['top5']:.3f}", "epoch_time_s": f"{train_time:.1f}",
                   "images_per_s": f"{seen * world.size / max(train_time, 1e-9):.1f}"}
            log.append(row)
            step_log.extend([{"epoch": epoch + 1, "step": k, "loss": f"{v:.5f}"} for k, v in step_losses])
            is_best = metrics["top1"] > best_top1
            best_top1 = max(best_top1, metrics["top1"])
            ckpt = model_checkpoint(model, epoch=epoch, best_top1=best_top1, metrics=metrics, avg_loss=avg_loss,
                                    min_avg_loss=min_avg,
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
    dist.teardown(world)
    return {"run_dir": str(run_dir), "top1": last["top1"], "top5": last["top5"], "loss": last["loss"],
            "best_top1": max(best_top1, last["top1"]), "epochs": cfg.epochs, "model": model}


def load_classifier(path: str | Path, device: str = "cpu") -> tuple[nn.Module, dict]:
    """A trained classifier from a tritnet checkpoint (architecture, ternary layers and class names included)."""
    state = read_checkpoint(path)
    if state.get("format") != "tritnet-checkpoint":
        raise CheckpointError(f"{path}: not a tritnet checkpoint (no architecture recorded); "
                              "pass --model and the weights instead")
    names = state.get("class_names") or []
    if "darknet_cfg" in state:     # built float from its cfg text; the checkpoint's ternary map swaps the layers
        from ..models.darknet_classifier import DarknetClassifier
        model = DarknetClassifier(state["arch"].split(":", 1)[-1], None, cfg_text=state["darknet_cfg"],
                                  num_classes=len(names) or None)
    else:
        model = create_model(state["arch"], num_classes=len(names) or None)
    load_into(model, path, state)
    return model.to(device).eval(), state

