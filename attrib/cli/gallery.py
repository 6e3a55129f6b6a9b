"""``attrib gallery ...``: list, show, remove, rename, remove-sample, audit, check, rebuild-index, reembed."""

from __future__ import annotations

from pathlib import Path

import click

from .common import (DEFAULT_EXTRACTOR, echo_err, emit_json, extractor_options, gallery_option, open_gallery,
                     progress_bar, report_page, stdout_console, versions_option)


@click.group()
def gallery():
    """Inspect and maintain the gallery."""


@gallery.command("list")
@click.option("--json", "as_json", is_flag=True)
@gallery_option
@click.pass_context
def gallery_list(ctx, as_json):
    """List enrolled generators."""
    with open_gallery(ctx) as g:
        infos = g.generators()
        keys = g.extractor_keys()
    if as_json:
        emit_json({"gallery": str(g.root), "extractors": keys, "generators": [vars(i) for i in infos]})
        return
    if not infos:
        click.echo(f"gallery {g.root} is empty; enroll with `attrib enroll --generator NAME IMAGES...`")
        return
    from rich.table import Table

    table = Table(title=f"gallery {g.root}")
    for column in ("generator", "family", "samples", "threshold", "enrolled"):
        table.add_column(column)
    for i in infos:
        thr = f"{i.threshold:.3f} ({i.threshold_method})" if i.threshold is not None else "-"
        table.add_row(i.name, i.family or "", str(i.samples), thr, i.created_at)
    stdout_console().print(table)
    click.echo(f"extractors: {', '.join(keys) or 'none'}")
    import shlex

    from ..names import RULE, name_problem

    for i in infos:
        problem = name_problem(i.name)
        if problem is not None:
            echo_err(f"note: generator name {i.name!r} does not follow the naming rule ({problem}; {RULE}); "
                     f"rename it with `attrib gallery rename {shlex.quote(i.name)} NEW`")


@gallery.command("show")
@click.argument("name")
@click.option("--json", "as_json", is_flag=True)
@click.option("--report", "report_path", type=click.Path(), default=None, metavar="FILE.html|DIR",
              help="Also write a self-contained HTML page with the samples as a grid of thumbnails: to FILE.html, or "
                   "to DIR/index.html for any other name.")
@gallery_option
@click.pass_context
def gallery_show(ctx, name, as_json, report_path):
    """Show one generator: its samples and thresholds."""
    page = report_page(report_path) if report_path is not None else None
    with open_gallery(ctx) as g:
        detail = g.generator_detail(name)
        if page is not None:
            from ..report.gallery import write_generator_report

            write_generator_report(g, name, page)
            click.echo(f"report: {page}", err=True)
    if as_json:
        emit_json(detail)
        return
    click.echo(f"{detail['name']}  family: {detail['family'] or '-'}  enrolled: {detail['created_at']}")
    if detail["note"]:
        click.echo(f"note: {detail['note']}")
    for c in detail["calibration"]:
        click.echo(f"threshold {c['threshold']:.4f} [{c['method']}] for {c['extractor']} at FAR {c['target_far']:g}")
    click.echo(f"{len(detail['samples'])} samples:")
    for s in detail["samples"]:
        click.echo(f"  {s['sha256'][:12]}  {s['width']}x{s['height']} {s['format']:5s} {s['path']}")


@gallery.command("remove")
@click.argument("name")
@click.option("--json", "as_json", is_flag=True)
@gallery_option
@click.pass_context
def gallery_remove(ctx, name, as_json):
    """Remove a generator and its samples, then re-calibrate."""
    with open_gallery(ctx) as g:
        count = g.remove(name)
    if as_json:
        emit_json({"removed": name, "samples": count})
    else:
        click.echo(f"removed {name} ({count} samples); thresholds re-calibrated")


@gallery.command("rename")
@click.argument("old")
@click.argument("new")
@click.option("--json", "as_json", is_flag=True)
@gallery_option
@click.pass_context
def gallery_rename(ctx, old, new, as_json):
    """Rename generator OLD to NEW (letters, digits and . _ - @ : or spaces), keeping its samples and thresholds;
    audited. OLD may be any name enrolled, e.g. one from before the naming rule."""
    with open_gallery(ctx) as g:
        count = g.rename(old, new)
    if as_json:
        emit_json({"renamed": old, "to": new, "samples": count})
    else:
        click.echo(f"renamed {old!r} to {new!r} ({count} samples)")


