"""Batch identification and verification: paths from arguments, lists and standard input, records
appended to JSON lines or CSV, --resume, one error per bad path, the summary (attrib.batch)."""

from __future__ import annotations

import csv
import io
import itertools
import json
import os
from pathlib import Path

import pytest
from click.testing import CliRunner

from attrib.batch.output import BatchOutputError, OutputFile
from attrib.batch.records import IDENTIFY_COLUMNS, VERIFY_COLUMNS, RecordFormat, csv_row
from attrib.batch.run import Summary
from attrib.batch.sources import BatchInputError, PathSource, path_key, read_list
from attrib.cli import cli
from attrib.gallery import Gallery
from attrib.host.manager import pm

from conftest import make_images, register_plugin
from gallery_helpers import CohortColorMean, bound


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    """A gallery of red, green and blue (a colour-mean extractor with its own small cohort) and a
    folder of queries: 4 red, 3 blue, 3 gray (never enrolled)."""
    root = tmp_path_factory.mktemp("batch")
    plugin = register_plugin("test-batch-colormean", CohortColorMean)
    try:
        with Gallery(root / "gallery") as gallery:
            for name in ("red", "green", "blue"):
                gallery.enroll(name, make_images(root / "enroll" / name, name, 6), bound())
        queries = root / "queries"
        (make_images(queries, "red", 4, seed=5), make_images(queries, "blue", 3, seed=6),
         make_images(queries, "gray", 3, seed=7))
        yield root / "gallery", queries
    finally:
        pm.unregister(plugin)


def attrib(gallery, *args, expect=0, stdin=None):
    result = CliRunner().invoke(cli, ["--gallery", str(gallery), *map(str, args)], input=stdin,
                                catch_exceptions=False)
    assert expect is None or result.exit_code == expect, result.output
    return result


