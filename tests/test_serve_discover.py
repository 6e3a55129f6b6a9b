"""`attrib serve --discover N`: the worker keeps its last N unknown identify answers (never the known ones,
never the upload files), GET /v1/discover groups them into the candidates of `attrib discover --json`, a
candidate is enrolled from the kept bytes with the token, and it is all off (404) unless asked for."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

pytest.importorskip("fastapi", reason="attrib serve needs the serve extra: pip install 'attrib[serve]'")
pytest.importorskip("sklearn", reason="discovery groups with scikit-learn: pip install 'attrib[eval]'")
from fastapi.testclient import TestClient  # noqa: E402

from attrib.cli import cli  # noqa: E402
from attrib.discovery.photos import camera_of, photo_evidence  # noqa: E402
from attrib.errors import AttribError  # noqa: E402
from attrib.gallery import Gallery  # noqa: E402
from attrib.host.manager import pm  # noqa: E402
from attrib.serve import ServeSettings, create_app  # noqa: E402
from attrib.serve import discover as serve_discover  # noqa: E402

from conftest import make_images, register_plugin  # noqa: E402
from gallery_helpers import CohortColorMean, bound  # noqa: E402

TOKEN = "d1scover-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """A gallery of red and blue (a colour-mean extractor with its own cohort); unknown uploads: 8 gray and
    8 green (two tight groups), and 2 more red (known)."""
    root = tmp_path_factory.mktemp("serve-discover")
    plugin = register_plugin("test-serve-discover-colormean", CohortColorMean)
    try:
        with Gallery(root / "gallery") as gallery:
            for name in ("red", "blue"):
                gallery.enroll(name, make_images(root / "enroll" / name, name, 10), bound())
        yield {"gallery": root / "gallery", "gray": make_images(root / "unknown", "gray", 8, seed=1),
               "green": make_images(root / "unknown", "green", 8, seed=2),
               "red": make_images(root / "known", "red", 2, seed=3), "root": root}
    finally:
        pm.unregister(plugin)


def client(gallery: Path, **settings) -> TestClient:
    return TestClient(create_app(gallery, ServeSettings(**settings)))


def upload(*paths: Path) -> list[tuple]:
    return [("files", (p.name, p.read_bytes(), "image/png")) for p in paths]


def identify(http: TestClient, *paths: Path) -> list[dict]:
    answer = http.post("/v1/identify", files=upload(*paths))
    assert answer.status_code == 200, answer.text
    return answer.json()["results"]


def kept(http: TestClient) -> list:
    return http.app.state.service.unknowns.kept()


def test_discovery_is_off_by_default(served):
    with client(served["gallery"]) as http:
        assert [r["decision"] for r in identify(http, *served["gray"][:2])] == ["unknown", "unknown"]
        answer = http.get("/v1/discover")
        assert answer.status_code == 404 and "--discover N" in answer.json()["detail"]
        assert kept(http) == []
        refused = http.post("/v1/discover/enroll", data={"candidate": "abcdef12", "generator": "x"})
        assert refused.status_code == 403  # no token set: writes are refused before anything else


def test_unknown_answers_are_kept_up_to_n_the_oldest_dropped_and_known_ones_never(served):
    gray, red = served["gray"], served["red"]
    with client(served["gallery"], discover_keep=3) as http:
        assert [r["decision"] for r in identify(http, *red)] == ["red", "red"]
        assert kept(http) == []
        results = identify(http, *gray[:2])
        identify(http, *gray[2:5])
        identify(http, gray[3])  # the same image again: kept once, now the newest
        names = [a.name for a in kept(http)]
        assert names == [gray[2].name, gray[4].name, gray[3].name]
        answer = kept(http)[-1]
        assert answer.sha256 == next(r for r in identify(http, gray[3]))["sha256"]
        assert answer.data == gray[3].read_bytes() and answer.thumbnail[:4] == b"RIFF"
        assert [len(row) for row in answer.embeddings] == [6]  # one row per bound extractor
        assert all(r["decision"] == "unknown" for r in results)
        assert list(http.app.state.service.uploads.path.iterdir()) == []  # no upload file is left on disk


def test_the_oldest_kept_answers_give_up_their_bytes_beyond_the_budget(served, monkeypatch):
    gray = served["gray"]
    size = max(len(p.read_bytes()) for p in gray[:4])
    monkeypatch.setattr(serve_discover, "BYTES_BUDGET", 2 * size)
    with client(served["gallery"], discover_keep=10) as http:
        identify(http, *gray[:4])
        kept_now = kept(http)
        assert len(kept_now) == 4 and [a.data is not None for a in kept_now] == [False, False, True, True]
        assert http.app.state.service.unknowns.kept_bytes() <= 2 * size


def test_a_candidate_whose_oldest_members_gave_up_their_bytes_is_enrolled_from_the_rest(served, tmp_path,
                                                                                        monkeypatch):
    import shutil

    gallery = Path(shutil.copytree(served["gallery"], tmp_path / "gallery"))
    gray = served["gray"]
    size = max(len(p.read_bytes()) for p in gray)
    monkeypatch.setattr(serve_discover, "BYTES_BUDGET", 5 * size)
    with client(gallery, discover_keep=50, token=TOKEN) as http:
        identify(http, *gray)
        data = http.get("/v1/discover", headers=AUTH).json()
        assert data["answers"]["enrollable"] == 5
        (candidate,) = data["candidates"]
        assert sum(m["enrollable"] for m in candidate["members"]) == 5
        done = http.post("/v1/discover/enroll", data={"candidate": candidate["digest"], "generator": "grayish"},
                         headers=AUTH)
        assert done.status_code == 200, done.text
        assert sorted(done.json()["added"]) == sorted(p.name for p in gray[3:])
        assert sorted(m["path"] for m in done.json()["not_kept"]) == sorted(p.name for p in gray[:3])


def test_get_discover_groups_two_tight_groups_into_the_candidates_of_attrib_discover(served, tmp_path):
    gray, green = served["gray"], served["green"]
    with client(served["gallery"], discover_keep=50, token=TOKEN) as http:
        identify(http, *gray[:4], *green[:4])
        identify(http, *gray[4:], *served["red"])
        identify(http, *green[4:])
        answer = http.get("/v1/discover", params={"thumbnails": "true"}, headers=AUTH)
        assert answer.status_code == 200, answer.text
        data = answer.json()
    assert data["images"] == 16 and data["answers"] == {"kept": 16, "limit": 50, "enrollable": 16}
    groups = sorted(sorted(Path(m["path"]).name.split("_")[0] for m in c["members"]) for c in data["candidates"])
    assert [set(g) for g in groups] == [{"gray"}, {"green"}] and all(len(g) >= 6 for g in groups)
    assert {c["kind"] for c in data["candidates"]} == {"generator"}
    members = [m for c in data["candidates"] for m in c["members"]]
    assert all(m["enrollable"] and m["thumbnail"].startswith("data:image/webp;base64,") for m in members)

    folder = tmp_path / "same"
    folder.mkdir()
    for path in [*gray, *green]:
        (folder / path.name).write_bytes(path.read_bytes())
    done = CliRunner().invoke(cli, ["--gallery", str(served["gallery"]), "discover", str(folder), "--json"])
    assert done.exit_code == 0, done.output
    cli_data = json.loads(done.output)
    assert set(cli_data) <= set(data) and set(data) - set(cli_data) == {"answers"}
    assert set(cli_data["candidates"][0]) == set(data["candidates"][0])
    assert set(cli_data["candidates"][0]["members"][0]) == set(data["candidates"][0]["members"][0]) - {
        "enrollable", "thumbnail"}
    assert sorted(c["digest"] for c in cli_data["candidates"]) == sorted(c["digest"] for c in data["candidates"])


@pytest.mark.parametrize("auth_reads", [True, False])
def test_reads_of_discover_need_the_token_even_where_the_apis_reads_are_open(served, auth_reads):
    # the kept answers are other clients' uploads (names, thumbnails): only the operator reads them
    with client(served["gallery"], discover_keep=5, token=TOKEN, auth_reads=auth_reads) as http:
        assert http.get("/v1/discover").status_code == 401
        assert http.get("/v1/discover", headers={"Authorization": "Bearer wrong"}).status_code == 401
        empty = http.get("/v1/discover", headers=AUTH)
        assert empty.status_code == 200 and empty.json()["images"] == 0 and empty.json()["candidates"] == []
        assert http.post("/v1/discover/enroll", data={"candidate": "abcdef12", "generator": "x"}).status_code == 401


def test_a_candidate_is_enrolled_from_the_kept_answers_with_the_token(served, tmp_path):
    import shutil

    gallery = Path(shutil.copytree(served["gallery"], tmp_path / "gallery"))
    gray, green = served["gray"], served["green"]
    with client(gallery, discover_keep=50, token=TOKEN) as http:
        identify(http, *gray[:7], *green)
        data = http.get("/v1/discover", headers=AUTH).json()
        candidate = next(c for c in data["candidates"] if "gray" in c["members"][0]["path"])
        unknown = http.post("/v1/discover/enroll", data={"candidate": "0123456789abcdef", "generator": "grayish"},
                            headers=AUTH)
        assert unknown.status_code == 409 and "GET /v1/discover" in unknown.json()["detail"]
        done = http.post("/v1/discover/enroll", data={"candidate": candidate["digest"], "generator": "grayish"},
                         headers=AUTH)
        assert done.status_code == 200, done.text
        enrolled = done.json()
        assert sorted(enrolled["added"]) == sorted(m["path"] for m in candidate["members"])
        assert enrolled["generator"] == "grayish" and enrolled["not_kept"] == []
        assert {a.name for a in kept(http)}.isdisjoint(enrolled["added"])  # known now: no longer kept
        assert identify(http, gray[7])[0]["decision"] == "grayish"
        again = http.post("/v1/discover/enroll", data={"candidate": candidate["digest"], "generator": "g2"},
                          headers=AUTH)
        assert again.status_code == 409
    with Gallery(gallery, read_only=True) as g:
        samples = g.generator_detail("grayish")["samples"]
    assert {s["path"] for s in samples} == {f"upload:{name}" for name in enrolled["added"]}


def test_the_setting_is_checked_in_one_line(served, monkeypatch):
    assert ServeSettings.from_environment({}).discover_keep == 0
    assert ServeSettings.from_environment({"ATTRIB_DISCOVER_KEEP": "20"}).discover_keep == 20
    for bad in ("lots", "-1", "501"):
        with pytest.raises(AttribError, match="ATTRIB_DISCOVER_KEEP"):
            ServeSettings.from_environment({"ATTRIB_DISCOVER_KEEP": bad})
    monkeypatch.setenv("ATTRIB_DISCOVER_KEEP", "0")  # restored (unset) afterwards: the command sets it
    two = CliRunner().invoke(cli, ["--gallery", str(served["gallery"]), "serve", "--discover", "5", "--workers", "2"])
    assert two.exit_code == 1 and "--workers 1" in two.output and "Traceback" not in two.output
    big = CliRunner().invoke(cli, ["--gallery", str(served["gallery"]), "serve", "--discover", "900"])
    assert big.exit_code == 2 and "900" in big.output


def test_reference_photographs_label_candidates_as_attrib_discover_photos_does(served, tmp_path):
    photos = make_images(tmp_path / "photos", "gray", 6, seed=7)  # the camera photos the uploads may hold
    with client(served["gallery"], discover_keep=50, token=TOKEN, discover_photos=tmp_path / "photos") as http:
        identify(http, *served["gray"], *served["green"])
        data = http.get("/v1/discover", headers=AUTH).json()
        gray = next(c for c in data["candidates"] if Path(c["members"][0]["path"]).name.startswith("gray"))
        assert gray["kind"] == "photographs" and gray["photo"]["photo_like"] == gray["size"]
        assert data["photo_references"] == len(photos) and data["photo_threshold"] is not None
        refused = http.post("/v1/discover/enroll", data={"candidate": gray["digest"], "generator": "g"}, headers=AUTH)
        assert refused.status_code == 409 and "photographs" in refused.json()["detail"]
    folder = tmp_path / "same"
    folder.mkdir()
    for path in [*served["gray"], *served["green"]]:
        (folder / path.name).write_bytes(path.read_bytes())
    done = CliRunner().invoke(cli, ["--gallery", str(served["gallery"]), "discover", str(folder), "--json",
                                    "--photos", str(tmp_path / "photos")])
    assert done.exit_code == 0, done.output
    cli_data = json.loads(done.output)
    assert {c["digest"]: c["kind"] for c in cli_data["candidates"]} == {c["digest"]: c["kind"] for c in data["candidates"]}
    assert cli_data["photo_threshold"] == pytest.approx(data["photo_threshold"], abs=1e-5)
    with client(served["gallery"], discover_keep=50, token=TOKEN) as http:  # without them: every one offered
        identify(http, *served["gray"], *served["green"])
        data = http.get("/v1/discover", headers=AUTH).json()
        assert {c["kind"] for c in data["candidates"]} == {"generator"} and data["photo_references"] == 0


def test_reference_photographs_that_cannot_serve_are_refused_in_one_line(served, tmp_path, monkeypatch):
    empty, broken = tmp_path / "empty", tmp_path / "broken"
    empty.mkdir()
    broken.mkdir()
    (broken / "x.png").write_bytes(b"not a png at all")
    with pytest.raises(AttribError, match="holds no image files"):
        serve_discover.UnknownAnswers(5, bound(), empty)
    with pytest.raises(AttribError, match="is not a folder"):
        serve_discover.UnknownAnswers(5, bound(), tmp_path / "missing")
    with pytest.raises(AttribError, match="none of its 1 files could be used"):
        serve_discover.UnknownAnswers(5, bound(), broken)
    with pytest.raises(AttribError, match="discovery is off"):
        serve_discover.UnknownAnswers(0, bound(), empty)
    assert ServeSettings.from_environment({"ATTRIB_DISCOVER_PHOTOS": str(empty)}).discover_photos == empty
    monkeypatch.setenv("ATTRIB_DISCOVER_KEEP", "0")  # restored afterwards: the command sets them
    monkeypatch.setenv("ATTRIB_DISCOVER_PHOTOS", "")
    off = CliRunner().invoke(cli, ["--gallery", str(served["gallery"]), "serve", "--discover-photos", str(empty)])
    assert off.exit_code == 1 and "add --discover N" in off.output and "Traceback" not in off.output
    missing = CliRunner().invoke(cli, ["--gallery", str(served["gallery"]), "serve", "--discover", "5",
                                       "--discover-photos", str(tmp_path / "missing")])
    assert missing.exit_code == 1 and "no such folder" in missing.output


def test_the_discover_page_is_served_under_the_pages_policy(served):
    with client(served["gallery"], discover_keep=5) as http:
        page = http.get("/discover")
        script = http.get("/discover/discover.js")
        assert page.status_code == 200 and "/discover/discover.js" in page.text
        assert "script-src 'self'" in page.headers["content-security-policy"]
        assert script.status_code == 200 and "textContent" in script.text and "innerHTML" not in script.text
        assert 'href="/discover"' in http.get("/").text
        assert not any(p.startswith("/v1/discover") or p == "/discover" for p in http.get("/openapi.json").json()["paths"])


def test_kept_evidence_names_the_same_camera_in_a_few_fields():
    exif = {"kind": "exif", "generator": None, "ai_generated": None, "error": None,
            "detail": {"fields": {"Make": "Canon", "Model": "Canon EOS 80D", "MakerNote": "x" * 5000}}}
    claim = {"kind": "generation-parameters", "generator": "sdxl", "ai_generated": True, "error": None, "detail": {}}
    for evidence in ([exif], [exif, claim], [claim], [], [{**exif, "error": "broken"}]):
        small = photo_evidence(evidence)
        assert camera_of(small) == camera_of(evidence)
        assert len(json.dumps(small)) < 400



def with_camera(paths: list[Path], folder: Path) -> list[Path]:
    """Copies of ``paths`` in ``folder`` whose EXIF names a camera."""
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    copies = []
    for path in paths:
        with Image.open(path) as im:
            pixels = im.copy()
        tags = Image.Exif()
        tags[0x010F], tags[0x0110] = "Canon", "Canon EOS 80D"
        pixels.save(folder / path.name, exif=tags)
        copies.append(folder / path.name)
    return copies


def test_camera_photographs_are_labelled_and_enrolled_only_when_forced(served, tmp_path):
    import shutil

    gallery = Path(shutil.copytree(served["gallery"], tmp_path / "gallery"))
    photos = with_camera(served["green"], tmp_path / "photos")
    with client(gallery, discover_keep=50, token=TOKEN) as http:
        identify(http, *photos, *served["gray"])
        data = http.get("/v1/discover", headers=AUTH).json()
        assert data["gallery"] is None  # where the gallery is stays on the server
        kinds = {c["kind"]: c for c in data["candidates"]}
        assert set(kinds) == {"generator", "photographs"}
        assert kinds["photographs"]["photo"]["cameras"] == {"Canon EOS 80D": kinds["photographs"]["size"]}
        digest = kinds["photographs"]["digest"]
        refused = http.post("/v1/discover/enroll", data={"candidate": digest, "generator": "cam"}, headers=AUTH)
        assert refused.status_code == 409 and "force=true" in refused.json()["detail"]
        forced = http.post("/v1/discover/enroll", data={"candidate": digest[:8], "generator": "cam", "force": "true"},
                           headers=AUTH)
        assert forced.status_code == 200 and len(forced.json()["added"]) == kinds["photographs"]["size"]


def test_the_discover_page_shows_the_candidates_and_enrolls_one_with_the_token(served, tmp_path):
    """In Chromium, against `attrib serve --discover 50`: thumbnail grids, photographs labelled apart and
    offered no enroll form, and a candidate generator enrolled from the page with the token."""
    import os
    import shutil
    import subprocess
    import sys

    import httpx

    from test_serve_page import Chromium, chromium
    from test_serve import free_port, wait_for_health

    gallery = Path(shutil.copytree(served["gallery"], tmp_path / "gallery"))
    photos = with_camera(served["green"], tmp_path / "photos")
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    process = subprocess.Popen([sys.executable, str(Path(__file__).with_name("serve_script.py")), "--gallery",
                                str(gallery), "serve", "--port", str(port), "--discover", "50", "--no-access-log"],
                               env={**os.environ, "ATTRIB_TOKEN": TOKEN}, stdout=subprocess.DEVNULL,
                               stderr=subprocess.PIPE, text=True)
    browser = None
    try:
        wait_for_health(process, base)
        answered = httpx.post(f"{base}/v1/identify", files=upload(*served["gray"], *photos), timeout=60)
        assert {r["decision"] for r in answered.json()["results"]} == {"unknown"}

        (tmp_path / "profile").mkdir()
        browser = Chromium(chromium(), tmp_path / "profile")
        tab = browser.tab()
        tab.open(base + "/discover")
        asked = tab.wait_for("document.querySelector('#discover-status').textContent")
        assert "token" in asked and tab.evaluate("document.querySelectorAll('#candidates article').length") == 0
        tab.type_into("#token", TOKEN)
        tab.evaluate("document.querySelector('#token-form').requestSubmit()")
        tab.wait_for("document.querySelectorAll('#candidates article').length === 2")
        labels = tab.evaluate("Array.from(document.querySelectorAll('#candidates article'))"
                              ".map((a) => [a.getAttribute('aria-label'), a.querySelectorAll('img.thumb').length,"
                              " a.querySelectorAll('form').length])")
        assert sorted((label.split(": ")[1][:11], thumbs, forms) for label, thumbs, forms in labels) == [
            ("candidate g", 8, 1), ("photographs", 8, 0)]
        tab.type_into("#candidates form input[name=generator]", "grayish")
        tab.evaluate("document.querySelector('#candidates form').requestSubmit()")
        status = tab.wait_for("(() => { const s = document.querySelector('#candidates form [role=status]');"
                              " return s.textContent.startsWith('Enrolled') && s.textContent; })()")
        assert status == "Enrolled 8 images as grayish."
        assert tab.problems() == []
        names = [g["name"] for g in httpx.get(f"{base}/v1/generators").json()["generators"]]
        assert "grayish" in names
    finally:
        if browser is not None:
            browser.close()
        process.terminate()
        _, err = process.communicate(timeout=30)
    assert "Traceback" not in err, err
