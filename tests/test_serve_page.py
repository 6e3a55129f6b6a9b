"""The page of `attrib serve` (`/`, its files, the offline `/docs`): served under a strict CSP with nothing from
another origin (FastAPI's test client), and used in a real browser: headless Chromium, driven over the
DevTools protocol on a pipe (`--remote-debugging-pipe`, so no driver and no websocket package), against a real
`attrib serve` process. The browser tests skip only where no Chromium binary exists (`.ci/run` installs
Debian's `chromium`)."""

from __future__ import annotations

import base64
import contextlib
import fcntl
import io
import json
import os
import re
import select
import shutil
import subprocess
import sys
import tempfile
import time
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("fastapi", reason="attrib serve needs the serve extra: pip install 'attrib[serve]'")
httpx = pytest.importorskip("httpx", reason="the serve tests need httpx (the dev extra)")

from attrib.gallery import Gallery  # noqa: E402
from attrib.serve.page import CSP  # noqa: E402

from conftest import make_images  # noqa: E402
from gallery_helpers import HERE, bound  # noqa: E402
from test_report_browser import FLAGS, chromium  # noqa: E402
from test_serve import TOKEN, client, free_port, served, wait_for_health  # noqa: E402,F401 -- served is a fixture

WIDTH, HEIGHT = 1200, 900
HOSTILE_NAME = "<img src=x id=injected>.png"  # a legal file name that is HTML
EXTERNAL = re.compile(r"(?:\b[a-z][a-z0-9+.-]*:)?//[a-z0-9-]+(?:\.[a-z0-9-]+)+", re.IGNORECASE)
SVG_NAMESPACE = 'xmlns="http://www.w3.org/2000/svg"'  # a name, never fetched


# --- without a browser: what is served ------------------------------------------------------------------