@gallery.command("remove-sample")
@click.argument("sample")
@click.option("--json", "as_json", is_flag=True)
@gallery_option
@click.pass_context
def gallery_remove_sample(ctx, sample, as_json):
    """Remove one enrolled sample, e.g. a mislabelled one, then re-calibrate; audited.

    SAMPLE is its sha256 (or its first 8 or more hex digits, as `attrib gallery show NAME` lists them), or its
    path: as stored, or a file whose content is enrolled. A generator's last sample is kept: remove the
    generator instead."""
    with open_gallery(ctx) as g:
        removed = g.remove_sample(sample)
    if as_json:
        emit_json({"removed": removed})
    else:
        click.echo(f"removed sample {removed['sha256'][:12]} ({removed['path']}) from {removed['generator']!r}, "
                   f"{removed['samples_left']} samples left; thresholds re-calibrated")


@gallery.command("audit")
@click.option("--limit", "-n", type=click.IntRange(min=1), default=None, help="Only the last N entries.")
@click.option("--action", type=click.Choice(["enroll", "remove", "remove-sample", "rename", "calibrate", "reembed"]),
              help="Only entries of this kind.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line per entry.")
@gallery_option
@click.pass_context
def gallery_audit(ctx, limit, action, as_json):
    """Show the audit trail: every enroll, remove, remove-sample, rename, calibrate and reembed, oldest first
    (UTC)."""
    with open_gallery(ctx) as g:
        entries = g.audit_log(limit, action)
    for entry in entries:
        if as_json:
            emit_json(entry)
        else:
            detail = entry["detail"]
            text = " ".join(f"{k}={v}" for k, v in detail.items()) if isinstance(detail, dict) else str(detail)
            click.echo(f"{entry['at']}  {entry['action']:9s}  {text}")
    if not entries and not as_json:
        click.echo(f"no audit entries in {g.root}")


@gallery.command("check")
@click.option("--repair", is_flag=True,
              help="Rebuild what the stored vectors allow: index files, whitening, calibration; remove leftovers.")
@click.option("--json", "as_json", is_flag=True, help="The report as one JSON object.")
@gallery_option
@click.pass_context
def gallery_check(ctx, repair, as_json):
    """Verify the gallery: database integrity, a vector for every sample, current whitening and
    thresholds, index files that match the database. Exit status 1 when inconsistent; 0 when only
    stale (fits or index files that the next identify or enroll brings up to date by itself, as
    after a killed writer: said on a `stale:` line, and in the JSON's status)."""
    location = ctx.obj["gallery"]
    # a folder that is not there is said by the check itself, which creates nothing
    there = not isinstance(location, Path) or location.expanduser().exists()
    with open_gallery(ctx, read_only=True, must_exist=there) as g:
        report = g.check(repair=repair)
    if as_json:
        emit_json(report.to_json())
    else:
        for line in report.lines():
            click.echo(line)
    if report.status == "inconsistent":
        ctx.exit(1)


@gallery.command("rebuild-index")
@gallery_option
@click.pass_context
def gallery_rebuild(ctx):
    """Rebuild every FAISS index from the vectors stored in the database."""
    with open_gallery(ctx) as g:
        click.echo(f"rebuilt indexes for: {', '.join(g.rebuild_indexes()) or 'none'}")


@gallery.command("reembed")
@extractor_options
@versions_option
@click.option("--json", "as_json", is_flag=True)
@gallery_option
@click.pass_context
def gallery_reembed(ctx, extractor, options, versions, as_json):
    """Embed every stored sample again (from its original file) with an extractor, and for each of its
    delivery versions (those the gallery holds, and --versions)."""
    from ..extractors.resolve import bind_extractor

    with open_gallery(ctx) as g:
        bound = bind_extractor(extractor or DEFAULT_EXTRACTOR, options)
        total = sum(i.samples for i in g.generators()) * (1 + len(g.ladder(bound, versions)))
        with progress_bar(total, f"re-embedding with {bound.name}") as advance:
            report = g.reembed(bound, progress=advance, versions=versions)
    if as_json:
        emit_json(vars(report))
    else:
        click.echo(
            f"{report.extractor}: embedded {report.embedded}, already present {report.present}, "
            f"problems {len(report.problems)}, uploaded without a copy {len(report.uploaded)}, "
            f"thumbnails added {report.thumbnails_added}"
            + "".join(f", {rung} version embedded {count}" for rung, count in report.versions.items())
        )
        for problem in report.problems:
            click.echo(f"  {problem}")
        if report.uploaded:
            click.echo(f"{len(report.uploaded)} samples were uploaded to `attrib serve` without a kept copy "
                       "(stored as upload:NAME), so there is no file to read again: enroll the same images again "
                       "from files (`attrib enroll --generator NAME FILES...` records their paths), or upload "
                       "them again to a server started with --keep-uploads DIR")
            for sample in report.uploaded:
                click.echo(f"  {sample}")
    if not report.complete:
        ctx.exit(1)
