"""``detector train``: darknet's ``train_detector``, readable top to bottom.

    cfg = DetectorTrainConfig(data="bccd.data", cfg="ttt5_bccd.cfg", weights="ttt5_pre_141_conv7.weights")
    result = train_detector(cfg)

The cfg is the model and the schedule: [net] batch (images per update), subdivisions (how many pieces
it is split into), learning_rate/policy/burn_in/max_batches, momentum, decay, augmentation; the last
head's jitter and random. One iteration = ``batch`` images = one SGD step; ``seen`` counts images and the
iteration is seen / batch, as in darknet, so a .weights file's header resumes the schedule.

Runs under torchrun (or ``--gpus 0,1``) with one process per device: each draws its own ``batch`` images,
gradients are averaged and the rate multiplied by the process count (darknet's ``-gpus``).

``distill`` adds knowledge transfer from a frozen float teacher (``tritnet.train.distill``: head outputs
weighted by the teacher's objectness, feature mimicking); the log's ``teacher_seconds`` is its share of each
iteration. ``bn_recalibrate`` re-estimates batch-norm statistics after loading the start (the stage runner's
boundary step; darknet itself never does). A network with ternary layers also gets every BN statistic
re-estimated at its final weights before each mAP evaluation and before ``_final.weights`` (``bn_eval``):
darknet's rolling averages lag the weight flips. A float network keeps darknet's rolling averages.
"""
from __future__ import annotations

import dataclasses
import json
import math
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar, Optional

import torch
from tqdm import tqdm
from tritnet_rt.cliargs import fraction, nonnegative_float, nonnegative_int, positive_int

from ..atomic import write_text_atomic
from ..darknet import parse_cfg
from ..darknet.network import DarknetNet
from ..quant import method_name, ternarizer_options
from ..train import distributed as dist
from ..train.calibrate import batchnorms_after, recalibrate_batchnorm
from ..train.distill import DetectorDistiller, DistillConfig, parse_layers
from ..train.fields import check_fields
from ..train.runs import CsvLog, MinLoss, new_run_dir, write_args
from .chart import plot_chart
from .data import open_data
from .evaluate import run_detector, score_map
from .labels import Issues
from .loader import ImageStore, TrainSampler, TrainSet, train_loader
from .loss import DetectionLoss, HeadInputs
from .saving import darknet_init_, load_state, periodic_save, save_state, save_weights_atomic
from .schedule import learning_rate, make_optimizer, set_rate
from .setup import augmentation, check_heads, multiscale_mode, starting_point

__all__ = ["DetectorTrainConfig", "train_detector", "LOG_FIELDS"]

LOG_FIELDS = ["iteration", "seen", "epoch", "loss", "avg_loss", "lr", "seconds", "images_per_s", "width", "height",
              "avg_iou", "class", "obj", "no_obj", "recall", "count", "map", "map_auc", "saved", "distill_head",
              "distill_feature", "teacher_seconds"]


BN_EVAL_STREAM = 104729      # bn_eval's images: the sampler seed is the run's seed plus this


