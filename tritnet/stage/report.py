"""The staged run's report, like the seeds' Table 1: one row for the starting weights and one per stage with
the ternary layers (count and share), the scores, the packed size and the training time; written as
``report.md`` and ``report.csv``, and ``loss.png`` with every stage's loss on one iteration axis."""
from __future__ import annotations

import csv
import io
from pathlib import Path

from ..train.runs import save_figure
from .resolve import stage_budget
from .state import write_text_atomic

__all__ = ["report_rows", "write_report", "format_markdown", "plot_losses", "collapsed"]


def _size_text(n) -> str:
    if n is None:
        return "-"
    return f"{n / 2 ** 20:.2f} MiB" if n >= 2 ** 20 else f"{n / 2 ** 10:.1f} KiB"


def _time_text(s) -> str:
    if s is None:
        return "-"
    s = int(round(s))
    return f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}"


def collapsed(metrics, before, backend) -> bool:
    """A stage whose main score ends below a quarter of the score it started from (the row above it)."""
    key = backend.metric_names[0][0]
    now, was = (metrics or {}).get(key), (before or {}).get(key)
    return now is not None and was is not None and was > 0 and now < 0.25 * was


def report_rows(backend, runs, state) -> list:
    layers = backend.layers
    total_w = sum(layers.params)

    def row(name, ternary, rec, budget=None):
        rec = rec or {}
        size = rec.get("size") or {}
        w = sum(layers.params[layers.ids.index(i)] for i in ternary)
        r = {"stage": name, "ternary_layers": len(ternary), "layers": len(layers.ids),
             "share_layers": 100 * len(ternary) / len(layers.ids), "share_weights": 100 * w / total_w}
        for key in [k for k, _ in backend.metric_names] + list(backend.extra_metrics):   # extras: CSV only
            r[key] = (rec.get("metrics") or {}).get(key)
        r["budget"] = budget
        for k in ("float32_bytes", "packed_2bit_bytes", "packed_1.6bit_bytes"):
            r[k] = size.get(k)
        r["train_seconds"] = rec.get("seconds")
        r["collapsed"] = collapsed(rec.get("metrics"), before, backend)
        return r

    rows, before = [], None
    if state.data.get("start"):
        rows.append(row("start (float)", [], state.data["start"]))
        before = state.data["start"].get("metrics")
    for run in runs:
        rec = state.stage(run.name)
        if rec and rec.get("status") == "done":
            rows.append(row(run.name, run.ternary, rec, stage_budget(backend, run)))
            before = rec.get("metrics") or before
    return rows


def format_markdown(rows: list, backend, title: str) -> str:
    unit = "iterations" if backend.budget_key == "max_batches" else "epochs"
    metrics = [label for _, label in backend.metric_names]
    head = ["stage", "ternary layers", "share (layers)", "share (weights)", *metrics, "size (2-bit packed)",
            unit, "train time"]
    lines = [f"## {title}", "", "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        vals = [r["stage"] + (" **(collapsed)**" if r["collapsed"] else ""),
                f"{r['ternary_layers']}/{r['layers']}", f"{r['share_layers']:.0f}%",
                f"{r['share_weights']:.1f}%"]
        vals += ["-" if r[k] is None else f"{r[k]:.2f}" for k, _ in backend.metric_names]
        vals += [_size_text(r["packed_2bit_bytes"]), "-" if r["budget"] is None else str(r["budget"]),
                 _time_text(r["train_seconds"])]
        lines.append("| " + " | ".join(vals) + " |")
    if any(r["collapsed"] for r in rows):
        lines += ["", f"(collapsed): the stage ended below a quarter of the {metrics[0]} it started from; its "
                  "training diverged (lower the learning rate, lengthen the warm-up) and later stages start from it."]
    return "\n".join(lines) + "\n"


def write_report(out: Path, backend, runs, state, title: str) -> dict:
    rows = report_rows(backend, runs, state)
    md = format_markdown(rows, backend, title)
    write_text_atomic(out / "report.md", md)
    buf = io.StringIO()
    if rows:
        w = csv.DictWriter(buf, list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    write_text_atomic(out / "report.csv", buf.getvalue())
    curves = [(run.name, backend.loss_rows(run, out / run.name)) for run in runs]
    png = plot_losses(curves, out / "loss.png", title)
    return {"rows": rows, "markdown": md, "report_md": str(out / "report.md"), "report_csv": str(out / "report.csv"),
            "loss_png": str(png) if png else None}


def plot_losses(curves: list, path: Path, title: str = ""):
    """Each stage's loss (thin) and running average (thick) on a common axis; dashed lines at the borders."""
    curves = [(name, rows) for name, rows in curves if rows]
    if not curves:
        return None
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(9, 4.5))
    offset, colors = 0, plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for k, (name, rows) in enumerate(curves):
        xs = [offset + it for it, _, _ in rows]
        color = colors[k % len(colors)]
        ax.plot(xs, [v for _, v, _ in rows], color=color, lw=0.6, alpha=0.35)
        ax.plot(xs, [a for _, _, a in rows], color=color, lw=1.8, label=name)
        if k:
            ax.axvline(offset, color="0.3", ls="--", lw=1)
        ax.text(offset, 1.0, f" {name}", transform=ax.get_xaxis_transform(), va="bottom", fontsize=9)
        offset += rows[-1][0]
    ax.set_xlabel("iteration (stages end to end)")
    ax.set_ylabel("training loss")
    if all(v > 0 for _, rows in curves for _, v, _ in rows):
        ax.set_yscale("log")
    ax.grid(alpha=0.3)
    ax.legend(loc="upper right")
    ax.set_title(title, pad=18)
    fig.tight_layout()
    return save_figure(fig, path)
