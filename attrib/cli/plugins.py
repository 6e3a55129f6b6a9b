"""``attrib plugins``: the loaded plugins, their hooks, and the extractors and evidence readers they provide."""

from __future__ import annotations

from typing import Any

import click

from .common import emit_json


@click.command()
@click.option("--json", "as_json", is_flag=True)
def plugins(as_json):
    """List loaded plugins and the extractors and evidence readers they provide."""
    from ..host.manager import plugin_infos

    rows: list[dict[str, Any]] = [
        {
            "name": i.name,
            "package": i.package,
            "version": i.version,
            "hooks": i.hooks,
            "extractors": [
                {"name": s.name, "version": s.version, "dim": s.dim, "description": s.description,
                 "options": s.option_help, "identity_options": s.identity_options}
                for s in i.extractors
            ],
            "evidence_readers": [{"name": r.name, "description": r.description} for r in i.evidence_readers],
        }
        for i in plugin_infos()
    ]
    if as_json:
        emit_json(rows)
        return
    for row in rows:
        click.echo(f"{row['name']} ({row['package'] or '?'} {row['version'] or ''})".rstrip())
        for e in row["extractors"]:
            dim = e["dim"] if e["dim"] is not None else "depends on options"
            click.echo(f"  extractor {e['name']} v{e['version']} dim {dim}: {e['description']}")
            for option, text in e["options"].items():
                marker = " (identity)" if e["identity_options"] is None or option in e["identity_options"] else ""
                click.echo(f"    -o {option}=...{marker}  {text}")
        for r in row["evidence_readers"]:
            click.echo(f"  evidence reader {r['name']}: {r['description']}")
