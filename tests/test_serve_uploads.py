"""Samples enrolled over HTTP: stored as ``upload:NAME`` (which ``gallery reembed`` counts apart, with the
fix) or, with an uploads folder, as their copy kept there by content, which ``gallery reembed`` reads."""

from __future__ import annotations

import hashlib
import tempfile
from pathlib import Path

import pytest
from click.testing import CliRunner

pytest.importorskip("fastapi", reason="attrib serve needs the serve extra: pip install 'attrib[serve]'")

from attrib.cli import cli  # noqa: E402
from attrib.gallery import Gallery  # noqa: E402
from attrib.serve.settings import ServeSettings  # noqa: E402

from conftest import make_images  # noqa: E402
from gallery_helpers import CohortColorMean  # noqa: E402
from test_serve import TOKEN, client, cli_json, own_gallery, served, upload  # noqa: E402,F401

AUTH = {"Authorization": f"Bearer {TOKEN}"}


class OtherColorMean(CohortColorMean):
    """A second extractor, so that ``gallery reembed`` has every sample to read again."""

    name = "colormean-b"


def stored(gallery: Path, generator: str) -> dict[str, str]:
    """{sha256: stored path} of the samples of ``generator``."""
    with Gallery(gallery) as g:
        return {s["sha256"]: s["path"] for s in g.generator_detail(generator)["samples"]}


