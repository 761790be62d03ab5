"""From a plan to the stages the runner trains: layer sets resolved against the model, ``train`` merged
(the backend's stage defaults, the plan, the stage, then command-line overrides) and checked by the
backend, one fingerprint per stage. Stage k trains with ``seed + k``, so the stages do not all see the same
batches first (with darknet's min-loss rule that made every short stage keep the weights of its first few
iterations). With knowledge transfer (``distill: true``) every stage's teacher is the plan's float start.

Budget protocols (``protocol_budgets``), for comparisons with the direct run (all layers at once) of B:

    seeds     every stage trains B, as long as the direct run (darknetTWN's M0–M3: 41,000 iterations each)
    equal     the stages share B, B/N each (the same total cost as the direct run); each restarts its schedule
    continue  the stages share B as with equal, and run as one schedule, the direct run's: stage k trains its
              iterations [start, end) (darknet: max_batches = end, trained without -clear from the previous
              stage's final weights, so only the first stage warms up and the learning rate goes on; with
              ``chain: shadow`` the float shadow weights and the optimizer's momentum go on too). Darknet
              plans; every stage but the last chains on last or shadow (weights saved at the stage's end).

The fingerprint covers everything that decides a stage's result (its layers, method, chain, settings and
the fingerprint of the stage before it, or the initial weights), so a rerun skips a finished stage only if
it would train the same thing. Files count by their content, not their path: new weights copied over the old
ones make every stage train again.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import types
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Union

from .plan import Plan, PlanError, Stage, did_you_mean, where

__all__ = ["StageRun", "resolve_stages", "direct_plan", "coerce_fields", "PROTOCOLS", "protocol_budgets",
           "stage_budget"]

PROTOCOLS = ("seeds", "equal", "continue")


@dataclass
class StageRun:
    index: int
    name: str
    ternary: list               # layer ids (darknet indices / classifier positions), sorted
    method: Optional[str]       # None for a stage without ternary layers
    chain: str
    train: dict                 # merged and checked settings
    fingerprint: str
    start: int = 0              # the iteration its schedule starts at (protocol continue), else 0: from scratch


def protocol_budgets(protocol: str, total: int, stages: int) -> list:
    """Each stage's budget (epochs or iterations) when the direct run has ``total``: ``seeds`` gives every
    stage the whole of it, ``equal`` and ``continue`` split it (the last stages take the remainder: they end
    ternary)."""
    if protocol == "seeds":
        return [total] * stages
    if protocol not in PROTOCOLS:
        raise PlanError(f"--protocol: {protocol!r}{did_you_mean(protocol, PROTOCOLS)}")
    base, extra = divmod(total, stages)
    if base < 1:
        raise PlanError(f"--protocol {protocol}: a budget of {total} cannot be split over {stages} stages; raise it")
    return [base + (1 if k >= stages - extra else 0) for k in range(stages)]


def stage_budget(backend, run: StageRun) -> int:
    """The epochs or iterations the stage itself trains (under protocol continue: from its start to its end)."""
    return backend.budget(run.train) - run.start


def resolve_stages(plan: Plan, backend, overrides: Optional[dict] = None, budgets: Optional[list] = None,
                   continued: bool = False) -> list:
    """The stages to train; ``budgets`` (one per stage) stretches each stage's schedule to that length, or
    with ``continued`` (protocol continue) makes each stage its span of one schedule as long as their sum."""
    if continued and not hasattr(backend, "check_continue"):
        raise PlanError(f"--protocol continue: {plan.kind} plans restart their schedule every stage; use equal")
    ends = [sum(budgets[:i + 1]) for i in range(len(budgets))] if continued else None
    layers = backend.layers
    src = plan.source
    base = backend.check_train(plan.train, where(src, "train"))
    try:
        forced = backend.check_train(overrides or {}, "--set")
    except PlanError as e:                      # "--set max_batchs: ...", as typed on the command line
        raise PlanError(str(e).replace("--set.", "--set ", 1)) from None
    inputs = [_identity(v) for v in (plan.model, plan.data)]
    runs, previous, prev_print = [], [], _identity(plan.weights) or ""
    for i, st in enumerate(plan.stages):
        path = f"stages[{i}]"
        key = "layers" if st.layers is not None else "add"
        picked = layers.resolve(getattr(st, key), where(src, f"{path}.{key}"))
        chosen = sorted(set(picked) | set(previous)) if key == "add" else picked
        dropped = sorted(set(previous) - set(chosen))
        if dropped:
            names = ", ".join(layers.name_of(d) for d in dropped[:4])
            raise PlanError(f"{where(src, path + '.layers')}: drops layers that {plan.stages[i - 1].name} made ternary "
                            f"({names}); a stage can only add ternary layers")
        chain = st.chain or plan.default_chain
        if chain not in backend.chains:
            raise PlanError(f"{where(src, path + '.chain')}: {chain!r} is not available for {plan.kind} plans "
                            f"(choose {' or '.join(backend.chains)})")
        train = {**backend.stage_defaults, **base, **backend.check_train(st.train, where(src, path + ".train")),
                 **forced}
        if continued:
            train = {**backend.stretch(train, ends[-1]), backend.budget_key: ends[i]}   # ends[-1]: the whole
            if i:
                backend.check_continue(runs[-1], train, where(src, f"stages[{i - 1}]"), where(src, path))
        elif budgets is not None:
            train = backend.stretch(train, budgets[i])
        if train.get("distill") and not train.get("teacher"):
            # knowledge transfer: every stage learns from the float network the plan starts from, never from
            # the previous (partly ternary) stage
            if not plan.weights:
                raise PlanError(f"{where(src, path + '.train.distill')}: the stages' teacher is the float start "
                                "(weights:), and the plan has none; give weights or train.teacher")
            train["teacher"] = plan.weights
        if i:   # stage k shuffles with seed + k: the same seed would replay the same first batches every stage
            train["seed"] = train.get("seed", 0) + i
        method = (st.method or plan.method) if chosen else None
        run = StageRun(i, st.name, chosen, method, chain, train, "", ends[i - 1] if continued and i else 0)
        backend.check_stage(run, where(src, path))
        blob = json.dumps([prev_print, chosen, method, chain, train, inputs[0], plan.classes, inputs[1]]
                          + ([run.start] if run.start else []),
                          sort_keys=True, default=str)
        run.fingerprint = hashlib.sha256(blob.encode()).hexdigest()[:16]
        runs.append(run)
        previous, prev_print = chosen, run.fingerprint
    return runs


_WHOLE_FILE = 1 << 30      # larger files (a data set's tarball) are hashed by their first and last 64 MiB


def _identity(value):
    """What a plan's value stands for: a file by its size and SHA-256, a folder by its files' names and sizes
    (hashing a whole image set would cost more than it catches), anything else (a model name) as it is."""
    if not value:
        return value
    p = Path(value)
    try:
        if p.is_file():
            size, digest = p.stat().st_size, hashlib.sha256()
            with open(p, "rb") as f:
                spans = [(0, size)] if size <= _WHOLE_FILE else [(0, 1 << 26), (max(0, size - (1 << 26)), 1 << 26)]
                for start, length in spans:
                    f.seek(start)
                    while length > 0:
                        block = f.read(min(length, 1 << 20))
                        if not block:
                            break
                        digest.update(block)
                        length -= len(block)
            return [str(value), size, digest.hexdigest()]
        if p.is_dir():
            return [str(value), sorted((str(f.relative_to(p)), f.stat().st_size) for f in p.rglob("*") if f.is_file())]
    except OSError:
        pass
    return value


def direct_plan(plan: Plan, backend, runs: list, total: Optional[int] = None) -> Plan:
    """The comparison run: every layer ternary in one stage, trained for ``total`` (default: the plan's total
    budget, the sum of the stages' epochs or max_batches) with the first stage's schedule stretched to it,
    then the plan's ``direct:`` overrides."""
    total = total or sum(backend.budget(r.train) for r in runs)
    train = {**backend.stretch(runs[0].train, total), **plan.direct}
    stage = Stage(name="direct", layers="all", chain=plan.stages[-1].chain, train=train)
    return dataclasses.replace(plan, stages=[stage], train={}, direct={})


# ---------------------------------------------------------------------------------------------- values
def coerce_fields(cls, values: dict, where_: str, reserved=()) -> dict:
    """``values`` checked against the fields of dataclass ``cls`` (types from its annotations); unknown or
    reserved keys and values of the wrong type are PlanErrors naming ``where_.key``."""
    hints = typing.get_type_hints(cls)
    allowed = [f.name for f in dataclasses.fields(cls) if f.name not in reserved]
    out = {}
    for k, v in values.items():
        if k in reserved:
            raise PlanError(f"{where_}.{k}: set by the stage runner, not by the plan")
        if k not in allowed:
            raise PlanError(f"{where_}.{k}: unknown setting{did_you_mean(k, allowed)}")
        out[k] = _coerce(v, hints[k], f"{where_}.{k}")
    return out


def _coerce(v, hint, at):
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (Union, types.UnionType):
        if v is None and type(None) in args:
            return None
        error = None
        for a in args:
            if a is not type(None):
                try:
                    return _coerce(v, a, at)
                except PlanError as e:
                    error = error or e
        raise error
    if hint is bool:
        if isinstance(v, bool):
            return v
        raise PlanError(f"{at}: expected true or false, got {v!r}")
    if hint is int:
        if isinstance(v, int) and not isinstance(v, bool):
            return v
        raise PlanError(f"{at}: expected an integer, got {v!r}")
    if hint is float:
        if isinstance(v, (int, float)) and not isinstance(v, bool):
            return float(v)
        if isinstance(v, str):      # PyYAML reads 1e-3 (no dot) as a string
            try:
                return float(v)
            except ValueError:
                pass
        raise PlanError(f"{at}: expected a number, got {v!r}")
    if hint is str:
        if isinstance(v, str):
            return v
        raise PlanError(f"{at}: expected a string, got {v!r}")
    if origin is tuple:
        seq = v if isinstance(v, (list, tuple)) else [v]
        return tuple(_coerce(x, args[0], at) for x in seq)
    return v

