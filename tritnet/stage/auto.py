"""Automatic plans for any model: N stages taking growing fractions of the seeds' layer order (``layers.py``:
next to the detector first, then the late and the early backbone, first and output layers last).

    plan = auto_plan("yolov2-voc.cfg")                       # M0..M3 at 15%, 40%, 90%, 100% of the convs
    plan = auto_plan("resnet20", stages=3, train={"epochs": 2})

The default fractions follow the seeds' description ("a few layers", about 40%, about 90%, all); on
yolov2-voc, fractions 4/23, 14/23, 21/23 and 1 give the seeds' M0–M3 exactly.
"""
from __future__ import annotations

from pathlib import Path
from typing import Optional, Sequence

from .plan import Plan, PlanError, Stage

__all__ = ["auto_plan", "default_fractions"]


def default_fractions(stages: int) -> tuple:
    seeds = {1: (1.0,), 2: (0.4, 1.0), 3: (0.4, 0.9, 1.0), 4: (0.15, 0.4, 0.9, 1.0)}
    return seeds.get(stages) or tuple(round((k + 1) / stages, 4) for k in range(stages))


def auto_plan(model: str, *, stages: Optional[int] = None, fractions: Optional[Sequence[float]] = None,
              method: str = "twn", chain: Optional[str] = None, data: Optional[str] = None,
              weights: Optional[str] = None, train: Optional[dict] = None, classes: Optional[int] = None,
              name: Optional[str] = None) -> Plan:
    """A plan of ``stages`` stages (default 4) whose ternary sets are ``fractions`` of the automatic order."""
    if fractions is not None:
        fractions = tuple(float(f) for f in fractions)
        if stages is not None and stages != len(fractions):
            raise PlanError(f"--fractions: {len(fractions)} fractions for {stages} stages")
    else:
        if stages is not None and stages < 1:
            raise PlanError(f"--stages: must be at least 1, got {stages}")
        fractions = default_fractions(stages or 4)
    for a, b in zip(fractions, fractions[1:]):
        if b <= a:
            raise PlanError(f"--fractions: must grow from stage to stage, got {a} then {b}")
    for f in fractions:
        if not 0 < f <= 1:
            raise PlanError(f"--fractions: {f} is out of range (0, 1]")
    name = name or Path(str(model)).stem
    plan_stages = [Stage(name=f"M{k}", layers=f) for k, f in enumerate(fractions)]
    return Plan(name=name, model=str(model), stages=plan_stages, classes=classes, data=data, weights=weights,
                method=method, chain=chain, train=dict(train or {}))
