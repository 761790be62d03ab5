"""Staged ternarization (darknetTWN's Staged Training Method, methods.md §1.7): make a trained network
ternary a few layers at a time, each stage starting from the previous stage's weights.

    from tritnet import stage
    plan = stage.load_plan("yolov2-voc")                   # a built-in plan, or a YAML file
    stage.run_plan(plan, "runs/stage/v2", dry_run=True)    # write yolov2-voc_M0..M3.cfg, print the plan
    plan = stage.auto_plan("resnet20", data="cifar10", weights="pretrained/resnet_cifar10",
                           train={"epochs": 2, "train_per_class": 500})
    result = stage.run_plan(plan, "runs/stage/r20")        # report.md, report.csv, loss.png in that folder
    stage.run_plan(plan, "runs/stage/r20-direct", direct=True)   # all layers at once, same total budget

Files, one job each: ``plan`` (YAML ↔ dataclasses, key checks), ``layers`` (weight layers, the seeds'
order, layer specs), ``auto`` (automatic plans), ``resolve`` (stages against the model, --direct),
``darknet_backend``/``classifier_backend`` (what a stage is for each kind of model), ``state`` (what a
rerun resumes), ``report`` (the table and the loss curves), ``runner`` (the loop).
"""
from .auto import auto_plan, default_fractions
from .plan import CHAINS, Plan, PlanError, Stage, builtin_plans, load_plan, plan_from_dict, plan_to_dict, plan_to_yaml
from .runner import format_plan, make_backend, run_plan

__all__ = ["auto_plan", "default_fractions", "CHAINS", "Plan", "PlanError", "Stage", "builtin_plans", "load_plan",
           "plan_from_dict", "plan_to_dict", "plan_to_yaml", "format_plan", "make_backend", "run_plan"]
