"""``attrib evaluate --report``: metrics.json, ROC and confusion-matrix PNGs (matplotlib)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import AttribError
from .protocol import Evaluation


def make_report_dir(out_dir: Path) -> Path:
    try:
        Path(out_dir).mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise AttribError(f"cannot create report folder {out_dir}: {exc.strerror or exc}") from None
    return Path(out_dir)


def write_report(evaluation: Evaluation, out_dir: Path) -> list[Path]:
    """metrics.json plus roc-<condition>.png and confusion-<condition>.png per condition."""
    import json

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from sklearn.metrics import roc_auc_score, roc_curve

    from ..synthetic.conditions import parse_condition

    out_dir = make_report_dir(out_dir)
    written = [out_dir / "metrics.json"]
    written[0].write_text(json.dumps(evaluation.data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")

    def save(fig, name: str) -> None:
        fig.tight_layout()
        written.append(out_dir / name)
        fig.savefig(written[-1], dpi=120)
        plt.close(fig)

    for block in evaluation.data["conditions"]:
        slug = parse_condition(block["condition"]).slug
        is_known, score = evaluation.pooled[block["condition"]]
        fig, ax = plt.subplots(figsize=(5, 5))
        if is_known.any() and not is_known.all():
            fpr, tpr, _ = roc_curve(is_known.astype(int), score)
            ax.plot(fpr, tpr, label=f"pooled AUROC {roc_auc_score(is_known.astype(int), score):.3f}")
        ax.plot([0, 1], [0, 1], "--", color="gray", linewidth=1)
        ax.set(xlabel="unknown accepted (FPR)", ylabel="known accepted (TPR)", xlim=(0, 1), ylim=(0, 1.01),
               title=f"open-set ROC, {block['condition']}")
        ax.legend(loc="lower right")
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
    return written
