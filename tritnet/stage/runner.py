"""Run a staged plan unattended, the seeds' darknet.sh as a loop::

    for each stage:  write its cfg → start from the previous stage's chosen weights (the first stage from
                     the plan's weights) → train with its own schedule → keep the chain checkpoint
                     (min-loss, best, last or, darknet, the last with its shadow weights) → score it →
                     record it in state.json
    then:            report.md / report.csv / loss.png

Output folder (default ``runs/stage/<plan name>``)::

    stages.yaml          the resolved plan: every stage's ternary layers, method, chain and settings
    state.json           finished stages (a rerun skips them), the running one (a rerun resumes it)
    <name>.cfg           darknet: the base network, all float (what the float row is scored with)
    <stage>/             one folder per stage (see darknet_backend / classifier_backend)
    report.md, report.csv, loss.png

Resume: a stage killed in the middle continues from its own last checkpoint (``detector train --resume``,
``classifier train --resume``); a finished stage is never trained again. The stages must be the same as
in the first run (a fingerprint per stage checks it), else the runner stops and says so.

At each stage boundary the new stage re-estimates the batch-norm statistics of the layers from its first
ternary one on (``bn_recalibrate``) and restarts its learning-rate schedule with its warm-up (classifiers'
``warmup``, darknet's ``burn_in``), unless protocol ``continue`` makes the stages one schedule; ``protocol``
sets the stages' budgets against the direct run's (``resolve.protocol_budgets``).
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import Callable, Optional

import yaml

from .plan import Plan, PlanError, plan_from_dict, plan_to_dict
from .report import collapsed, write_report
from .resolve import direct_plan, protocol_budgets, resolve_stages, stage_budget
from .state import State, copy_atomic, write_text_atomic

__all__ = ["run_plan", "make_backend", "format_plan", "compact"]


def _find(value: Optional[str], plan: Plan, key: str) -> Optional[str]:
    """An absolute path for a plan's file: as given (relative to the working folder), else relative to the
    plan file's folder."""
    if value is None:
        return None
    p = Path(value).expanduser()
    tries = [p] if p.is_absolute() else [Path.cwd() / p] + ([Path(plan.source).parent / p] if plan.source else [])
    for t in tries:
        if t.exists():
            return str(t.resolve())
    raise FileNotFoundError(f"{plan.source or '<plan>'}: {key}: {value}: no such file "
                            f"(looked in {', '.join(str(t.parent) for t in tries)}); pass --{key} PATH")


def make_backend(plan: Plan, *, device="auto", workers=2, progress=True):
    if plan.kind == "darknet":
        from .darknet_backend import DarknetBackend
        return DarknetBackend(plan, Path(plan.model), device=device, workers=workers, progress=progress)
    from .classifier_backend import ClassifierBackend
    return ClassifierBackend(plan, device=device, workers=workers, progress=progress)


def compact(ids) -> str:
    """[2, 4, 5, 6, 8] → '2, 4-6, 8'."""
    parts, ids, i = [], sorted(ids), 0
    while i < len(ids):
        j = i
        while j + 1 < len(ids) and ids[j + 1] == ids[j] + 1:
            j += 1
        parts.append(str(ids[i]) if i == j else f"{ids[i]}-{ids[j]}")
        i = j + 1
    return ", ".join(parts) or "-"


def format_plan(plan: Plan, backend, runs) -> str:
    n = len(backend.layers.ids)
    lines = [f"plan {plan.name}: {plan.kind} {plan.model}, {n} weight layers, method {plan.method}",
             f"{'stage':<10} {'ternary':>8} {'share':>6} {backend.budget_key:>12}  {'chain':<8} new ternary layers"]
    previous = set()
    for r in runs:
        new = sorted(set(r.ternary) - previous)
        lines.append(f"{r.name:<10} {len(r.ternary):>4}/{n:<3} {100 * len(r.ternary) / n:>5.0f}% "
                     f"{stage_budget(backend, r):>12}  {r.chain:<8} {compact(new)}")
        if backend.layers.by_name and new:
            lines.append(" " * 50 + f"({', '.join(backend.layers.names[i] for i in new)})")
        previous = set(r.ternary)
    return "\n".join(lines)


