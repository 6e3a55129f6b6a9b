"""The ``index.html`` of ``attrib evaluate --report DIR``: per condition the metrics (the operating
point first), the per-generator table, the ROC and confusion plots inlined, and the confusion matrix
as a table and the worst mistakes (pictured as scored, named by their files in the data folder); with
``--sweep``, the laundering curve and its table (one row per query delivery)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterable

from .html import esc, image_tag, name_html, page, path_html, placeholder, table


def _stat(s: dict[str, Any] | None, pct: bool) -> str:
    if not s or s.get("mean") is None:
        return "-"
    fmt = "{:.1%}" if pct else "{:.3f}"
    return fmt.format(s["mean"]) + ("" if s.get("std") is None else " ± " + fmt.format(s["std"]))


def mistakes_html(mistakes: list[dict[str, Any]], previews: dict[str, tuple[bytes, str]] | None = None) -> str:
    """The wrong decisions, the most confident first, each in its own box headed by what went wrong: the
    query and the nearest enrolled samples that led there, named by their files in the data folder and
    shown as they were scored (``previews``, by sha256, which the evaluation made before deleting its
    copies; else made from the data folder's file when it is there, else a placeholder naming it)."""
    from .identify import exemplar_figure, exemplar_images

    if not mistakes:
        return "<p>No wrong decision.</p>"
    images = dict(previews or {})
    wanted = {item.get("sha256") or item.get("path") or "": item.get("path")
              for m in mistakes for item in (m, *m["nearest"])}
    images.update(exemplar_images(None, {key: path for key, path in wanted.items() if key not in images}))
    boxes = []
    for n, m in enumerate(mistakes, 1):
        key = m.get("sha256") or m["path"]
        shown = images.get(key)
        query = image_tag(*shown, alt=m["path"], css="thumb") if shown else placeholder(m["path"])
        confidence = "-" if m["confidence"] is None else f"{m['confidence']:.2f}"
        boxes.append(f'<div class="mistake"><h4>{n}. a {esc(m["truth"])} image decided as {esc(m["decision"])} '
                     f"(confidence {confidence})</h4>"
                     f'<p class="muted">{path_html(m["path"])}: {esc(m["reason"])}</p><div class="grid">'
                     f'<figure class="query" title="{esc(m["path"])}">{query}<figcaption>query<br>'
                     f'<span class="muted">{name_html(m["path"])}</span></figcaption></figure>'
                     + "".join(exemplar_figure(e, images) for e in m["nearest"]) + "</div></div>")
    return ('<p class="muted">Each box: the query (red frame) and its nearest enrolled samples with their '
            "similarity, as they were scored under this condition; names are the files in the data folder.</p>"
            + "".join(boxes))


def condition_html(block: dict[str, Any], metric_names: Iterable[tuple[str, str]],
                   plots: list[tuple[str, bytes]], previews: dict[str, tuple[bytes, str]] | None = None) -> str:
    """One condition's metrics, per-generator table, plots (``(file name, PNG bytes)``), matrix and worst
    mistakes (pictures from ``previews``, see :func:`mistakes_html`)."""
    metrics = table(["metric", "mean ± std over repeats", "s.e. of the mean"],
                    [[text, _stat(block["metrics"].get(key), False),
                      "-" if (block["metrics"].get(key) or {}).get("sem") is None
                      else f"{block['metrics'][key]['sem']:.3f}"]
                     for key, text in metric_names if key in block["metrics"]], numeric={1, 2})
    rows = [[label, row["enrolled_per_repeat"] if row["known"] else "no (unknown)", row["queries"],
             _stat(row["accepted"], True), _stat(row["correct_decision"], True), _stat(row["recall"], True)]
            for label, row in block["per_generator"].items()]
    generators = table(["generator", "enrolled per repeat", "queries", "accepted", "right decision",
                        "closed-set top-1 / rejected"], rows, numeric={1, 2, 3, 4, 5})
    conf = block["confusion"]
    matrix = table(["truth \\ decision", *conf["columns"]],
                   [[label, *counts] for label, counts in zip(conf["rows"], conf["matrix"])],
                   numeric=set(range(1, len(conf["columns"]) + 1)))
    pictures = "".join(f"<figure style=\"max-width:none\">{image_tag(data, 'image/png', name, 'plot')}"
                       f"<figcaption>{esc(name)}</figcaption></figure>" for name, data in plots)
    return (f"<section><h2>{esc(block['condition'])}</h2>"
            f"<p class=\"muted\">{block['queries_per_repeat']:.1f} queries per repeat; "
            f"{block.get('wall_s', 0):.1f} s</p>"
            f"<h3>Metrics</h3>{metrics}<h3>Per generator</h3>{generators}"
            f"<div class=\"grid\">{pictures}</div>"
            f"<h3>Confusion (rows: truth, columns: decision; summed over repeats)</h3>{matrix}"
            + (f"<h3>Worst mistakes (the most confident wrong decisions, with the nearest enrolled samples)</h3>"
               f"{mistakes_html(block['worst_mistakes'], previews)}" if "worst_mistakes" in block else "")
            + "</section>")


SWEEP_SIDES = (("originals_gallery", "gallery of originals only"), ("clean_gallery", "gallery with delivery versions"),
               ("same_gallery", "every image at that quality"))


def sweep_html(rows: list[dict[str, Any]], metric_names: Iterable[tuple[str, str]],
               plots: list[tuple[str, bytes]]) -> str:
    """The laundering sweep: its curve and a row per (gallery condition, query delivery) with the
    ``metric_names`` against the gallery of originals only, the gallery with delivery versions, and
    the gallery enrolled at that quality."""
    names = list(metric_names)
    header = ["gallery", "query delivery"] + [f"{side}: {text}" for _, side in SWEEP_SIDES for _, text in names]
    body = [[row["condition"], row["delivery"]] + [_stat(row[side].get(key), True)
                                                   for side, _ in SWEEP_SIDES for key, _ in names]
            for row in rows]
    pictures = "".join(f"<figure style=\"max-width:none\">{image_tag(data, 'image/png', name, 'plot')}"
                       f"<figcaption>{esc(name)}</figcaption></figure>" for name, data in plots)
    return ("<section><h2>Laundering sweep: the queries' delivery</h2>"
            "<p class=\"muted\">The same draws for every delivery: the queries written as they travel (a .jpg "
            "for JPEG, a .webp for WebP) against the gallery enrolled losslessly without delivery versions "
            "(originals only), the same gallery with its delivery versions (each sample also embedded after "
            "each lossy coding of the ladder; the query scored against the version nearest its delivery), "
            "and a gallery enrolled under the same delivery (every image at that quality). Mean ± std over "
            "repeats.</p>"
            f"<div class=\"grid\">{pictures}</div>"
            + table(header, body, numeric=set(range(2, len(header)))) + "</section>")


def evaluation_page(data: dict[str, Any], plots: dict[str, list[tuple[str, bytes]]],
                    metric_names: Iterable[tuple[str, str]], previews: dict[str, tuple[bytes, str]] | None = None
                    ) -> str:
    """The whole page for an evaluation's JSON ``data``; ``plots`` maps a condition to its PNGs (``"sweep"``
    to the sweep's curve); ``previews`` the worst mistakes' pictures by sha256. Blocks that only a sweep row
    shows get no section of their own."""
    cfg = data["config"]
    setup = table(["setting", "value"], [
        ["data", cfg["data_dir"]], ["known", ", ".join(cfg["known"])], ["unknown", ", ".join(cfg["unknown"]) or "-"],
        ["extractor", cfg["extractor"]], ["shots (K)", cfg["shots"]], ["repeats", cfg["repeats"]],
        ["seed", cfg["seed"]], ["target FAR (operating point)", cfg.get("target_far")]])
    notes = "".join(f"<li>{esc(n)}</li>" for n in data.get("notes", []))
    body = (f"<h1>attrib evaluate</h1>{setup}"
            + (f"<h3>Notes</h3><ul>{notes}</ul>" if notes else "")
            + "".join(condition_html(block, metric_names, plots.get(block["condition"], []), previews)
                      for block in data["conditions"] if not block.get("sweep"))
            + (sweep_html(data["sweep"], [(k, t) for k, t in metric_names if k in data["sweep"][0]["clean_gallery"]],
                          plots.get("sweep", [])) if data.get("sweep") else "")
            + f"<p class=\"muted\">total {data.get('wall_s', 0):.1f} s</p>")
    return page(f"attrib evaluate: {cfg['extractor']}", body)


def read_plots(paths: list[Path]) -> list[tuple[str, bytes]]:
    return [(Path(p).name, Path(p).read_bytes()) for p in paths]
