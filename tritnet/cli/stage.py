"""The ``stage`` verb of the ``tritnet`` command: a whole staged plan in one command::

    tritnet stage yolov2-voc --model cfg/yolov2-voc.cfg --data voc.data --weights yolov2-voc.weights
    tritnet stage my_plan.yaml --dry-run                 # write every stage's cfg, print the plan
    tritnet stage auto --model resnet20 --data cifar10 --weights pretrained/resnet_cifar10 --set epochs=2
    tritnet stage auto --model ttt5.cfg --data bccd.data --weights ttt5.weights --direct
    tritnet stage auto --model ttt5.cfg --data bccd.data --weights ttt5.weights --protocol equal --budget 6000
    tritnet stage auto --model resnet20 --data cifar10 --weights pretrained/resnet_cifar10 --distill --set epochs=8
    tritnet stage --list

``add_parsers(subparsers)`` adds the verb; ``VERBS`` maps ("stage", None) to :func:`cmd_stage`, which is
argv → one ``tritnet.stage.run_plan`` call → printed report. User errors are ValueError/FileNotFoundError
naming the file and field.
"""
from __future__ import annotations

import argparse
import json
import sys

from tritnet_rt.cliargs import json_option, nonnegative_int, output_dir, positive_int


def add_parsers(sub) -> None:
    p = sub.add_parser("stage", help="ternarize a trained network in stages (M0 → M3), with a per-stage report",
                       description="Run a staged ternarization plan: a YAML file, a built-in plan "
                                   "(yolov2-voc, yolov3-voc, yolov3-tiny-voc) or 'auto' (with --model).")
    p.add_argument("plan", nargs="?", help="plan YAML file, built-in plan name, or 'auto'")
    p.add_argument("--list", action="store_true", help="list the built-in plans")
    p.add_argument("--model", default=None, help="darknet .cfg or classifier name (auto plans; replaces a "
                   "plan's model, e.g. where the base cfg lives)")
    p.add_argument("--data", default=None, help="darknet .data file, or the classifier data set")
    p.add_argument("--weights", default=None, help="what the first stage starts from (trained float weights)")
    p.add_argument("--out", type=output_dir(), default=None,
                   help="output folder (default runs/stage/<plan name>, or <plan name>-direct)")
    p.add_argument("--dry-run", action="store_true", help="write every stage's cfg and print the plan; no training")
    p.add_argument("--direct", action="store_true", help="every layer ternary in one stage, same total budget")
    p.add_argument("--protocol", choices=["seeds", "equal", "continue"], default=None,   # resolve.PROTOCOLS
                   help="budgets against a direct run of --budget: seeds (every stage that long), equal (split "
                        "over the stages, each restarting its schedule) or continue (split, one schedule going on "
                        "across the stages; darknet); default: the plan's own budgets, direct = their sum")
    p.add_argument("--budget", type=positive_int, default=None,
                   help="the direct run's epochs or iterations under --protocol (default: the first stage's)")
    p.add_argument("--distill", action="store_true",
                   help="knowledge transfer from the float start in every stage (--set distill=true)")
    p.add_argument("--stages", type=positive_int, default=None, help="auto: number of stages (default 4)")
    p.add_argument("--fractions", default=None, help="auto: ternary share per stage, e.g. 0.15,0.4,0.9,1")
    p.add_argument("--method", choices=["twn", "ttn", "sttn"], default=None, help="ternarizer (default: the plan's)")
    p.add_argument("--chain", choices=["minloss", "best", "last", "shadow"], default=None,
                   help="checkpoint the next stage starts from (default: minloss for darknet, last for classifiers; "
                        "shadow, darknet: the last training state, ternary layers' float shadow weights kept)")
    p.add_argument("--classes", type=positive_int, default=None, help="darknet: set the heads' classes (and filters)")
    p.add_argument("--name", default=None, help="plan name (names the files; auto default: the model's name)")
    p.add_argument("--set", dest="sets", action="append", default=[], metavar="KEY=VALUE",
                   help="a training setting for every stage ([net] key or ClassifierTrainConfig field), repeatable")
    p.add_argument("--workers", type=nonnegative_int, default=2)
    p.add_argument("--device", default="auto")
    p.add_argument("--no-progress", action="store_true")
    json_option(p, "print the report rows as JSON")


def parse_sets(items) -> dict:
    """``["epochs=2", "steps=[400,450]"]`` → {"epochs": 2, "steps": [400, 450]} (values read as YAML)."""
    import yaml
    out = {}
    for item in items:
        key, eq, value = item.partition("=")
        if not eq or not key.strip().isidentifier():
            raise ValueError(f"--set {item!r}: expected KEY=VALUE")
        try:
            out[key.strip()] = yaml.safe_load(value)
        except yaml.YAMLError:
            raise ValueError(f"--set {item!r}: the value is not readable") from None
    return out


def build_plan(a: argparse.Namespace):
    import dataclasses

    from ..stage import auto_plan, load_plan
    if not a.plan:
        raise ValueError("stage: give a plan (YAML file, built-in name or 'auto'), or --list")
    if a.plan == "auto":
        if not a.model:
            raise ValueError("stage auto: --model is required (a darknet .cfg or a classifier name)")
        fractions = [float(f) for f in a.fractions.split(",") if f.strip()] if a.fractions else None
        return auto_plan(a.model, stages=a.stages, fractions=fractions, method=a.method or "twn", chain=a.chain,
                         data=a.data, weights=a.weights, classes=a.classes, name=a.name)
    if a.stages is not None or a.fractions:
        raise ValueError("--stages and --fractions make an automatic plan: use 'tritnet stage auto --model ...'")
    plan = load_plan(a.plan)
    given = {"model": a.model, "data": a.data, "weights": a.weights, "method": a.method, "chain": a.chain,
             "classes": a.classes, "name": a.name}
    plan = dataclasses.replace(plan, **{k: v for k, v in given.items() if v is not None})
    if a.model:                  # relative to the working folder (tried before the plan's folder)
        from ..darknet import is_cfg_name
        plan.kind = "darknet" if is_cfg_name(a.model) else "classifier"
    return plan


def cmd_stage(a: argparse.Namespace) -> None:
    from ..stage import builtin_plans, run_plan
    if a.list:
        for name, path in builtin_plans().items():
            print(f"{name:<18} {path}")
        return
    plan = build_plan(a)
    echo = (lambda s: print(s, file=sys.stderr)) if a.json else print
    try:
        overrides = {**({"distill": True} if a.distill else {}), **parse_sets(a.sets)}
        r = run_plan(plan, a.out, overrides=overrides, dry_run=a.dry_run, direct=a.direct, protocol=a.protocol,
                     budget=a.budget, device=a.device, workers=a.workers, progress=not (a.no_progress or a.json),
                     echo=echo)
    except KeyboardInterrupt:
        print("tritnet: interrupted; run the same command again to continue (finished stages are kept)",
              file=sys.stderr)
        raise SystemExit(130) from None
    if a.json:
        print(json.dumps({k: v for k, v in r.items() if k != "markdown"}, indent=2, default=str))


VERBS = {("stage", None): cmd_stage}