class Tags(HTMLParser):
    """Every start tag of a page with its attributes, and the text inside <script> and <style> elements."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.inline: list[str] = []
        self._open: str | None = None

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))
        self._open = tag if tag in ("script", "style") else None

    def handle_data(self, data):
        if self._open and data.strip():
            self.inline.append(f"<{self._open}>{data.strip()[:60]}")

    def handle_endtag(self, tag):
        self._open = None


def directives(policy: str) -> dict[str, list[str]]:
    parts = [d.split() for d in policy.split(";") if d.strip()]
    return {p[0]: p[1:] for p in parts}


def served_files(http, page: str) -> dict[str, str]:
    """``page`` and every same-origin file it references: {url: text}; each checked to carry the CSP."""
    answer = http.get(page)
    assert answer.status_code == 200 and answer.headers["content-type"].startswith("text/html")
    assert answer.headers["content-security-policy"] == CSP
    assert answer.headers["x-content-type-options"] == "nosniff"
    tags = Tags()
    tags.feed(answer.text)
    assert tags.inline == [], "inline script or style, which the CSP refuses"
    texts = {page: answer.text}
    for tag, attrs in tags.tags:
        assert not any(name.startswith("on") or name == "style" for name in attrs), (tag, attrs)
        for name in ("src", "href"):
            url = attrs.get(name)
            if not url or url.startswith("#"):
                continue
            assert url.startswith("/") and not url.startswith("//"), f"{tag} {name}={url} is not same-origin"
            if tag in ("script", "link", "img"):
                asset = http.get(url)
                assert asset.status_code == 200, url
                assert asset.headers["content-security-policy"] == CSP, url
                assert asset.headers["x-content-type-options"] == "nosniff", url
                texts[url] = asset.text
    return texts


def test_the_page_and_its_files_carry_a_strict_csp_and_name_no_other_origin(served):
    policy = directives(CSP)
    assert policy["default-src"] == ["'none'"] and policy["script-src"] == ["'self'"]
    assert policy["style-src"] == ["'self'"] and policy["connect-src"] == ["'self'"]
    assert policy["frame-ancestors"] == ["'none'"] and policy["base-uri"] == ["'none'"]
    with client(served[0]) as http:
        texts = served_files(http, "/")
        assert {"/static/page.js", "/static/page.css"} <= set(texts)
        for url, text in texts.items():
            named = EXTERNAL.findall(text.replace(SVG_NAMESPACE, ""))
            assert named == [], f"{url} names another origin: {named}"
        script = texts["/static/page.js"]
        for parser in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(", "Function(",
                       "setAttribute(\"style\""):
            assert parser not in script, f"page.js uses {parser}: server text must go through textContent"
        assert "localStorage" not in script and "document.cookie" not in script  # sessionStorage at most
        assert http.get("/static/../app.py").status_code == 404
        assert http.get("/static/app.py").status_code == 404


def test_docs_is_an_offline_page_and_the_page_routes_stay_out_of_the_schema(served):
    with client(served[0]) as http:
        texts = served_files(http, "/docs")
        assert "/static/api.js" in texts
        assert all(EXTERNAL.findall(text.replace(SVG_NAMESPACE, "")) == [] for text in texts.values())
        assert "swagger" not in texts["/docs"].lower()
        assert http.get("/redoc").status_code == 404
        paths = http.get("/openapi.json").json()["paths"]
        assert "/v1/identify" in paths and not any(p == "/" or p.startswith(("/page", "/static")) for p in paths)


def test_a_generators_samples_come_with_held_out_scores_and_thumbnails(served):
    gallery, _ = served
    with Gallery(gallery, read_only=True) as g:
        held_out, threshold, extractor = g.held_out_scores("red")
    with client(gallery) as http:
        detail = http.get("/page/generators/red").json()
        assert detail["extractor"] == extractor and detail["total"] == 6
        assert detail["threshold"] == pytest.approx(threshold)
        assert {s["sha256"]: s["held_out"] for s in detail["samples"]} == pytest.approx(held_out)
        assert all(s["thumbnail"].startswith("data:image/webp;base64,") for s in detail["samples"])
        picture = Image.open(io.BytesIO(base64.b64decode(detail["samples"][0]["thumbnail"].split(",", 1)[1])))
        assert max(picture.size) <= 128
        assert len(http.get("/page/generators/red", params={"limit": 2}).json()["samples"]) == 2
        shas = [s["sha256"] for s in detail["samples"][:3]]
        found = http.get("/page/thumbnails", params={"sha256": [*shas, "0" * 64]}).json()["thumbnails"]
        assert sorted(found) == sorted(shas)
        assert found[shas[0]] == detail["samples"][0]["thumbnail"]
        bad = http.get("/page/thumbnails", params={"sha256": "not-a-hash"})
        assert bad.status_code == 422 and "not-a-hash" in bad.json()["detail"]
        assert http.get("/page/thumbnails", params={"sha256": ["a" * 64] * 65}).status_code == 422
        missing = http.get("/page/generators/purple")
        assert missing.status_code == 404 and "purple" in missing.json()["detail"]
    with client(gallery, token=TOKEN, auth_reads=True) as http:
        assert http.get("/page/generators/red").status_code == 401
        assert http.get("/page/thumbnails", params={"sha256": shas}).status_code == 401
        auth = {"Authorization": f"Bearer {TOKEN}"}
        assert http.get("/page/generators/red", headers=auth).status_code == 200
        assert http.get("/", headers={}).status_code == 200  # the page itself is public; its data is not


# --- in a browser -------------------------------------------------------------------------------------------

def high_fd(fd: int) -> int:
    """``fd`` moved to a number above 9, which bash's redirections to 3 and 4 cannot clash with (dash, Debian's
    sh, reads one digit only)."""
    moved = fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 10)
    os.close(fd)
    return moved


class Chromium:
    """Headless Chromium spoken to over the DevTools protocol on a pipe: commands to its fd 3, answers and
    events from its fd 4, each message JSON ended by a NUL byte."""

    def __init__(self, binary: str, profile: Path) -> None:
        chromium_reads, to_chromium = (high_fd(fd) for fd in os.pipe())
        we_read, chromium_writes = (high_fd(fd) for fd in os.pipe())
        script = f'exec "$0" "$@" 3<&{chromium_reads} 4>&{chromium_writes} {chromium_reads}<&- {chromium_writes}>&-'
        self.log = open(profile / "chromium.log", "wb")
        self.process = subprocess.Popen(
            ["bash", "-c", script, binary, *FLAGS, "--remote-debugging-pipe", f"--user-data-dir={profile}",
             f"--window-size={WIDTH},{HEIGHT}", "about:blank"],
            pass_fds=(chromium_reads, chromium_writes), stdin=subprocess.DEVNULL, stdout=self.log, stderr=self.log)
        os.close(chromium_reads)
        os.close(chromium_writes)
        self.writer, self.reader = to_chromium, we_read
        self.buffer = b""
        self.last_id = 0
        self.events: list[dict] = []
        self.dialogs: list[str] = []

    def close(self) -> None:
        os.close(self.writer)
        os.close(self.reader)
        self.process.terminate()
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.log.close()

    def send(self, method: str, params: dict | None = None, session: str | None = None, timeout: float = 60):
        self.last_id += 1
        asked = self.last_id
        message = {"id": asked, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = session
        os.write(self.writer, json.dumps(message).encode() + b"\0")
        deadline = time.monotonic() + timeout
        while True:
            answer = self.receive(deadline)
            if answer.get("id") == asked:
                assert "error" not in answer, f"{method}: {answer['error']}"
                return answer["result"]

    def receive(self, deadline: float) -> dict:
        while b"\0" not in self.buffer:
            left = deadline - time.monotonic()
            assert left > 0, "Chromium did not answer in time"
            if select.select([self.reader], [], [], left)[0]:
                chunk = os.read(self.reader, 1 << 20)
                assert chunk, f"Chromium closed its pipe (exit {self.process.poll()})"
                self.buffer += chunk
        text, _, self.buffer = self.buffer.partition(b"\0")
        message = json.loads(text)
        if message.get("method") == "Page.javascriptDialogOpening":  # the page's confirm(): accepted
            self.dialogs.append(message["params"]["message"])
            self.last_id += 1
            reply = {"id": self.last_id, "method": "Page.handleJavaScriptDialog", "params": {"accept": True},
                     "sessionId": message["sessionId"]}
            os.write(self.writer, json.dumps(reply).encode() + b"\0")
        elif "method" in message:
            self.events.append(message)
        return message

    def tab(self, width: int = WIDTH, height: int = HEIGHT, mobile: bool = False) -> "Tab":
        target = self.send("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = self.send("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        tab = Tab(self, target, session)
        for domain in ("Page", "Runtime", "Log", "DOM"):
            tab.send(f"{domain}.enable")
        tab.send("Emulation.setDeviceMetricsOverride",
                 {"width": width, "height": height, "deviceScaleFactor": 2 if mobile else 1, "mobile": mobile})
        return tab


class Tab:
    def __init__(self, browser: Chromium, target: str, session: str) -> None:
        self.browser, self.target, self.session = browser, target, session

    def send(self, method: str, params: dict | None = None, timeout: float = 60):
        return self.browser.send(method, params, self.session, timeout)

    def open(self, url: str) -> None:
        self.send("Page.navigate", {"url": url})
        self.wait_for("document.readyState === 'complete'")

    def evaluate(self, expression: str, timeout: float = 60):
        result = self.send("Runtime.evaluate", {"expression": expression, "returnByValue": True,
                                                "awaitPromise": True}, timeout)
        assert "exceptionDetails" not in result, result["exceptionDetails"]
        return result["result"].get("value")

    def wait_for(self, expression: str, timeout: float = 30):
        """The value of ``expression`` once it is truthy, checked in the page every 50 ms."""
        return self.evaluate(f"""new Promise((resolve, reject) => {{
            const end = Date.now() + {timeout * 1000};
            const check = () => {{
                let value = null;
                try {{ value = ({expression}); }} catch (error) {{ value = null; }}
                if (value) resolve(value);
                else if (Date.now() > end) reject(new Error("timed out waiting for: " + {json.dumps(expression)}));
                else setTimeout(check, 50);
            }};
            check();
        }})""", timeout + 30)

    def text(self, selector: str) -> str:
        return self.evaluate(f"document.querySelector({json.dumps(selector)}).textContent")

    def choose_files(self, selector: str, paths: list[Path]) -> None:
        """Set a file input's files as a user choosing them does (the input's change event fires)."""
        root = self.send("DOM.getDocument")["root"]["nodeId"]
        node = self.send("DOM.querySelector", {"nodeId": root, "selector": selector})["nodeId"]
        assert node, selector
        self.send("DOM.setFileInputFiles", {"nodeId": node, "files": [str(p) for p in paths]})

    def type_into(self, selector: str, text: str) -> None:
        self.evaluate(f"document.querySelector({json.dumps(selector)}).focus()")
        self.send("Input.insertText", {"text": text})

    def press(self, key: str, code: int) -> None:
        for kind in ("rawKeyDown", "keyUp"):
            event = {"type": kind, "key": key, "code": key, "windowsVirtualKeyCode": code}
            if kind == "rawKeyDown" and key == "Enter":
                event["text"] = "\r"
                event["type"] = "keyDown"
            self.send("Input.dispatchKeyEvent", event)

    def screenshot(self) -> Image.Image:
        data = self.send("Page.captureScreenshot", {"format": "png"})["data"]
        return Image.open(io.BytesIO(base64.b64decode(data))).convert("RGB")

    def problems(self) -> list[str]:
        """Console errors, CSP refusals and uncaught exceptions of this tab so far."""
        found = []
        for event in self.browser.events:
            if event.get("sessionId") != self.session:
                continue
            if event["method"] == "Log.entryAdded" and event["params"]["entry"]["level"] == "error":
                found.append(event["params"]["entry"]["text"])
            elif event["method"] == "Runtime.exceptionThrown":
                found.append(json.dumps(event["params"]["exceptionDetails"])[:500])
            elif event["method"] == "Runtime.consoleAPICalled" and event["params"]["type"] in ("error", "assert"):
                found.append(json.dumps(event["params"]["args"])[:500])
        return found

    def close(self) -> None:
        self.browser.send("Target.closeTarget", {"targetId": self.target})


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    binary = chromium()
    profile = Path(tempfile.mkdtemp(prefix="attrib-page-chromium-"))
    driven = Chromium(binary, profile)
    try:
        driven.send("Target.getTargets", timeout=60)
        yield driven
    finally:
        driven.close()
        shutil.rmtree(profile, ignore_errors=True)


@contextlib.contextmanager
def serving(served, folder: Path, *options: str):
    """`attrib serve` with the token and ``options``, on a free port, over a copy of the served gallery (the
    tests write): (base URL, gallery)."""
    gallery = Path(shutil.copytree(served[0], folder / "gallery"))
    port = free_port()
    process = subprocess.Popen([sys.executable, str(HERE / "serve_script.py"), "--gallery", str(gallery), "serve",
                                "--port", str(port), *options], env={**os.environ, "ATTRIB_TOKEN": TOKEN},
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_for_health(process, base)
        yield base, gallery
    finally:
        process.terminate()
        _, err = process.communicate(timeout=30)
    assert "Traceback" not in err, err


@pytest.fixture(scope="module")
def server(served, tmp_path_factory):
    with serving(served, tmp_path_factory.mktemp("page")) as running:
        yield running


@pytest.fixture
def tab(browser):
    opened = browser.tab()
    yield opened
    opened.close()


def loaded(tab: Tab, base: str, generators: int) -> None:
    tab.open(base + "/")
    tab.wait_for("document.getElementById('health').textContent.startsWith('Server up')")
    tab.wait_for(f"document.querySelectorAll('#generators > li').length === {generators}")


def test_an_image_chosen_in_the_page_is_identified_as_the_library_does(server, served, tab, tmp_path):
    base, gallery = server
    _, queries = served
    hostile = tmp_path / HOSTILE_NAME
    shutil.copyfile(queries[2], hostile)  # a blue image
    chosen = [queries[0], queries[3], hostile]  # red, gray (never enrolled), blue
    with Gallery(gallery, read_only=True) as g:
        expected = [r.decision for r in g.identify(chosen, bound())]
    assert expected == ["red", "unknown", "blue"]
    loaded(tab, base, 3)
    tab.choose_files("#identify-files", chosen)
    tab.wait_for("document.getElementById('identify-status').textContent.startsWith('Identified')")
    shown = tab.evaluate("""Array.from(document.querySelectorAll('#results .result')).map((a) => ({
        name: a.querySelector('h3').textContent, decision: a.querySelector('.decision').textContent,
        kind: a.querySelector('.decision').className, bars: a.querySelectorAll('.bar[role=img]').length,
        label: a.querySelector('.bar').getAttribute('aria-label'),
        evidence: a.querySelector('.evidence h4').textContent,
        preview: a.querySelector('.preview img').naturalWidth}))""")
    assert [s["name"] for s in shown] == [p.name for p in chosen]
    assert [s["decision"] for s in shown] == expected
    assert [s["kind"] for s in shown] == ["decision known", "decision unknown", "decision known"]
    assert all(s["bars"] >= 2 and "threshold" in s["label"] and s["preview"] > 0 for s in shown)
    assert all(s["evidence"] == "What the file says" for s in shown)
    assert tab.evaluate("document.getElementById('injected') === null")  # the file name stayed text
    assert tab.evaluate("document.querySelector('#results').getAttribute('aria-live')") == "polite"
    thumbs = tab.wait_for("""(() => { const all = document.querySelectorAll('#results img.thumb');
        return all.length > 0 && Array.from(all).every((i) => i.complete && i.naturalWidth > 0) && all.length; })()""")
    assert thumbs >= 3  # the nearest enrolled samples, from the gallery's thumbnails
    picture = np.asarray(tab.screenshot().convert("L"), dtype=np.float32)
    assert picture.shape == (HEIGHT, WIDTH) and picture.std() > 10  # not one colour
    assert (picture < 100).mean() > 0.005 and (picture > 200).mean() > 0.3  # dark text on a light page
    assert tab.problems() == []  # no CSP refusal, no script error


def test_the_gallery_shows_held_out_scores_and_the_token_enrolls_and_removes(server, tab, tmp_path):
    base, _ = server
    gray = make_images(tmp_path / "gray", "gray", 6, seed=21)
    loaded(tab, base, 3)
    red = "Array.from(document.querySelectorAll('.generator')).find((g) => g.querySelector('h3').textContent === 'red')"
    tab.evaluate(f"{red}.querySelector('button').click()")
    captions = tab.wait_for(f"""(() => {{ const panel = {red}.querySelector('.samples');
        const held = Array.from(panel.querySelectorAll('.held-out')).map((s) => s.textContent);
        return panel.querySelectorAll('img.thumb').length === 6 && held.length === 6 && held; }})()""")
    assert all(re.fullmatch(r"held-out \d\.\d{3}( \(below the threshold\))?", c) for c in captions)
    assert tab.evaluate(f"{red}.querySelector('button').getAttribute('aria-expanded')") == "true"

    tab.type_into("#enroll-generator", "gray")
    tab.choose_files("#enroll-files", gray)
    tab.evaluate("document.querySelector('#enroll-form button[type=submit]').focus()")
    tab.press("Enter", 13)  # submitted from the keyboard, with no token yet
    refused = tab.wait_for("(() => { const s = document.getElementById('enroll-status');"
                           " return s.className === 'error' && s.textContent; })()")
    assert refused.startswith("Could not enroll:") and "token" in refused

    tab.type_into("#token", TOKEN)
    assert tab.evaluate("sessionStorage.getItem('attrib-token')") is None  # not kept unless asked
    tab.evaluate("document.getElementById('keep-token').click()")
    assert tab.evaluate("sessionStorage.getItem('attrib-token')") == TOKEN
    assert tab.evaluate("localStorage.length === 0 && document.cookie === ''")
    tab.evaluate("document.querySelector('#enroll-form button[type=submit]').focus()")
    tab.press("Enter", 13)
    done = tab.wait_for("(() => { const s = document.getElementById('enroll-status').textContent;"
                        " return s.startsWith('Enrolled') && s; })()")
    assert done.startswith("Enrolled 6 under gray")
    tab.wait_for("document.querySelectorAll('#generators > li').length === 4")
    assert {g["name"]: g["samples"] for g in httpx.get(f"{base}/v1/generators").json()["generators"]}["gray"] == 6

    tab.evaluate("document.getElementById('remove-generator').value = 'gray'")
    tab.evaluate("document.querySelector('#remove-form button[type=submit]').focus()")
    tab.press("Enter", 13)
    removed = tab.wait_for("(() => { const s = document.getElementById('remove-status').textContent;"
                           " return s.startsWith('Removed') && s; })()")
    assert removed == "Removed gray and its 6 samples."
    assert tab.browser.dialogs[-1] == "Remove gray and all its samples from the gallery?"
    tab.wait_for("document.querySelectorAll('#generators > li').length === 3")
    assert sorted(g["name"] for g in httpx.get(f"{base}/v1/generators").json()["generators"]) == \
        ["blue", "green", "red"]
    tab.evaluate("document.getElementById('forget-token').click()")
    assert tab.evaluate("sessionStorage.getItem('attrib-token') === null"
                        " && document.getElementById('token').value === ''")
    assert [p for p in tab.problems() if "401" not in p] == []  # the refused enroll is the one error logged


def test_on_a_phone_the_page_fits_and_the_keyboard_focus_shows(server, served, browser):
    base, _ = server
    phone = browser.tab(width=390, height=844, mobile=True)
    try:
        loaded(phone, base, 3)
        phone.choose_files("#identify-files", [served[1][0]])
        phone.wait_for("document.querySelectorAll('#results .result .decision').length === 1")
        assert phone.evaluate("document.documentElement.scrollWidth <= window.innerWidth")  # no sideways scroll
        assert phone.evaluate("Array.from(document.querySelectorAll('.result, .panel, .generator'))"
                              ".every((box) => box.scrollWidth <= box.clientWidth)")  # nothing spills out of its box
        phone.evaluate("document.activeElement.blur(); window.scrollTo(0, 0)")
        phone.press("Tab", 9)
        focused = phone.evaluate("""(() => { const a = document.activeElement, s = getComputedStyle(a);
            return {cls: a.className, visible: a.matches(':focus-visible'), outline: s.outlineStyle,
                    width: parseFloat(s.outlineWidth), left: a.getBoundingClientRect().left}; })()""")
        assert focused["cls"] == "skip" and focused["visible"]  # the first stop: skip to the content
        assert focused["outline"] != "none" and focused["width"] >= 2 and focused["left"] >= 0
        assert phone.problems() == []
    finally:
        phone.close()


def test_the_api_page_renders_every_operation_offline(server, tab):
    base, _ = server
    tab.open(base + "/docs")
    count = tab.wait_for("document.querySelectorAll('#operations .operation').length")
    assert count == len([m for item in httpx.get(f"{base}/openapi.json").json()["paths"].values() for m in item])
    assert "POST /v1/identify" in tab.evaluate("Array.from(document.querySelectorAll('.operation'))"
                                               ".map((s) => s.getAttribute('aria-label')).join(',')")
    assert tab.problems() == []



def test_the_discover_page_shows_the_kept_unknown_answers_grouped_to_the_token(served, browser, tmp_path):
    gray = make_images(tmp_path / "gray", "gray", 8, seed=31)  # never enrolled: answered unknown, kept
    with serving(served, tmp_path, "--discover", "50") as (base, _):
        answers = httpx.post(f"{base}/v1/identify", files=[("files", (p.name, p.read_bytes(), "image/png"))
                                                            for p in gray], timeout=60).json()["results"]
        assert [a["decision"] for a in answers] == ["unknown"] * 8
        page = browser.tab()
        try:
            page.open(base + "/discover")
            page.wait_for("document.getElementById('discover-status').textContent.startsWith('Enter the')")
            assert page.evaluate("document.querySelectorAll('#candidates article').length") == 0  # not without it
            page.type_into("#token", TOKEN)
            page.evaluate("document.getElementById('discover-refresh').click()")
            status = page.wait_for("(() => { const s = document.getElementById('discover-status').textContent;"
                                   " return s.includes('candidate generator(s)') && s; })()")
            assert status.startswith("8 unknown answers kept (at most 50): 1 candidate generator(s)")
            page.wait_for("Array.from(document.querySelectorAll('#candidates img.thumb'))"
                          ".filter((i) => i.complete && i.naturalWidth > 0).length >= 5")
            shown = page.evaluate("""Array.from(document.querySelectorAll('#candidates article')).map((a) => ({
                kind: a.querySelector('.decision').textContent, signs: a.querySelector('p.muted').textContent,
                thumbs: Array.from(a.querySelectorAll('img.thumb')).filter((i) => i.naturalWidth > 0).length,
                form: a.querySelectorAll('form input[name=generator]').length}))""")
            assert len(shown) == 1 and shown[0]["kind"] == "candidate generator" and shown[0]["form"] == 1
            assert shown[0]["signs"].startswith("members showing a photograph sign: camera EXIF 0; against the "
                                                "cohort: no extractor judges")  # the test extractor has its own cohort
            assert shown[0]["thumbs"] >= 5
            assert page.problems() == []
        finally:
            page.close()