@dataclass
class DetectorTrainConfig:
    data: str                              # darknet .data file
    cfg: str                               # darknet .cfg (ternary=1 layers train ternary)
    weights: Optional[str] = None          # initial .weights (a prefix is fine) or a .ckpt
    clear: bool = False                    # start the schedule at 0 whatever the weights' header says
    map: bool = False                      # evaluate mAP@0.5 on the valid set during training
    map_every: Optional[int] = None        # iterations between evaluations (default: 4 epochs)
    thresh: float = 0.25                   # confidence threshold for the TP/FP/IoU counts of --map
    method: Optional[str] = "twn"          # ternarizer of ternary=1 layers (twn | ttn | sttn; None: train float)
    per_channel: bool = False              # twn/ttn: one scale per output channel instead of per layer
    backup: Optional[str] = None           # overrides the .data file's backup folder
    workers: int = 2
    cache_mb: float = 4096                 # decode all images into memory if they fit in this
    multiscale: str = "auto"               # auto | darknet | sdl | off (with random=1 in the last head)
    save_every: Optional[int] = None       # <base>_<i>.weights every N iterations (default darknetTWN's)
    minloss_epochs: bool = False           # also keep <base>_<epoch>.minloss.weights (darknetTWN)
    bn_recalibrate: int = 0                # sub-batches re-estimating BN statistics from the first ternary
                                           # layer on, after loading the start (0: darknet's way, none)
    bn_eval: int = 200                     # networks with ternary layers: sub-batches re-estimating every BN
                                           # statistic before each mAP evaluation and the final save (0: off)
    distill: bool = False                  # knowledge transfer from a frozen float teacher
    teacher: Optional[str] = None          # its .weights or .ckpt (default: weights, the start)
    teacher_cfg: Optional[str] = None      # its cfg (default: this cfg with every layer float)
    distill_head: Optional[float] = None   # weight of the head-output loss (DistillConfig's when None)
    distill_feature: Optional[float] = None  # weight of the feature-mimic loss (DistillConfig's, 0, when None)
    distill_layers: Optional[str] = None   # mimicked layers, e.g. "7,9" (default: each head's feature map)
    resume: bool = False                   # continue from <backup>/<base>.ckpt
    project: str = "runs/detect"           # run folders: project/name, name2, ... (never an earlier run's)
    name: str = "train"
    exist_ok: bool = False                 # write into project/name as it is; overwrite finished backup weights
    plots: bool = True                     # at the end: per-class table, confusion matrix, PR and F1 curves
    seed: int = 0
    device: str = "auto"
    progress: bool = True

    # the command line (``tritnet detector train``, generated from these fields) and __post_init__ check these
    RULES: ClassVar[dict] = {
        "map_every": positive_int, "thresh": fraction, "workers": nonnegative_int, "cache_mb": nonnegative_float,
        "save_every": positive_int, "bn_recalibrate": nonnegative_int, "bn_eval": nonnegative_int,
        "distill_head": nonnegative_float,
        "distill_feature": nonnegative_float}
    CHOICES: ClassVar[dict] = {"method": ("twn", "ttn", "sttn", "float"),
                               "multiscale": ("auto", "darknet", "sdl", "off")}
    ALIASES: ClassVar[dict] = {"clear": "-clear", "map": "-map", "thresh": "-thresh"}
    HELP: ClassVar[dict] = {
        "data": ".data file (classes, train, valid, names, backup)",
        "cfg": "darknet .cfg (its ternary=1 layers train ternary)",
        "weights": "initial .weights (a prefix such as a backbone is fine) or a .ckpt to continue from",
        "clear": "restart the iteration count (seen = 0)",
        "map": "measure mAP@0.5 on the valid set during training; keep <base>_best.weights",
        "map_every": "iterations between mAP measurements (default 4 epochs)",
        "thresh": "confidence threshold of the --map counts",
        "method": "ternarizer for ternary=1 layers (float: train every layer float)",
        "per_channel": "twn/ttn: one scale per output channel",
        "backup": "output folder (default: the .data file's backup=)",
        "workers": "data loading processes (default 2)",
        "cache_mb": "decode all images into memory up to this size",
        "multiscale": "with random=1: darknet's 320..608 squares, darknet_sdl's ttt5 sizes, or off",
        "save_every": "write <base>_<i>.weights every N iterations",
        "minloss_epochs": "also keep <base>_<epoch>.minloss.weights",
        "bn_recalibrate": "sub-batches re-estimating BN statistics from the first ternary layer on (default 0)",
        "bn_eval": "with ternary layers: sub-batches re-estimating every BN statistic before each mAP evaluation "
                   "and the final save (default 200; 0: darknet's rolling averages)",
        "distill": "knowledge transfer from a frozen float teacher",
        "teacher": "the teacher's .weights or .ckpt (default: the initial weights)",
        "teacher_cfg": "the teacher's cfg (default: CFG, every layer float)",
        "distill_head": "weight of the head-output loss (default 1)",
        "distill_feature": "weight of the feature-mimic loss (default 0: off)",
        "distill_layers": "mimicked layers, e.g. 7,9 (default: the input of each head's last conv)",
        "resume": "continue from <backup>/<cfg>.ckpt after a kill",
        "project": "run folders go here (default runs/detect)",
        "name": "run folder name: train, train2, ... (never an earlier run's)",
        "exist_ok": "use --project/--name as it is and overwrite finished weights in the backup folder",
        "plots": "no per-class table, confusion matrix, PR and F1 curves at the end",
    }

    def __post_init__(self):
        self.method = method_name(self.method)
        check_fields(self)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def distill_config(self) -> DistillConfig:
        given = {"head": self.distill_head, "feature": self.distill_feature,
                 "layers": parse_layers(self.distill_layers)}
        return DistillConfig(**{k: v for k, v in given.items() if v is not None})