def records(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def queries_of(folder: Path) -> list[Path]:
    return sorted(folder.iterdir())


# -- where paths come from --------------------------------------------------------


def test_lists_are_read_line_by_line_or_nul_separated_keeping_any_bytes():
    lines = io.BytesIO(b"a.png\r\n\n  spaced name.png\nraw\xff.png\nlast.png")
    assert list(read_list(lines)) == ["a.png", "  spaced name.png", os.fsdecode(b"raw\xff.png"), "last.png"]
    nul = io.BytesIO(b"a\nb.png\0\0c.png\0d.png")
    assert list(read_list(nul, null=True)) == ["a\nb.png", "c.png", "d.png"]


def test_paths_are_streamed_from_an_endless_list():
    def endless():
        for i in itertools.count():
            yield f"img{i}.png\n".encode()

    class Endless(io.RawIOBase):
        lines = endless()

        def __iter__(self):
            return self.lines

    source = PathSource(("-",), stdin=Endless())
    assert [str(p) for p in itertools.islice(source, 3)] == ["img0.png", "img1.png", "img2.png"]
    assert source.count() is None


def test_arguments_expand_folders_and_lists_name_files_in_order(tmp_path):
    folder = tmp_path / "f"
    images = make_images(folder, "red", 2)
    listed = tmp_path / "list.txt"
    listed.write_text(f"{folder}\n{images[1]}\n")
    source = PathSource((str(images[0]), "-", str(folder)), (str(listed),), stdin=io.BytesIO(b"x.png\n"))
    assert list(source) == [images[0], Path("x.png"), *images, folder, images[1]]
    assert PathSource((str(folder),), (str(listed),)).count() == 4


@pytest.mark.parametrize("arguments, lists, words", [
    ((), (), "no paths given"),
    (("-",), ("-",), "standard input (`-`) can be read once"),
    (("a.png",), ("missing-list.txt",), "--files-from missing-list.txt: no such file"),
    (("a.png", "b"), (), "no such file or folder: a.png, b"),
])
def test_unusable_sources_are_refused_before_anything_runs(tmp_path, monkeypatch, arguments, lists, words):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(BatchInputError, match=words.replace("(", r"\(").replace(")", r"\)")):
        PathSource(arguments, lists)


def test_missing_arguments_are_not_an_error_when_a_list_is_given(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "empty").mkdir()
    assert list(PathSource(("missing.png",), ("-",), stdin=io.BytesIO(b""))) == [Path("missing.png")]
    with pytest.raises(BatchInputError, match="no image files found in empty"):
        list(PathSource(("empty",)))


def test_path_keys_match_what_records_write():
    assert path_key("./a//b.png") == "a/b.png" == path_key(Path("a/b.png"))
    assert path_key(os.fsdecode(b"raw\xff.png")) == "raw\\xff.png"


# -- records ------------------------------------------------------------------------


def test_csv_rows_flatten_records_and_error_rows_hold_only_path_and_error():
    record = {"path": "a.png", "decision": "red", "match": None, "candidates": [
        {"generator": "red", "score": 0.9, "threshold": 0.5}, {"generator": "blue", "score": 0.25, "threshold": 0.5}],
        "explain": {"flags": ["f1", "f2"]}, "provenance": {"summary": "file says: X"}}
    row = dict(zip(IDENTIFY_COLUMNS, csv_row(record, IDENTIFY_COLUMNS)))
    assert row["candidates"] == "red 0.900000/0.500000; blue 0.250000/0.500000"
    assert (row["flags"], row["provenance"], row["decision"], row["generator"]) == ("f1; f2", "file says: X", "red", "")
    error = dict(zip(VERIFY_COLUMNS, csv_row({"path": "b.png", "error": "b.png: no such file"}, VERIFY_COLUMNS)))
    assert {k for k, v in error.items() if v} == {"path", "error"}


def test_summary_counts_outcomes_and_names_the_most_frequent():
    summary = Summary(skipped=2, elapsed=2.0, interrupted=True)
    summary.outcomes.update({f"g{i}": 10 - i for i in range(10)})
    summary.failed = 3
    line = summary.line("identify")
    assert line.startswith("identify: interrupted after 58 images in 2.0 s (29.0 images/s): g0 10, g1 9")
    assert "2 others 3" in line and "3 failed" in line and "2 skipped" in line
    assert summary.exit_status == 130 and Summary(failed=1).exit_status == 1 and Summary().exit_status == 0


# -- the commands --------------------------------------------------------------------


def test_output_file_holds_the_json_records_of_stdout_and_is_appended_to(setup, tmp_path):
    gallery, queries = setup
    printed = attrib(gallery, "identify", "-e", "colormean", "--json", queries).stdout
    out = tmp_path / "out.jsonl"
    result = attrib(gallery, "identify", "-e", "colormean", "--output", out, queries)
    assert result.stdout == ""
    assert records(out) == [json.loads(line) for line in printed.splitlines()]
    assert [r["decision"] for r in records(out)].count("red") == 4
    assert "identify: 10 images in" in result.stderr and "red 4" in result.stderr and "0 failed" in result.stderr
    attrib(gallery, "identify", "-e", "colormean", "--output", out, queries_of(queries)[0])
    assert len(records(out)) == 11


def test_paths_from_stdin_and_lists_with_missing_ones_answered_in_order(setup, tmp_path):
    gallery, queries = setup
    files = queries_of(queries)
    listed = tmp_path / "list0"
    listed.write_bytes(b"\0".join(os.fsencode(p) for p in [files[2], tmp_path / "gone.png"]) + b"\0")
    stdin = f"{files[0]}\n{tmp_path / 'missing.png'}\n{files[1]}\n"
    out = tmp_path / "out.jsonl"
    result = attrib(gallery, "identify", "-e", "colormean", "--output", out, "-", expect=1, stdin=stdin)
    assert "3 images" in result.stderr and "1 failed" in result.stderr
    result = attrib(gallery, "identify", "-e", "colormean", "--output", out, "--files-from", listed, "-0", expect=1)
    rows = records(out)
    assert [r["path"] for r in rows] == [str(p) for p in (files[0], tmp_path / "missing.png", files[1], files[2],
                                                          tmp_path / "gone.png")]
    assert [r.get("error") for r in rows] == [None, f"{tmp_path / 'missing.png'}: no such file", None, None,
                                              f"{tmp_path / 'gone.png'}: no such file"]


def test_resume_skips_what_is_answered_and_redoes_a_torn_last_record(setup, tmp_path):
    gallery, queries = setup
    files = queries_of(queries)
    out = tmp_path / "out.jsonl"
    attrib(gallery, "identify", "-e", "colormean", "--output", out, *files[:4])
    complete = out.read_bytes()
    torn = complete.splitlines(keepends=True)[3][:50]
    out.write_bytes(b"".join(complete.splitlines(keepends=True)[:3]) + torn)  # killed while writing the 4th
    result = attrib(gallery, "identify", "-e", "colormean", "--output", out, "--resume", queries)
    assert "dropped a last record cut off by an interrupted run (50 bytes)" in result.stderr
    assert "7 images" in result.stderr and "3 skipped" in result.stderr
    rows = records(out)
    assert sorted(r["path"] for r in rows) == [str(p) for p in files]
    result = attrib(gallery, "identify", "-e", "colormean", "--output", out, "--resume", queries)
    assert "0 images" in result.stderr and "10 skipped" in result.stderr and len(records(out)) == 10


def test_csv_output_for_identify_and_verify_and_resume_from_it(setup, tmp_path):
    gallery, queries = setup
    files = queries_of(queries)
    out = tmp_path / "out.csv"
    attrib(gallery, "identify", "-e", "colormean", "--output", out, *files[:5], tmp_path / "nope.png", expect=1)
    result = attrib(gallery, "identify", "-e", "colormean", "--output", out, "--resume", queries,
                    tmp_path / "nope.png", expect=1)
    assert "1 path answered with an error before is tried again" in result.stderr
    with open(out, newline="") as f:
        rows = list(csv.DictReader(f))
    assert tuple(rows[0]) == IDENTIFY_COLUMNS and len(rows) == 12  # nope.png tried again: still missing
    assert sorted(r["path"] for r in rows) == sorted([*map(str, files), *[str(tmp_path / "nope.png")] * 2])
    assert {r["decision"] for r in rows if r["path"].endswith("nope.png")} == {""}
    by_path = {r["path"]: r for r in rows}
    assert [by_path[str(p)]["decision_level"] for p in files].count("generator") >= 7

    printed = attrib(gallery, "verify", "-e", "colormean", "-g", "blue", "--format", "csv", queries).stdout
    table = list(csv.DictReader(io.StringIO(printed)))
    assert tuple(table[0]) == VERIFY_COLUMNS
    assert [r["match"] for r in table] == ["true"] * 3 + ["false"] * 7  # blue_ sorts before gray_ and red_


def test_verify_writes_records_and_resumes(setup, tmp_path):
    gallery, queries = setup
    out = tmp_path / "verify.jsonl"
    files = queries_of(queries)
    attrib(gallery, "verify", "-e", "colormean", "-g", "red", "--output", out, *files[:2])
    attrib(gallery, "verify", "-e", "colormean", "-g", "red", "--output", out, "--resume", queries)
    rows = records(out)
    assert [r["path"] for r in rows] == [str(p) for p in files]
    assert [r["match"] for r in rows] == [False] * 6 + [True] * 4


@pytest.mark.parametrize("args, content, words", [
    (["--resume"], None, "--resume needs --output FILE"),
    (["--json", "--format", "csv"], None, "--json prints JSON lines"),
    (["--output", "{out}.csv"], '{"schema": 3, "path": "a.png"}\n', "holds JSON lines, not CSV; drop --format csv"),
    (["--output", "{out}.csv"], "path,decision\na.png,red\n", "its CSV header (path,decision) is not this command's"),
    (["--output", "{out}", "--resume"], '{"path": "a.png"}\nnot json\n', "line 2 is not a JSON record"),
    (["--files-from", "{out}.missing"], None, "--files-from"),
    (["--output", os.devnull, "--resume"], None, "--resume needs a regular file"),
    (["-o", "{out}"], None, "to append records to a file use --output"),
])
def test_unusable_options_and_outputs_are_one_line(setup, tmp_path, args, content, words):
    gallery, queries = setup
    out = str(tmp_path / "out")
    args = [a.format(out=out) for a in args]
    if content is not None:
        Path(args[1]).write_text(content)
    before = Path(args[1]).read_bytes() if content is not None else None
    result = attrib(gallery, "identify", "-e", "colormean", *args, queries, expect=None)
    assert result.exit_code in (1, 2)
    assert words in result.output and "Traceback" not in result.output
    if before is not None:
        assert Path(args[1]).read_bytes() == before  # refused, never rewritten


def test_an_output_file_is_written_by_one_run_at_a_time(tmp_path):
    fmt = RecordFormat("jsonl", IDENTIFY_COLUMNS)
    first = OutputFile(tmp_path / "out.jsonl", fmt)
    try:
        with pytest.raises(BatchOutputError, match="another attrib run is writing to it"):
            OutputFile(tmp_path / "out.jsonl", fmt)
        first.write({"path": "a.png", "decision": "red"})
    finally:
        first.close()
    second = OutputFile(tmp_path / "out.jsonl", fmt, resume=True)
    second.close()
    assert second.done == {"a.png"}


def test_resume_tries_again_the_paths_that_were_errors_once_the_file_is_fixed(setup, tmp_path):
    gallery, queries = setup
    files = queries_of(queries)
    broken = tmp_path / "late.png"
    broken.write_bytes(b"not an image yet")
    out = tmp_path / "out.jsonl"
    attrib(gallery, "identify", "-e", "colormean", "--output", out, *files[:3], broken, expect=1)
    assert records(out)[-1]["error"].startswith(str(broken))
    broken.write_bytes(files[0].read_bytes())  # the file is fixed (here: a copy of the first query)
    result = attrib(gallery, "identify", "-e", "colormean", "--output", out, "--resume", *files[:3], broken)
    assert "1 path answered with an error before is tried again" in result.stderr
    assert "1 image" in result.stderr and "3 skipped" in result.stderr and "0 failed" in result.stderr
    rows = records(out)
    assert len(rows) == 5 and rows[-1]["path"] == str(broken)
    assert rows[-1]["sha256"] == rows[0]["sha256"] and rows[-1]["decision"] == rows[0]["decision"] != "unknown"
    result = attrib(gallery, "identify", "-e", "colormean", "--output", out, "--resume", *files[:3], broken)
    assert "tried again" not in result.stderr and "4 skipped" in result.stderr and len(records(out)) == 5


def test_resume_reads_error_records_of_csv_and_of_verify(tmp_path):
    out = tmp_path / "out.csv"
    fmt = RecordFormat("csv", VERIFY_COLUMNS)
    first = OutputFile(out, fmt)
    first.write({"path": "a.png", "match": True})
    first.write({"path": "b.png", "error": "b.png: no such file"})
    first.write({"path": "c.png", "error": "c.png: no such file"})
    first.write({"path": "c.png", "match": False})  # answered on a later try
    first.close()
    notes = []
    again = OutputFile(out, fmt, resume=True, notify=notes.append)
    again.close()
    assert again.done == {"a.png", "c.png"} and again.existing.retried == {"b.png"}
    assert notes == [f"{out}: 1 path answered with an error before is tried again"]


def test_the_progress_rate_is_the_overall_rate_of_images_answered():
    from rich.console import Console

    from attrib.cli.common import batch_progress, overall_rate

    assert overall_rate(22, 1.0) == "22.0 images/s" and overall_rate(0, 3.0) == "" and overall_rate(5, None) == ""
    console = Console(file=io.StringIO(), force_terminal=True, width=160)
    clock = [100.0]
    with batch_progress("identify", console=console, get_time=lambda: clock[0]) as (answered, skipped):
        skipped(10_000)  # resumed: thousands of paths skipped in an instant are no images answered
        clock[0] += 2.0
        answered(44)
    frames = console.file.getvalue()
    assert "22.0 images/s" in frames  # 44 images in 2 s, as the summary line counts them
    assert "5022.0 images/s" not in frames and "10044/?" in frames.replace(" ", "")
