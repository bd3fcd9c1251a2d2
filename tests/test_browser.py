"""The playground page in a real browser: headless Chromium, driven over the DevTools protocol on a pipe (standard
library only), types an expression, presses the button and reads the rendered MathML; a screenshot is kept in the
test's temporary directory and in tests/artifacts/ (git-ignored).

Skipped, with the reason printed, where Debian's ``chromium`` is not installed (``.ci/run`` installs it).
"""

from __future__ import annotations

import base64
import fcntl
import json
import os
import select
import shutil
import subprocess
import threading
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest

import indexdiff as ix
from indexdiff.serve import Limits, make_server

CHROMIUM = os.environ.get("INDEXDIFF_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
ARTIFACTS = Path(__file__).parent / "artifacts"

pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason="chromium is not installed (.ci/run installs it with apt-get install chromium)"
)


class Browser:
    """Headless Chromium with ``--remote-debugging-pipe``: commands on its fd 3, answers and events on its fd 4,
    each a JSON message ending in a NUL byte."""

    def __init__(self, profile: Path) -> None:
        to_browser, self._out = os.pipe()
        self._in, from_browser = os.pipe()

        def pipes() -> None:  # in the child: the two pipe ends as fds 3 and 4
            high = [fcntl.fcntl(fd, fcntl.F_DUPFD, 10) for fd in (to_browser, from_browser)]
            for target, fd in zip((3, 4), high):
                os.dup2(fd, target)

        args = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--remote-debugging-pipe"]
        args += ["--no-first-run", "--no-default-browser-check", "--hide-scrollbars", "--window-size=1000,760"]
        args += [f"--user-data-dir={profile}", "about:blank"]
        self._process = subprocess.Popen(
            args, preexec_fn=pipes, close_fds=False, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        os.close(to_browser)
        os.close(from_browser)
        self._buffer = b""
        self._id = 0
        self.session: str | None = None
        self.url = ""

    def send(self, method: str, params: dict[str, Any] | None = None, timeout: float = 30) -> dict[str, Any]:
        self._id += 1
        message: dict[str, Any] = {"id": self._id, "method": method, "params": params or {}}
        if self.session is not None:
            message["sessionId"] = self.session
        os.write(self._out, json.dumps(message).encode() + b"\0")
        deadline = time.monotonic() + timeout
        while True:
            reply = self._next(deadline)
            if reply.get("id") == self._id:
                assert "error" not in reply, reply
                return reply["result"]

    def _next(self, deadline: float) -> dict[str, Any]:
        while b"\0" not in self._buffer:
            left = deadline - time.monotonic()
            assert left > 0, "no answer from chromium"
            ready, _, _ = select.select([self._in], [], [], left)
            if ready:
                chunk = os.read(self._in, 1 << 16)
                assert chunk, "chromium closed the pipe"
                self._buffer += chunk
        message, self._buffer = self._buffer.split(b"\0", 1)
        return json.loads(message)

    def evaluate(self, script: str) -> Any:
        result = self.send("Runtime.evaluate", {"expression": script, "returnByValue": True, "awaitPromise": True})
        assert "exceptionDetails" not in result, result
        return result["result"].get("value")

    def wait_for(self, script: str, timeout: float = 30) -> Any:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            value = self.evaluate(script)
            if value:
                return value
            time.sleep(0.05)
        raise AssertionError(f"timed out waiting for {script}")

    def type_into(self, element_id: str, text: str) -> None:
        """Focus a field, clear it, and type ``text`` as keyboard input would insert it."""
        self.evaluate(f"(() => {{ const e = document.getElementById('{element_id}'); e.focus(); e.select(); }})()")
        self.send("Input.dispatchKeyEvent", {"type": "keyDown", "key": "Backspace", "windowsVirtualKeyCode": 8})
        self.send("Input.dispatchKeyEvent", {"type": "keyUp", "key": "Backspace", "windowsVirtualKeyCode": 8})
        self.send("Input.insertText", {"text": text})

    def click(self, element_id: str) -> None:
        box = self.evaluate(
            f"(() => {{ const r = document.getElementById('{element_id}').getBoundingClientRect();"
            " return [r.x + r.width / 2, r.y + r.height / 2]; })()"
        )
        for kind in ("mousePressed", "mouseReleased"):
            self.send(
                "Input.dispatchMouseEvent",
                {"type": kind, "x": box[0], "y": box[1], "button": "left", "clickCount": 1},
            )

    def close(self) -> None:
        try:
            self.session = None
            self.send("Browser.close", timeout=5)
        except (AssertionError, OSError):
            pass
        try:
            self._process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()
        os.close(self._out)
        os.close(self._in)


@pytest.fixture(scope="module")
def page(tmp_path_factory):
    server = make_server(port=0, limits=Limits(seconds=5.0, workers=1), quiet=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    browser = Browser(tmp_path_factory.mktemp("chromium-profile"))
    try:
        target = browser.send("Target.createTarget", {"url": "about:blank"})["targetId"]
        browser.session = browser.send("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        browser.send("Page.enable")
        browser.url = f"http://127.0.0.1:{server.server_address[1]}/"
        browser.send("Page.navigate", {"url": browser.url})
        browser.wait_for("document.body && document.body.dataset.state === 'ready'")
        yield browser
    finally:
        browser.close()
        server.shutdown()
        server.server_close()


def test_type_an_expression_and_see_its_derivative(page, tmp_path):
    text, wrt = "sum_i(log(1 + exp(-y_i X_ij w_j)))", "w"
    page.type_into("input", text)
    page.type_into("wrt", wrt)
    page.evaluate("document.body.dataset.state = 'typed'")
    page.click("go")
    page.wait_for("document.body.dataset.state === 'done'")
    shown = page.evaluate(
        """(() => {
        const panel = document.getElementById('panel-derivative');
        const math = panel.querySelector('math');
        const box = math.getBoundingClientRect();
        return {
            input: document.getElementById('input').value,
            isMathML: math instanceof MathMLElement,
            display: getComputedStyle(math).display,
            width: box.width, height: box.height,
            text: panel.querySelector('pre').textContent,
            error: document.getElementById('error').hidden,
        };
    })()"""
    )
    assert shown["input"] == text and shown["error"]
    assert shown["isMathML"] and shown["display"] == "block math"
    assert shown["width"] > 50 and shown["height"] > 10
    expected = ix.diff(ix.parse(text), wrt)
    assert shown["text"] == str(expected)
    png = base64.b64decode(page.send("Page.captureScreenshot", {"format": "png"})["data"])
    assert png.startswith(b"\x89PNG\r\n\x1a\n") and len(png) > 10_000
    (tmp_path / "playground.png").write_bytes(png)
    ARTIFACTS.mkdir(exist_ok=True)
    (ARTIFACTS / "playground.png").write_bytes(png)


def test_bad_input_shows_the_caret_message_as_text(page):
    page.type_into("input", "x_i <b>A_ij</b> x_j")
    page.type_into("wrt", "x")
    page.evaluate("document.body.dataset.state = 'typed'")
    page.click("go")
    page.wait_for("document.body.dataset.state === 'error'")
    error = page.evaluate(
        "(() => { const e = document.getElementById('error');"
        " return {hidden: e.hidden, text: e.textContent, bold: e.querySelectorAll('b').length}; })()"
    )
    assert not error["hidden"] and error["bold"] == 0  # shown as text, never as markup
    lines = error["text"].splitlines()
    assert "x_i <b>A_ij</b> x_j" in lines[1] and lines[2].strip().startswith("^")


def test_python_tab_and_copy(page):
    page.type_into("input", "x_i A_ij x_j")
    page.type_into("wrt", "x")
    page.evaluate("document.body.dataset.state = 'typed'")
    page.click("go")
    page.wait_for("document.body.dataset.state === 'done'")
    page.evaluate("document.querySelector('[data-tab=python]').click()")
    code = page.evaluate(
        "document.getElementById('panel-python').hidden ? null : document.getElementById('python-code').textContent"
    )
    assert code is not None and "def evaluate(x, A)" in code
    page.click("copy")
    assert page.wait_for("document.getElementById('copy').textContent === 'Copied'")


def test_a_link_fills_the_form_and_computes(page):
    text = "u_i / v_i"
    page.evaluate("document.body.dataset.state = 'leaving'")  # the old page's state cannot be mistaken for done
    page.send("Page.navigate", {"url": page.url + "?" + urlencode({"input": text, "wrt": "v"})})
    page.wait_for("document.body && document.body.dataset.state === 'done'")
    shown = page.evaluate(
        """(() => {
        const panel = document.getElementById('panel-derivative');
        return {text: panel.querySelector('pre').textContent, fractions: panel.querySelectorAll('mfrac').length};
    })()"""
    )
    expected = ix.diff(ix.parse(text), "v")
    assert shown["text"] == str(expected) and "/" in str(expected)
    assert shown["fractions"] == str(expected).count(" / ") >= 1