def load_teacher(c: DetectorTrainConfig, device) -> DarknetNet:
    """The float teacher: ``teacher`` (default: the start weights) in ``teacher_cfg`` (default: the run's cfg,
    every layer float). It must be a whole trained detector, not a backbone prefix."""
    source = c.teacher or c.weights
    if not source:
        raise ValueError("distill: knowledge transfer needs a teacher: pass --teacher (a trained detector's "
                         ".weights) or the starting weights it defaults to")
    net = DarknetNet(c.teacher_cfg or c.cfg, None)
    if str(source).endswith(".ckpt"):
        try:
            net.load_state_dict(load_state(source)["model"])
        except RuntimeError as e:
            raise ValueError(f"{source}: not a float checkpoint of {net.cfg.path} ({str(e).splitlines()[0]})") \
                from None
    else:
        w = net.load_weights(source, prefix=True)
        if not w.complete:
            raise ValueError(f"{source}: holds layers 0-{w.end_layer - 1} of {len(net.layers)}: a teacher must be a "
                             "whole trained detector (pass --teacher)")
    return net.to(device)


def _mean_over_processes(value: float, world, device) -> float:
    """darknet's multi-GPU loss: the mean of the processes' losses."""
    if world.size <= 1:
        return value
    t = torch.tensor([value], dtype=torch.float64, device=device)
    torch.distributed.all_reduce(t)
    return float(t[0]) / world.size


def _fmt(v, spec=".6g"):
    return "" if v is None else format(v, spec)