def _stages_yaml(plan, backend, runs, protocol=None) -> str:
    return yaml.safe_dump({"plan": plan.name, "kind": plan.kind, "model": plan.model, "data": plan.data,
                           "weights": plan.weights, "protocol": protocol, "stages": [
                               {"name": r.name, "method": r.method, "chain": r.chain, "ternary": r.ternary,
                                "ternary_names": [backend.layers.name_of(i) for i in r.ternary],
                                "train": {k: list(v) if isinstance(v, tuple) else v for k, v in r.train.items()},
                                "fingerprint": r.fingerprint} for r in runs]}, sort_keys=False, default_flow_style=None)


def _check_trained_run(state: State, runs, out: Path, dry_run: bool) -> None:
    """Nothing is written into a folder whose stages were trained unless it is the same plan resumed: a dry
    run would replace the cfgs beside weights trained with them, a changed plan would mix two runs."""
    started = [name for name, rec in state.data["stages"].items() if rec]
    if dry_run and started:
        raise PlanError(f"{out}: holds trained stages ({', '.join(started)}); a dry run writes nothing there, "
                        f"give it another --out")
    for r in runs:
        rec = state.stage(r.name)
        if rec and rec.get("fingerprint") not in (None, r.fingerprint):
            raise PlanError(f"{state.path}: stage {r.name} was started with other settings, layers or starting "
                            f"weights; run the changed plan in another --out folder (or delete {out})")


def _stage_summary(name: str, backend, scores: dict, before: Optional[dict]) -> str:
    """One line when a stage ends: its scores, and a warning when the first score fell below a quarter of the
    one the stage started from (a collapse: the stage's training diverged or its learning rate is too high)."""
    metrics = scores.get("metrics") or {}
    text = ", ".join(f"{label} {metrics[k]:.2f}" for k, label in backend.metric_names if metrics.get(k) is not None)
    line = f"stage {name} done: {text or 'no scores'}"
    if collapsed(metrics, before, backend):
        key, label = backend.metric_names[0]
        line += (f"\nWARNING: stage {name} collapsed: {label} {metrics[key]:.2f} against {before[key]:.2f} before "
                 f"it; try a lower learning rate or a longer warm-up")
    return line


