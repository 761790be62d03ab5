"""Staged plans: a YAML list of stages, each saying which layers are ternary and how it trains.

    name: yolov2-voc              # names the files: yolov2-voc_M0.cfg, yolov2-voc_M0.weights
    model: yolov2-voc.cfg         # a darknet cfg, or a registered classifier such as resnet20
    method: twn                   # ternarizer of the ternary layers (twn | ttn | sttn)
    chain: minloss                # what the next stage starts from: minloss | best | last | shadow
    train: {batch: 48, subdivisions: 8, max_batches: 41000, steps: [32000, 36900]}   # every stage
    stages:
      - {name: M0, layers: [23, 24, 26, 29], train: {learning_rate: 0.0005}}
      - {name: M1, add: [12-16, 18-22], train: {learning_rate: 0.001}}
      - {name: M2, add: 0.9}                  # the first 90% of the automatic order
      - {name: M3, layers: all}

``layers`` is the stage's whole ternary set, ``add`` the previous stage's set plus these. Items are darknet
layer indices (classifiers: positions in ``tritnet.nn.weight_layers``), ranges ``12-16`` (the weight layers
inside), module names (classifiers), ``all``/``first``/``last``, or fractions (``0.4``, ``"40%"``) of the
automatic order (``layers.py``). ``train`` holds darknet [net] keys and ``detector train`` options, or
``ClassifierTrainConfig`` fields; a stage's ``train`` overrides the plan's. Loading checks the keys and the
syntax (unknown keys get a did-you-mean); ``resolve.py`` checks the layers and values against the model.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Optional

import yaml
from tritnet_rt.files import TEXT_LIMIT, read_text

from ..quant.configs import METHODS
from .errors import PlanError, did_you_mean, where
from ..darknet.cfg import is_cfg_name
from ..layerspec import parse_spec

__all__ = ["PlanError", "Stage", "Plan", "CHAINS", "load_plan", "plan_from_dict", "plan_to_dict", "plan_to_yaml",
           "builtin_plans", "did_you_mean"]

CHAINS = ("minloss", "best", "last", "shadow")
PLANS_DIR = Path(__file__).with_name("plans")
_SAFE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.+-]*")


@dataclass
class Stage:
    name: str
    layers: Any = None                  # the stage's whole ternary set
    add: Any = None                     # or: the previous stage's set plus these
    method: Optional[str] = None        # default: the plan's
    chain: Optional[str] = None         # default: the plan's
    train: dict = field(default_factory=dict)


@dataclass
class Plan:
    name: str
    model: str                          # darknet .cfg path or registered classifier name
    stages: list
    kind: Optional[str] = None          # darknet | classifier (default: from model)
    classes: Optional[int] = None       # darknet: set classes= and the head filters (yolov3-tiny -> VOC)
    data: Optional[str] = None          # darknet .data file, or the classifier data set
    weights: Optional[str] = None       # what the first stage starts from
    method: str = "twn"
    chain: Optional[str] = None         # default: minloss (darknet), last (classifier)
    train: dict = field(default_factory=dict)
    direct: dict = field(default_factory=dict)   # train overrides of the --direct run
    source: Optional[str] = None        # the file it came from (not a YAML key)

    def __post_init__(self):
        if self.kind is None:
            self.kind = "darknet" if is_cfg_name(self.model) else "classifier"

    @property
    def default_chain(self) -> str:
        return self.chain or ("minloss" if self.kind == "darknet" else "last")


_PLAN_KEYS = [f.name for f in fields(Plan) if f.name != "source"]
_STAGE_KEYS = [f.name for f in fields(Stage)]


def _check_keys(d: dict, allowed, source, path):
    for k in d:
        if k not in allowed:
            raise PlanError(f"{where(source, path + str(k))}: unknown key{did_you_mean(k, allowed)}")


def _text(v, source, path, required=False) -> Optional[str]:
    if v is None:
        if required:
            raise PlanError(f"{where(source, path)}: missing (required)")
        return None
    if not isinstance(v, (str, int, float)) or isinstance(v, bool):
        raise PlanError(f"{where(source, path)}: expected a string, got {type(v).__name__}")
    return str(v)


def _mapping(v, source, path) -> dict:
    if v is None:
        return {}
    if not isinstance(v, dict):
        raise PlanError(f"{where(source, path)}: expected a mapping of key: value, got {type(v).__name__}")
    for k in v:
        if not isinstance(k, str):
            raise PlanError(f"{where(source, path)}: key {k!r} is not a name")
    return dict(v)


def _method(v, source, path) -> Optional[str]:
    if v is not None and str(v).lower() not in METHODS:
        raise PlanError(f"{where(source, path)}: unknown method {v!r}{did_you_mean(v, METHODS)}")
    return None if v is None else str(v).lower()


def _chain(v, source, path) -> Optional[str]:
    if v is not None and v not in CHAINS:
        raise PlanError(f"{where(source, path)}: unknown chain {v!r}{did_you_mean(v, CHAINS)}")
    return v


def _stage(d, i: int, source) -> Stage:
    path = f"stages[{i}]"
    if not isinstance(d, dict):
        raise PlanError(f"{where(source, path)}: expected a mapping (name:, layers: or add:, train:)")
    _check_keys(d, _STAGE_KEYS, source, path + ".")
    name = _text(d.get("name"), source, path + ".name", required=True)
    if not _SAFE_NAME.fullmatch(name):
        raise PlanError(f"{where(source, path + '.name')}: {name!r} cannot name files (letters, digits, _ . + -)")
    if (d.get("layers") is None) == (d.get("add") is None):
        raise PlanError(f"{where(source, path)}: give exactly one of layers: (the whole set) or add: "
                        f"(added to the previous stage's)")
    key = "layers" if d.get("layers") is not None else "add"
    parse_spec(d[key], where(source, f"{path}.{key}"), PlanError)   # syntax only; the model checks the rest
    return Stage(name=name, layers=d.get("layers"), add=d.get("add"),
                 method=_method(d.get("method"), source, path + ".method"),
                 chain=_chain(d.get("chain"), source, path + ".chain"),
                 train=_mapping(d.get("train"), source, path + ".train"))


def plan_from_dict(d: dict, source: Optional[str] = None) -> Plan:
    """A :class:`Plan` from the YAML mapping; PlanError names ``source`` and the field at fault."""
    if not isinstance(d, dict):
        raise PlanError(f"{where(source, '<top>')}: a plan is a mapping with name:, model: and stages:")
    _check_keys(d, _PLAN_KEYS, source, "")
    stages = d.get("stages")
    if not isinstance(stages, list) or not stages:
        raise PlanError(f"{where(source, 'stages')}: expected a non-empty list of stages")
    parsed = [_stage(s, i, source) for i, s in enumerate(stages)]
    seen = {}
    for i, s in enumerate(parsed):
        if s.name in seen:
            raise PlanError(f"{where(source, f'stages[{i}].name')}: {s.name!r} already names stages[{seen[s.name]}]")
        seen[s.name] = i
    kind = d.get("kind")
    if kind is not None and kind not in ("darknet", "classifier"):
        raise PlanError(f"{where(source, 'kind')}: {kind!r}{did_you_mean(kind, ('darknet', 'classifier'))}")
    classes = d.get("classes")
    if classes is not None and (not isinstance(classes, int) or isinstance(classes, bool) or classes < 1):
        raise PlanError(f"{where(source, 'classes')}: expected a positive integer, got {classes!r}")
    name = _text(d.get("name"), source, "name", required=True)
    if not _SAFE_NAME.fullmatch(name):
        raise PlanError(f"{where(source, 'name')}: {name!r} cannot name files (letters, digits, _ . + -)")
    return Plan(name=name, model=_text(d.get("model"), source, "model", required=True), stages=parsed, kind=kind,
                classes=classes, data=_text(d.get("data"), source, "data"),
                weights=_text(d.get("weights"), source, "weights"),
                method=_method(d.get("method"), source, "method") or "twn",
                chain=_chain(d.get("chain"), source, "chain"),
                train=_mapping(d.get("train"), source, "train"), direct=_mapping(d.get("direct"), source, "direct"),
                source=source)


def builtin_plans() -> dict[str, Path]:
    """{name: file} of the plans shipped inside the package (the seeds' M0–M3)."""
    return {p.stem: p for p in sorted(PLANS_DIR.glob("*.yaml"))}


def load_plan(name_or_path) -> Plan:
    """A plan from a YAML file, or a built-in plan by name (``yolov2-voc``)."""
    p = Path(name_or_path)
    if not p.is_file():
        builtins = builtin_plans()
        if str(name_or_path) not in builtins:
            raise FileNotFoundError(f"{name_or_path}: no such plan file or built-in plan"
                                    f"{did_you_mean(name_or_path, builtins)}")
        p = builtins[str(name_or_path)]
    try:
        d = yaml.safe_load(read_text(p, "plan", TEXT_LIMIT))
    except yaml.YAMLError as e:
        raise PlanError(f"{p}: not valid YAML ({str(e).splitlines()[0]})") from None
    return plan_from_dict(d, str(p))


def plan_to_dict(plan: Plan) -> dict:
    """The YAML mapping of a plan (None and empty fields left out), so a plan round-trips."""
    out = {}
    for f in fields(Plan):
        v = getattr(plan, f.name)
        if f.name == "source" or v in (None, {}, []):
            continue
        if f.name == "stages":
            v = [{k: sv for k in _STAGE_KEYS if (sv := getattr(s, k)) not in (None, {})} for s in v]
        out[f.name] = v
    return out


def plan_to_yaml(plan: Plan) -> str:
    return yaml.safe_dump(plan_to_dict(plan), sort_keys=False, default_flow_style=None)