def train_detector(c: DetectorTrainConfig) -> dict:
    # ------------------------------------------------------------------ processes, data, network
    world = dist.setup()
    device = dist.pick_device(c.device)
    torch.manual_seed(c.seed + world.rank)
    data = open_data(c.data)
    cfg = parse_cfg(c.cfg)
    netp = cfg.net.param
    if netp("adam"):
        raise ValueError(f"{cfg.net.where('adam')}: adam=1 is not supported; tritnet trains with darknet's SGD")
    batch, subdivisions, max_batches = netp("batch"), netp("subdivisions"), netp("max_batches")
    if batch % subdivisions:
        raise ValueError(f"{cfg.net.where('subdivisions')}: batch={batch} is not a multiple of "
                         f"subdivisions={subdivisions}")
    if max_batches < 1:
        raise ValueError(f"{cfg.net.where('max_batches')}: max_batches must be set (> 0) for training")
    net = DarknetNet(cfg, c.method, **ternarizer_options(c.method, per_channel=c.per_channel))
    check_heads(net, data)
    darknet_init_(net, c.seed)
    base = Path(c.cfg).stem
    n_ternary = sum(1 for i in net.infos if i.ternary)
    title = f"{base} ({n_ternary} ternary layers, {c.method})" if n_ternary and c.method else base
    backup = Path(c.backup) if c.backup else data.backup
    backup.mkdir(parents=True, exist_ok=True)
    finished = backup / f"{base}_final.weights"
    if finished.is_file() and not (c.resume or c.clear or c.exist_ok):
        raise ValueError(f"{finished}: an earlier run's finished weights, which this run would overwrite (with "
                         f"{base}_last.weights, .minloss.weights, ...): pass --resume to continue that run, --clear "
                         f"to train again from the start, --exist-ok to overwrite, or another --backup folder")
    start = starting_point(net, c.weights, c.clear, c.resume, backup / f"{base}.ckpt")
    net.to(device).train()
    optimizer = make_optimizer(net)
    st = start.state or {}
    # a checkpoint given as --weights (a stage going on with the previous stage's schedule) brings its seen and
    # optimizer; only --resume continues its run too (log, run folder, min-loss and best-mAP records)
    own = st if c.resume else {}
    seen = start.seen
    iteration = seen // batch
    if not c.resume and iteration >= max_batches:
        # darknet would run no iteration and save the start, untrained, as _final.weights (a resumed checkpoint at
        # max_batches is different: it finishes a run that was killed before its final save)
        raise ValueError(f"{start.source}: header field seen = {seen} is iteration {iteration} at batch={batch}, "
                         f"not below max_batches={max_batches} ({cfg.net.where('max_batches')}): nothing to train; "
                         f"restart the schedule with --clear or raise max_batches")
    smooth = MinLoss(own.get("avg_loss", -1.0), own.get("min_avg_loss", 1e10))
    avg_loss = smooth.avg
    note = backup / f"{base}.minloss.json"          # the loss the min-loss weights were saved at (see save_all)
    if c.resume and note.is_file():
        smooth.min = min(smooth.min, float(json.loads(note.read_text())["avg_loss"]))
    best_map = float(own.get("best_map", -1.0))

    issues = Issues()
    train_records = [r.trainable() for r in data.records("train", issues)]
    store = ImageStore([r.image for r in train_records], c.cache_mb, c.workers, issues)
    valid_records = data.records("valid", issues) if c.map and world.is_main else None
    valid_store = ImageStore([r.image for r in valid_records], c.cache_mb, c.workers, issues) if valid_records else None
    n_images = len(train_records)
    if len(store.bad) == n_images:
        raise ValueError(f"{data.source('train')}: none of the {n_images} training images can be decoded")
    mode, stride = multiscale_mode(net, c.multiscale)
    loss_fn = DetectionLoss(net)
    train_set = TrainSet(train_records, store, augmentation(net), loss_fn.max_boxes)
    sampler = TrainSampler(n_images, batch, subdivisions, iteration, max_batches, c.seed, net.width, net.height, mode,
                           stride, world.rank, world.size, exclude=store.bad)
    loader = train_loader(train_set, sampler, c.workers)
    ternary = [i for i in net.infos if i.ternary and c.method]
    if not c.resume and c.weights and c.bn_recalibrate > 0 and ternary:
        # the layers from the first ternary one on see other inputs than the weights were trained with: their
        # BN statistics are re-estimated on augmented training images at the network size, drawn apart from
        # the training stream (its own seed), so training sees the same images with or without this step
        bn_sampler = TrainSampler(n_images, batch, subdivisions, 0, -(-c.bn_recalibrate // subdivisions),
                                  c.seed + 7919, net.width, net.height, "off", stride, world.rank, exclude=store.bad)
        first = net.layers[ternary[0].index]
        recalibrate_batchnorm(net, train_loader(train_set, bn_sampler, c.workers), c.bn_recalibrate, device,
                              only=batchnorms_after(net, first))

    def reestimate_bn():
        """Every BN statistic as its plain average over ``bn_eval`` sub-batches at the current weights: darknet's
        rolling averages (momentum 0.01) lag the weight flips of ternary layers (BENCHMARKS.md 10e: +1.7 to +6.0
        mAP on four all-ternary BCCD runs). The images are drawn as training draws them, sizes included, from a
        stream of their own, and the RNG is given back: training is unchanged."""
        sub = batch // subdivisions
        sampler = TrainSampler(n_images, sub, 1, 0, c.bn_eval, c.seed + BN_EVAL_STREAM, net.width, net.height, mode,
                               stride, exclude=store.bad)
        with torch.random.fork_rng(devices=[]):
            recalibrate_batchnorm(net, train_loader(train_set, sampler, c.workers), c.bn_eval, device)

    reestimate = reestimate_bn if ternary and c.bn_eval > 0 else (lambda: None)
    distiller = DetectorDistiller(net, load_teacher(c, device), c.distill_config()) if c.distill else None
    if distiller is not None:
        distiller.train_adapters(optimizer, st, cfg.net.param("decay"), device)
    if "optimizer" in st:                          # after the adapters' group, which a checkpoint also holds
        optimizer.load_state_dict(st["optimizer"])
    model = dist.wrap(HeadInputs(net) if distiller is None else distiller.student_outputs(net), world, device)
    map_every = c.map_every or max(1, round(4 * n_images / batch))
    run_dir = log = None
    if world.is_main:
        run_dir, log = _open_run(c, own or None, backup, base, iteration)
        how = f"trained ternary with {c.method}" if c.method else "trained as float"
        tqdm.write(f"{c.cfg}: {len(net.infos)} layers ({n_ternary} with ternary=1, {how}); start: {start.source} "
                   f"({start.loaded_layers} layers), seen {seen}, iteration {iteration}/{max_batches}\n"
                   f"{c.data}: {n_images} training images ({len(issues)} entries skipped), batch {batch} = "
                   f"{subdivisions} x {batch // subdivisions}, multi-scale {mode}, backup {backup}, run folder {run_dir}")

    minloss_note = None

    def save_all(names):
        for name in names:
            save_weights_atomic(net, backup / name, seen)
        if minloss_note and f"{base}.minloss.weights" in names:
            # the checkpoint is written every 100 iterations, the min-loss weights whenever the loss falls: the
            # note beside them lets a resumed run know the loss they were saved at, so it never overwrites them
            # with worse weights
            write_text_atomic(backup / f"{base}.minloss.json", json.dumps(minloss_note))

    def checkpoint():
        save_state(backup / f"{base}.ckpt", net, optimizer, seen=seen, avg_loss=smooth.avg, min_avg_loss=smooth.min,
                   best_map=best_map, config=c.to_dict(), run_dir=str(run_dir),
                   **(distiller.state() if distiller else {}))

    # ------------------------------------------------------------------ the loop
    bar = tqdm(total=max_batches, initial=iteration, unit="it", dynamic_ncols=True,
               disable=not (c.progress and world.is_main))
    timing = {"iterations": 0, "seconds": 0.0, "teacher": 0.0}     # this process's iterations of this run
    batches = iter(loader)
    last_ckpt = last_chart = time.time()
    result_map = final_dets = None
    sigterm = _StopOnSigterm()
    try:
        while iteration < max_batches:
            sigterm.check()
            t0 = time.time()
            cost, images, head_stats = 0.0, 0, []
            kt_parts, teacher_before = {"head": 0.0, "feature": 0.0}, distiller.seconds if distiller else 0.0
            for s in range(subdivisions):
                x, truth, skipped = next(batches)
                for path, problem in skipped:
                    issues.report(path, problem)
                x = x.to(device, non_blocking=True)
                out = model(x)
                pairs, feats = out if distiller is not None else (out, None)
                # darknet adds the sub-batch to seen before its forward (the region's prior phase reads it)
                surrogate, sub_cost, stats = loss_fn(pairs, truth, seen + (s + 1) * len(x), x.shape[3], x.shape[2],
                                                     batch)
                if distiller is not None:
                    kt, parts = distiller.loss(x, pairs, feats, batch)
                    surrogate = surrogate + kt
                    kt_parts = {k: kt_parts[k] + v for k, v in parts.items()}
                surrogate.backward()
                cost, images, head_stats = cost + sub_cost, images + len(x), head_stats + stats
            seen += batch * world.size
            iteration = seen // batch
            if not math.isfinite(cost):           # darknet: assert(!isnan(avg_loss)); stop before the update
                raise FloatingPointError(f"loss became {cost / images} at iteration {iteration}; lower "
                                         f"learning_rate in {c.cfg}")
            rate = learning_rate(cfg.net, iteration) * world.size
            set_rate(optimizer, rate)
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            loss = _mean_over_processes(cost / images, world, device)
            avg_loss = smooth.update(loss)
            seconds = time.time() - t0
            teacher_seconds = distiller.seconds - teacher_before if distiller else None
            timing["iterations"] += 1
            timing["seconds"] += seconds
            timing["teacher"] += teacher_seconds or 0.0
            if not world.is_main:
                continue
            # ---------------------------------------------------------- log, save, evaluate (rank 0)
            saved = []
            epoch = seen // max(n_images, 1)
            if smooth.improved(iteration > netp("burn_in")):
                saved.append(f"{base}.minloss.weights")
                minloss_note = {"avg_loss": avg_loss, "iteration": iteration}
                if c.minloss_epochs:
                    saved.append(f"{base}_{epoch}.minloss.weights")
            hundred = iteration // 100 != (iteration - world.size) // 100     # passed a multiple of 100
            if hundred:
                saved.append(f"{base}_last.weights")
            if periodic_save(iteration, c.save_every):
                saved.append(f"{base}_{iteration}.weights")
            map_result = None
            if valid_records and (iteration % map_every == 0 or iteration >= max_batches):
                reestimate()
                dets = run_detector(net, valid_records, store=valid_store, workers=c.workers, issues=issues)
                map_result = score_map(dets, valid_records, data.names, 0.5, c.thresh)
                final_dets = dets if iteration >= max_batches else None
                result_map = map_result
                if map_result.map11 > best_map:
                    best_map = map_result.map11
                    saved.append(f"{base}_best.weights")
                tqdm.write(f"{iteration}: mAP@0.5 {100 * map_result.map11:.2f}% (VOC2007), {100 * map_result.map:.2f}% "
                           f"(AUC), best {100 * best_map:.2f}%")
            save_all(saved)
            # darknet's per-layer print, averaged over heads and sub-batches; count = truths assigned in all
            stat = {k: sum(h[k] for h in head_stats) / len(head_stats) for k in ("avg_iou", "class", "obj", "no_obj",
                                                                              "recall")}
            stat["count"] = sum(h["count"] for h in head_stats)
            log.append({"iteration": iteration, "seen": seen, "epoch": f"{seen / max(n_images, 1):.3f}",
                        "loss": _fmt(loss), "avg_loss": _fmt(avg_loss), "lr": _fmt(rate), "seconds": f"{seconds:.3f}",
                        "images_per_s": f"{images * world.size / seconds:.2f}", "width": x.shape[3],
                        "height": x.shape[2], **{k: _fmt(v, ".4f") for k, v in stat.items() if k != "count"},
                        "count": stat["count"],
                        "map": _fmt(100 * map_result.map11 if map_result else None, ".2f"),    # percent
                        "map_auc": _fmt(100 * map_result.map if map_result else None, ".2f"), "saved": " ".join(saved),
                        **({"distill_head": _fmt(kt_parts["head"]), "distill_feature": _fmt(kt_parts["feature"]),
                            "teacher_seconds": f"{teacher_seconds:.3f}"} if distiller else {})})
            bar.update(iteration - bar.n)
            bar.set_postfix_str(f"loss {loss:.3f} avg {avg_loss:.3f} lr {rate:.2g} "
                                f"{images * world.size / seconds:.1f} img/s {x.shape[3]}x{x.shape[2]}")
            if not c.progress:
                print(f"{iteration}: {loss:f}, {avg_loss:f} avg, {rate:f} rate, {seconds:f} seconds, {seen} images",
                      flush=True)
            if hundred or time.time() - last_ckpt > 600 or map_result is not None:
                checkpoint()
                last_ckpt = time.time()
            if hundred or map_result is not None or time.time() - last_chart > 60:
                plot_chart(log.rows(), run_dir / "chart.png", title, max_batches)
                last_chart = time.time()
    except KeyboardInterrupt:
        if world.is_main:
            checkpoint()
            tqdm.write(f"interrupted at iteration {iteration}: state saved to {backup / (base + '.ckpt')}; "
                       f"continue with --resume")
        raise
    finally:
        bar.close()
        sigterm.restore()
    # ------------------------------------------------------------------ the end
    result = {"iterations": iteration, "seen": seen, "avg_loss": smooth.avg, "min_avg_loss": smooth.min,
              "backup": str(backup), "final": str(backup / f"{base}_final.weights"), "skipped": len(issues),
              "run_dir": str(run_dir) if run_dir else None, "log": str(log.path) if log else None}
    if timing["iterations"]:
        # the transfer's cost: iteration time with the teacher, and without (its forward and loss taken out)
        step, teach = timing["seconds"] / timing["iterations"], timing["teacher"] / timing["iterations"]
        result.update(iteration_seconds=step)
        if distiller is not None:
            result.update(teacher_seconds=teach, transfer_overhead=teach / max(step - teach, 1e-9))
            if world.is_main:
                tqdm.write(f"knowledge transfer: teacher {1000 * teach:.0f} ms of {1000 * step:.0f} ms an iteration, "
                           f"+{100 * teach / max(step - teach, 1e-9):.0f}% over the iteration without it")
    if world.is_main:
        if final_dets is None:          # no evaluation at the last iteration, which re-estimated them already
            reestimate()
        save_all([f"{base}_final.weights"])
        checkpoint()
        plot_chart(log.rows(), run_dir / "chart.png", title, max_batches)
        if result_map is not None:
            result.update(map=result_map.map11, map_auc=result_map.map, best_map=best_map)
        if c.plots:
            result.update(_final_report(c, net, data, run_dir, final_dets, valid_records, valid_store, issues))
    dist.barrier(world)
    dist.teardown(world)
    return result


def _open_run(c: DetectorTrainConfig, state: Optional[dict], backup: Path, base: str, iteration: int):
    """(run folder, its results.csv log): a resumed run's own folder (recorded in its checkpoint), else a new
    numbered one (``project/name``, ``name2``, ...; ``exist_ok``: as it is). A checkpoint of an older tritnet,
    which logged into ``<backup>/<base>_log.csv``, continues in a new folder with that log's rows."""
    prev = Path(state["run_dir"]) if state and state.get("run_dir") else None
    run_dir = prev if prev is not None and prev.is_dir() else new_run_dir(c.project, c.name, c.exist_ok)
    log = CsvLog(run_dir / "results.csv", LOG_FIELDS)
    legacy = backup / f"{base}_log.csv"
    if state is None:
        log.truncate_after(-1, "iteration")                   # a new run: an empty log (exist_ok: not appended)
        write_args(run_dir, {**c.to_dict(), "backup_folder": str(backup)})
    elif not log.path.is_file() and legacy.is_file():
        old = CsvLog(legacy, LOG_FIELDS).rows()
        for r in old:                                         # the old log's mAP was a fraction
            for k in ("map", "map_auc"):
                if r.get(k):
                    r[k] = f"{100 * float(r[k]):.2f}"
        log.truncate_after(-1, "iteration")
        log.extend(old)
    if state is not None:
        log.truncate_after(iteration, "iteration")
        if not (run_dir / "args.yaml").is_file():
            write_args(run_dir, {**c.to_dict(), "backup_folder": str(backup)})
    return run_dir, log


def _final_report(c: DetectorTrainConfig, net, data, run_dir: Path, dets, records, store, issues) -> dict:
    """The end of training: the valid set's per-class table (printed, and classes.csv in percent) and the
    confusion matrix, PR and F1 curves as PNG in the run folder. Reuses the last --map evaluation when it was
    of the final weights."""
    from ..eval.perclass import format_table, save_plots
    from .evaluate import score_classes
    try:
        if records is None:
            records = data.records("valid", issues)
    except (ValueError, FileNotFoundError) as e:
        tqdm.write(f"no per-class table or plots: {e}")
        return {}
    if not records:
        tqdm.write("no per-class table or plots: the valid set is empty")
        return {}
    if dets is None:
        dets = run_detector(net, records, store=store, workers=c.workers, issues=issues)
    result = score_map(dets, records, data.names, 0.5, c.thresh)
    scores = score_classes(dets, records, data.names, result, c.thresh)
    tqdm.write(f"valid set ({data.source('valid')}), mAP@0.5 {100 * result.map:.2f}% (AUC), "
               f"{100 * result.map11:.2f}% (VOC2007):\n{format_table(scores.table)}")
    write_table_csv(run_dir / "classes.csv", scores.table)
    plots = save_plots(run_dir, scores.ranked, scores.matrix, data.names, c.thresh, 0.5)
    return {"classes": [r.to_dict() for r in scores.table], "plots": plots}


def write_table_csv(path: Path, rows: list) -> Path:
    """The per-class table as CSV, scores in percent."""
    import csv
    import io
    buf = io.StringIO()
    w = csv.DictWriter(buf, ["name", "images", "instances", "precision", "recall", "ap50", "ap50_95"])
    w.writeheader()
    for r in rows:
        d = r.to_dict(percent=True)
        w.writerow({k: (f"{v:.2f}" if isinstance(v, float) else v) for k, v in d.items()})
    return write_text_atomic(path, buf.getvalue())


class _StopOnSigterm:
    """``kill`` (SIGTERM) stops training like Ctrl-C: the state is saved and ``--resume`` continues. The stop
    waits for the iteration in flight to be logged (``check`` raises KeyboardInterrupt there): an interrupt
    between the update of ``seen`` and the log row would save a state one step ahead of the log, and the
    resumed run would skip that step. ``restore`` puts the previous handler back (nothing is installed
    outside the main thread)."""

    def __init__(self):
        import signal
        import threading
        self.requested, self.restore = False, lambda: None
        if threading.current_thread() is threading.main_thread():
            old = signal.signal(signal.SIGTERM, self._request)
            self.restore = lambda: signal.signal(signal.SIGTERM, old)

    def _request(self, signum, frame):
        self.requested = True

    def check(self):
        if self.requested:
            raise KeyboardInterrupt


def launch(c: DetectorTrainConfig, gpus: Optional[str] = None) -> dict:
    """``--gpus 0,1``: one process per listed CUDA device (torch.multiprocessing), else train here."""
    ids = [int(g) for g in gpus.split(",") if g.strip()] if gpus else []
    if len(ids) <= 1 or int(os.environ.get("WORLD_SIZE", "1")) > 1:
        if ids:
            c = dataclasses.replace(c, device=f"cuda:{ids[0]}")
        return train_detector(c)
    if torch.cuda.device_count() < max(ids) + 1:
        raise ValueError(f"--gpus {gpus}: only {torch.cuda.device_count()} CUDA devices here; for several CPU "
                         f"processes use torchrun --nproc_per_node N -m tritnet detector train ...")
    import torch.multiprocessing as mp
    os.environ.setdefault("MASTER_ADDR", "127.0.0.1")
    os.environ.setdefault("MASTER_PORT", "29511")
    mp.spawn(_spawned, args=(c, ids), nprocs=len(ids), join=True)
    return {"processes": len(ids)}


def _spawned(rank: int, c: DetectorTrainConfig, ids: list):
    os.environ.update(RANK=str(rank), LOCAL_RANK=str(rank), WORLD_SIZE=str(len(ids)))
    train_detector(dataclasses.replace(c, device=f"cuda:{ids[rank]}", progress=c.progress and rank == 0))