def sha256(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def reembed(gallery: Path, expect: int):
    result = CliRunner().invoke(cli, ["--gallery", str(gallery), "gallery", "reembed", "-e", "colormean-b"],
                                catch_exceptions=False)
    assert result.exit_code == expect, result.output
    return result.output


def enroll(http, generator: str, files) -> dict:
    answer = http.post("/v1/enroll", files=files, data={"generator": generator}, headers=AUTH)
    assert answer.status_code == 200, answer.text
    return answer.json()


def test_without_a_folder_uploads_are_placeholders_that_reembed_counts_apart(own_gallery, tmp_path, plugin):
    plugin(OtherColorMean)
    gray = make_images(tmp_path / "gray", "gray", 3, seed=21)
    with client(own_gallery, token=TOKEN) as http:
        assert enroll(http, "gray", upload(*gray))["added"] == [p.name for p in gray]
    assert stored(own_gallery, "gray") == {sha256(p): f"upload:{p.name}" for p in gray}
    shown = CliRunner().invoke(cli, ["--gallery", str(own_gallery), "gallery", "show", "gray"]).output
    assert all(f"upload:{p.name}" in shown for p in gray), shown

    output = reembed(own_gallery, expect=1)
    assert "problems 0, uploaded without a copy 3" in output
    assert "no such file" not in output and "--keep-uploads DIR" in output and "attrib enroll" in output
    as_json = cli_json(own_gallery, "gallery", "reembed", "-e", "colormean-b", "--json", expect=1)[0]
    assert as_json["problems"] == [] and len(as_json["uploaded"]) == 3 and as_json["embedded"] == 0
    assert all("upload:" in line for line in as_json["uploaded"])

    summary = cli_json(own_gallery, "enroll", "-g", "gray", "-e", "colormean", "--json", *gray)[0]  # the fix given
    assert summary["added"] == [] and all("upload:" in s["reason"] and "replaced" in s["reason"]
                                          for s in summary["skipped"])
    assert stored(own_gallery, "gray") == {sha256(p): str(p.resolve()) for p in gray}
    assert "uploaded without a copy 0" in reembed(own_gallery, expect=0)


def test_with_a_folder_uploads_are_kept_by_content_and_read_again(own_gallery, tmp_path, plugin):
    plugin(OtherColorMean)
    kept = tmp_path / "kept"
    gray = make_images(tmp_path / "gray", "gray", 3, seed=31)
    with client(own_gallery, token=TOKEN) as http:  # the first one uploaded where no copy is kept
        enroll(http, "gray", upload(gray[0]))
    with client(own_gallery, token=TOKEN, uploads_dir=kept) as http:
        summary = enroll(http, "gray", upload(*gray))
        assert summary["added"] == [p.name for p in gray[1:]]
        assert summary["skipped"][0]["path"] == gray[0].name and "upload:" in summary["skipped"][0]["reason"]
        paths = stored(own_gallery, "gray")
        assert paths == {sha256(p): str((kept / sha256(p)[:2] / f"{sha256(p)}.png").resolve()) for p in gray}
        assert all(sha256(Path(path)) == digest for digest, path in paths.items())
        inodes = {path: Path(path).stat().st_ino for path in paths.values()}

        renamed = [("files", ("again.png", gray[1].read_bytes(), "image/png"))]
        again = enroll(http, "gray", renamed)
        assert again["skipped"] == [{"path": "again.png", "reason": "already enrolled under 'gray'"}]
        elsewhere = http.post("/v1/enroll", files=renamed, data={"generator": "red"}, headers=AUTH)
        assert elsewhere.status_code == 422 and "already enrolled under generator 'gray'" in elsewhere.text
        bad = http.post("/v1/enroll", files=[("files", ("bad.png", b"not a picture", "image/png"))],
                        data={"generator": "gray"}, headers=AUTH)
        assert bad.status_code == 422
    assert {path: Path(path).stat().st_ino for path in paths.values()} == inodes  # reused, never rewritten
    assert sorted(p for p in kept.rglob("*") if p.is_file()) == sorted(Path(p) for p in paths.values())

    output = reembed(own_gallery, expect=0)
    assert "problems 0, uploaded without a copy 0" in output
    with Gallery(own_gallery) as g:
        assert sum(1 for s in g.generator_detail("gray")["samples"]) == 3
        assert "colormean-b@1" in g.extractor_keys()


@pytest.mark.parametrize("keep", [False, True])
def test_an_uploaded_name_never_writes_outside_the_folder(own_gallery, tmp_path, keep):
    kept = tmp_path / "deep" / "kept"
    outside = tmp_path / "outside.png"
    images = make_images(tmp_path / "images", "gray", 5, seed=41)
    names = ["../../x.png", "..\\..\\y.png", str(outside), "a/../../../z.png", ".."]
    files = [("files", (name, p.read_bytes(), "image/png")) for name, p in zip(names, images)]
    before = {p for p in tmp_path.parent.rglob("*") if tmp_path not in p.parents}
    with client(own_gallery, token=TOKEN, uploads_dir=kept if keep else None) as http:
        summary = enroll(http, "gray", files)
    assert summary["added"] == ["x.png", "y.png", "outside.png", "z.png", "upload-5"]
    # nothing new beside this test's folder (what other tests' galleries drop meanwhile, such as a closing
    # SQLite's -wal and -shm files, is not this test's concern)
    assert {p for p in tmp_path.parent.rglob("*") if tmp_path not in p.parents} - before == set()
    assert not outside.exists() and not (tmp_path / "x.png").exists() and not (tmp_path / "deep" / "x.png").exists()
    assert not any(Path(tempfile.gettempdir(), name).exists() for name in ("x.png", "y.png", "z.png"))
    paths = sorted(stored(own_gallery, "gray").values())
    if keep:
        assert all(kept.resolve() in Path(p).parents for p in paths)
        assert len([p for p in kept.rglob("*") if p.is_file()]) == 5
    else:
        assert paths == sorted(f"upload:{name}" for name in summary["added"]) and not kept.exists()


def test_the_uploads_folder_comes_from_the_environment_or_the_option(served, tmp_path, monkeypatch):
    settings = ServeSettings.from_environment({"ATTRIB_UPLOADS_DIR": "kept"})
    assert settings.uploads_dir == Path.cwd() / "kept"
    assert ServeSettings.from_environment({}).uploads_dir is None
    (tmp_path / "file").write_text("not a folder")
    for name in ("ATTRIB_UPLOADS_DIR", "ATTRIB_GALLERY"):  # `attrib serve` sets them; put back afterwards
        monkeypatch.setenv(name, "")
    result = CliRunner().invoke(cli, ["--gallery", str(served[0]), "serve", "--keep-uploads",
                                      str(tmp_path / "file" / "kept")])
    assert result.exit_code == 1
    line = result.output.strip()
    assert "\n" not in line and line.startswith(f"Error: ATTRIB_UPLOADS_DIR='{tmp_path / 'file' / 'kept'}'")
    assert "--keep-uploads DIR" in line