def run_plan(plan: Plan, out=None, *, overrides: Optional[dict] = None, dry_run: bool = False, direct: bool = False,
             protocol: Optional[str] = None, budget: Optional[int] = None, device: str = "auto", workers: int = 2,
             progress: bool = True, echo: Callable = print) -> dict:
    """Run (or with ``dry_run`` only write and print) every stage of ``plan``; ``direct`` instead trains one
    stage with every layer ternary for the plan's total budget. ``overrides`` ({key: value}) replace
    ``train`` settings in every stage.

    ``protocol`` compares with a direct run of ``budget`` epochs or iterations (default: the first stage's):
    ``seeds`` trains every stage that long, ``equal`` splits it over the stages; with ``direct`` the direct
    run trains ``budget``. Returns {"out", "stages", "plan", and after a run "rows", "markdown",
    "report_md", "report_csv", "loss_png"}."""
    plan = plan_from_dict(plan_to_dict(plan), plan.source)          # the same checks as a YAML file
    if plan.kind == "darknet":
        plan.model = _find(plan.model, plan, "model")
    if not dry_run:
        if not plan.data:
            raise PlanError(f"{plan.source or '<plan>'}: data: missing (a .data file or data set); pass --data")
        if plan.kind == "darknet" or not plan.data.isidentifier():  # classifier data may be a name ("cifar10")
            plan.data = _find(plan.data, plan, "data")
        plan.weights = _find(plan.weights, plan, "weights")
    backend = make_backend(plan, device=device, workers=workers, progress=progress)
    runs = resolve_stages(plan, backend, overrides)
    total = None
    if protocol is not None:
        total = budget or backend.budget(runs[0].train)
        budgets = protocol_budgets(protocol, total, len(runs))
        if not direct:     # (the direct run stretches the plan's own first schedule: one rounding of its steps)
            runs = resolve_stages(plan, backend, overrides, budgets, continued=protocol == "continue")
    elif budget is not None:
        raise PlanError("--budget is the direct run's length under a --protocol (seeds, equal or continue); give one")
    if direct:
        plan = direct_plan(plan, backend, runs, total)
        runs = resolve_stages(plan, backend)                     # overrides are in the stretched schedule
    suffix = "-direct" if direct else (f"-{protocol}" if protocol else "")
    out = Path(out or Path("runs") / "stage" / (plan.name + suffix)).resolve()
    state = State(out / "state.json")
    _check_trained_run(state, runs, out, dry_run)
    out.mkdir(parents=True, exist_ok=True)
    write_text_atomic(out / "stages.yaml", _stages_yaml(plan, backend, runs, None if direct else protocol))
    for r in runs:
        backend.write_stage(r, out / r.name)
    if hasattr(backend, "write_start"):            # darknet: the float start's cfg beside the stages'
        backend.write_start(out)
    table = format_plan(plan, backend, runs)
    echo(table)
    result = {"out": str(out), "plan": table, "stages": [{"name": r.name, "ternary": r.ternary} for r in runs]}
    if dry_run:
        echo(f"dry run: stage files written to {out}")
        return result

    if plan.weights and (state.data.get("start") or {}).get("weights") != plan.weights:
        echo(f"scoring the starting weights {plan.weights}")
        state.data["start"] = {**backend.evaluate_start(plan.weights, out, runs[0]), "weights": plan.weights}
        state.save()

    start, before = plan.weights, (state.data.get("start") or {}).get("metrics")
    for r in runs:
        folder, rec = out / r.name, state.stage(r.name)
        carried = rec.get("carry", rec.get("weights")) if rec else None
        if rec and rec.get("status") == "done" and Path(rec["weights"]).is_file() and Path(carried).is_file():
            echo(f"stage {r.name}: finished in an earlier run, not repeated")
            start, before = carried, rec.get("metrics") or before
            continue
        resume = rec is not None and backend.has_partial(r, folder)
        state.update(r.name, fingerprint=r.fingerprint, status="running", start=start)
        echo(f"stage {r.name}: {len(r.ternary)}/{len(backend.layers.ids)} layers ternary, "
             + (f"resuming from its last checkpoint in {folder}" if resume else f"starting from {start or 'scratch'}"))
        t0 = time.time()
        try:
            backend.train(r, start, folder, resume)
        finally:
            state.add_seconds(r.name, time.time() - t0)
        chosen = backend.chosen(r, folder)
        saved = copy_atomic(chosen, folder / backend.weights_name(r))
        scores = backend.evaluate(r, saved, folder)
        start = str(backend.carry(r, folder, saved))
        state.update(r.name, status="done", chosen=str(chosen), weights=str(saved), carry=start, **scores)
        echo(_stage_summary(r.name, backend, scores, before))
        before = scores.get("metrics") or before

    kind = "direct (all layers at once)" if direct else f"{len(runs)} stage{'s' if len(runs) > 1 else ''}"
    if protocol and not direct:
        kind += f", {protocol} protocol ({total} {backend.budget_key} " + \
            {"seeds": "each, as the direct run)", "equal": "in all, as the direct run)",
             "continue": "in all, one schedule as the direct run's)"}[protocol]
    report = write_report(out, backend, runs, state, f"{plan.name}: {kind}, {plan.model}")
    echo(report["markdown"])
    return {**result, **report}
