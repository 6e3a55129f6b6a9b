"""``attrib evaluate --report``: metrics.json, ROC (log-scale FAR, the operating point marked) and
confusion-matrix PNGs (matplotlib), with ``--sweep`` a plot of the operating point and closed-set
accuracy against the queries' delivery, and index.html showing them all (:mod:`attrib.report.evaluation`)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import AttribError
from .protocol import Evaluation

if TYPE_CHECKING:
    from matplotlib.figure import Figure


def make_report_dir(out_dir: Path) -> Path:
    try:
        Path(out_dir).mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise AttribError(f"cannot create report folder {out_dir}: {exc.strerror or exc}") from None
    return Path(out_dir)


def write_report(evaluation: Evaluation, out_dir: Path) -> list[Path]:
    """metrics.json, roc-<condition>.png and confusion-<condition>.png per condition (not per sweep block),
    sweep.png with ``--sweep``, then index.html."""
    import json

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from sklearn.metrics import roc_auc_score, roc_curve

    out_dir = make_report_dir(out_dir)
    written = [out_dir / "metrics.json"]
    written[0].write_text(json.dumps(evaluation.data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")

    def save(fig: Figure, name: str) -> None:
        fig.tight_layout()
        written.append(out_dir / name)
        fig.savefig(written[-1], dpi=120)
        plt.close(fig)

    plots: dict[str, list[Path]] = {}
    for block in evaluation.data["conditions"]:
        if block.get("sweep"):
            continue
        slug = slug_of(block)
        plots[block["condition"]] = [out_dir / f"roc-{slug}.png", out_dir / f"confusion-{slug}.png"]
        is_known, margin = evaluation.pooled[block["condition"]]
        fig, ax = plt.subplots(figsize=(5.5, 5))
        floor = 1e-3
        if is_known.any() and not is_known.all():
            fpr, tpr, _ = roc_curve(is_known.astype(int), margin)
            ax.plot(np.maximum(fpr, floor), tpr,
                    label=f"pooled AUROC {roc_auc_score(is_known.astype(int), margin):.3f} (by the margin)")
            far = float(np.mean(margin[~is_known] >= 0))
            ax.plot([max(far, floor)], [float(np.mean(margin[is_known] >= 0))], "o", color="crimson",
                    label=f"operating point: unknown accepted {far:.0%}, known accepted "
                          f"{float(np.mean(margin[is_known] >= 0)):.0%}")
        ax.set_xscale("log")
        ax.set(xlabel=f"unknown accepted (FPR, log scale; below {floor:g} drawn at {floor:g})",
               ylabel="known accepted (TPR)", xlim=(floor, 1), ylim=(0, 1.01),
               title=f"open-set ROC, {block['condition']}")
        ax.grid(True, which="both", linewidth=0.3)
        ax.legend(loc="lower right", fontsize=8)
        save(fig, f"roc-{slug}.png")
        conf = block["confusion"]
        counts = np.array(conf["matrix"], float)
        share = counts / np.maximum(counts.sum(1, keepdims=True), 1)
        fig, ax = plt.subplots(figsize=(1.2 + 0.8 * len(conf["columns"]), 1.2 + 0.6 * len(conf["rows"])))
        ax.imshow(share, cmap="Blues", vmin=0, vmax=1, aspect="auto")
        for (i, j), n in np.ndenumerate(counts):
            ax.text(j, i, f"{int(n)}", ha="center", va="center", color="white" if share[i, j] > 0.5 else "black")
        ax.set_xticks(range(len(conf["columns"])), conf["columns"], rotation=45, ha="right")
        ax.set_yticks(range(len(conf["rows"])), conf["rows"])
        ax.set(xlabel="decision", ylabel="true generator", title=f"confusion, {block['condition']}")
        save(fig, f"confusion-{slug}.png")
    if evaluation.data.get("sweep"):
        save(sweep_figure(evaluation.data), "sweep.png")
        plots["sweep"] = [written[-1]]
    written.append(write_index(evaluation, out_dir, plots))
    return written


def sweep_figure(data: dict[str, Any]) -> Figure:
    """Closed-set accuracy, known accepted and unknown rejected (mean, std as a band) against the queries'
    delivery: solid against the gallery with delivery versions, dash-dotted against the gallery of originals
    only, dashed against the gallery enrolled at that quality."""
    import matplotlib.pyplot as plt

    from .protocol import METRICS, SWEEP_METRICS

    rows = data["sweep"]
    conditions = list(dict.fromkeys(row["condition"] for row in rows))
    fig, axes = plt.subplots(len(conditions), 1, figsize=(12, 4.5 * len(conditions)), squeeze=False)
    text = dict(METRICS)
    for ax, condition in zip(axes[:, 0], conditions):
        mine = [row for row in rows if row["condition"] == condition]
        x = np.arange(len(mine))
        for colour, key in zip(("tab:blue", "tab:green", "tab:red"), SWEEP_METRICS):
            for side, style, marker, label in (("clean_gallery", "-", "o", "gallery with delivery versions"),
                                               ("originals_gallery", "-.", "s", "gallery of originals only"),
                                               ("same_gallery", "--", "o", "every image at that quality")):
                mean = np.array([np.nan if r[side][key]["mean"] is None else r[side][key]["mean"] for r in mine])
                std = np.array([r[side][key]["std"] or 0.0 for r in mine])
                ax.plot(x, mean, style, marker=marker, color=colour,
                        label=f"{text[key].split(' (')[0]}, {label}")
                if side == "clean_gallery":
                    ax.fill_between(x, mean - std, mean + std, color=colour, alpha=0.12, linewidth=0)
        ax.set_xticks(x, [r["delivery"] for r in mine], rotation=35, ha="right")
        ax.set(ylim=(-0.02, 1.02), xlabel="query delivery", ylabel="share of queries",
               title=f"laundering sweep, gallery {condition} ({data['config']['extractor']})")
        ax.grid(True, linewidth=0.3)
        ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1))  # beside the curves, never on them
    return fig


def slug_of(block: dict[str, Any]) -> str:
    return re.sub(r"[^A-Za-z0-9.+-]+", "-", block["condition"]).strip("-") or "none"


def write_index(evaluation: Evaluation, out_dir: Path, plots: dict[str, list[Path]]) -> Path:
    """index.html: the metrics, tables and the plots inlined (one self-contained file)."""
    from ..report.evaluation import evaluation_page, read_plots
    from ..report.html import write_page
    from .protocol import FAMILY_METRICS, METRICS

    names = METRICS + (FAMILY_METRICS if evaluation.data["config"].get("families") else ())
    text = evaluation_page(evaluation.data, {c: read_plots(p) for c, p in plots.items()}, names, evaluation.previews)
    return write_page(out_dir / "index.html", text)
