"""The playground server: the page, the JSON endpoint, bad and oversize input, a pathological input cut off by its
CPU-time limit while the server keeps answering, programs, and the command line's ``indexdiff serve``."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import threading
import urllib.error
import urllib.request
import xml.etree.ElementTree as ET
import zipfile
from pathlib import Path

import numpy as np
import pytest

import indexdiff as ix
from indexdiff import playground
from indexdiff.cli import main
from indexdiff.serve import Limits, make_server


@pytest.fixture(scope="module")
def url():
    server = make_server(port=0, limits=Limits(seconds=1.0, body=64_000, text=20_000), quiet=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def get(url: str, headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=120) as r:
            return r.status, dict(r.headers), r.read()
    except urllib.error.HTTPError as err:
        return err.code, dict(err.headers), err.read()


def post(url: str, data: object, content_type: str = "application/json") -> tuple[int, dict]:
    body = data if isinstance(data, bytes) else json.dumps(data).encode()
    request = urllib.request.Request(url + "/api/derive", body, {"Content-Type": content_type}, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=120) as r:
            assert r.headers["Content-Type"] == "application/json; charset=utf-8"
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as err:
        assert err.headers["Content-Type"] == "application/json; charset=utf-8"
        return err.code, json.loads(err.read())


def test_page_and_its_files(url):
    status, headers, body = get(url + "/")
    assert status == 200 and headers["Content-Type"] == "text/html; charset=utf-8"
    assert b'<script src="app.js"' in body and b'id="input"' in body
    assert "script-src 'self'" in headers["Content-Security-Policy"]
    assert headers["X-Content-Type-Options"] == "nosniff"
    for path, kind in (("/app.js", "text/javascript"), ("/style.css", "text/css")):
        status, headers, body = get(url + path)
        assert status == 200 and headers["Content-Type"].startswith(kind) and len(body) > 100
    assert b"http://" not in get(url + "/app.js")[2] and b"https://" not in get(url + "/")[2]  # nothing outside


def test_unknown_paths_and_methods(url):
    status, _, body = get(url + "/nothing/here")
    assert status == 404 and json.loads(body)["ok"] is False
    status, headers, _ = get(url + "/api/derive")
    assert status == 405 and headers["Allow"] == "POST"
    request = urllib.request.Request(url + "/", b"{}", {"Content-Type": "application/json"}, method="POST")
    with pytest.raises(urllib.error.HTTPError) as info:
        urllib.request.urlopen(request, timeout=60)
    assert info.value.code == 405


def test_derivative_and_tabs(url):
    status, data = post(url, {"input": "x_i A_ij x_j", "wrt": "x; A", "dims": "i=40, j=40"})
    assert status == 200 and data["ok"] and data["kind"] == "expression"
    grad, by_a = data["derivatives"]
    assert grad["wrt"] == "x" and by_a["wrt"] == "A"
    rng = np.random.default_rng(0)
    A, x = rng.normal(size=(4, 4)), rng.normal(size=4)
    assert np.allclose(ix.evaluate(ix.parse(grad["text"]), {"A": A, "x": x}), (A + A.T) @ x)
    assert np.allclose(ix.evaluate(ix.parse(by_a["text"]), {"x": x}), np.outer(x, x))
    for markup in (data["mathml"], grad["mathml"], by_a["mathml"]):
        assert ET.fromstring(markup).tag.endswith("math")
    tabs = data["tabs"]
    assert tabs["check"]["status"] == "ok" and tabs["check"]["ok"] and "d/dx: ok" in tabs["check"]["text"]
    value, d_x, d_a = tabs["cost"]["rows"]
    assert value["of"] == "value" and value["flops"] > 40 * 40 and d_a["largest_intermediate"] == 40 * 40
    code = tabs["python"]["text"]
    compile(code, "generated.py", "exec")  # shown to the user, never run by the server
    assert "def evaluate(x, A)" in code


def test_steps_and_matrix_tabs(url):
    e = ix.parse("x_i A_ij x_j")
    status, data = post(url, {"input": str(e), "wrt": "x"})
    steps, matrix = data["tabs"]["steps"], data["tabs"]["matrix"]
    (item,) = steps["items"]
    assert steps["status"] == "ok" and item["wrt"] == "x" and len(item["steps"]) > 2
    assert item["steps"][-1]["after"] == data["derivatives"][0]["text"] == str(ix.diff(e, "x"))
    assert "δ contraction" in {s["rule"] for s in item["steps"]}
    assert steps["text"] == str(ix.steps(e, "x"))
    assert matrix["status"] == "ok"
    value, gradient = matrix["text"].splitlines()
    rng = np.random.default_rng(2)
    arrays = {"A": rng.normal(size=(3, 3)), "x": rng.normal(size=3)}
    A, x = arrays["A"], arrays["x"]
    assert np.allclose(ix.evaluate(ix.parse_matrix(value), arrays), x @ A @ x)
    assert np.allclose(ix.evaluate(ix.parse_matrix(gradient), arrays), (A + A.T) @ x)
    status, data = post(url, {"input": "h_i = tanh(W_ij x_j)\nL = h_i h_i", "wrt": "W; x"})
    (item,) = data["tabs"]["steps"]["items"]
    assert item["wrt"] == "W; x" and {"dW", "dx"} <= {s["lhs"].split("_")[0] for s in item["steps"]}
    status, data = post(url, {"input": "h_i = tanh(W_ij x_j)\nL = h_i h_i", "wrt": "W,W"})
    assert data["tabs"]["steps"]["status"] == "error" and "one variable" in data["tabs"]["steps"]["text"]


def test_cost_needs_sizes(url):
    status, data = post(url, {"input": "W_ij x_j", "wrt": "x"})
    assert status == 200 and data["tabs"]["cost"]["status"] == "unavailable"
    assert "i=1000" in data["tabs"]["cost"]["text"]


def test_bad_input_has_the_caret_message(url):
    status, data = post(url, {"input": "x_i A_ij x_", "wrt": "x"})
    assert status == 422 and not data["ok"]
    lines = data["error"]["message"].splitlines()
    assert "x_i A_ij x_" in lines[1] and lines[2].strip() == "^" and lines[2].index("^") == lines[1].rindex("x_") + 1
    assert data["error"]["pos"] == 10 and data["error"]["hint"]
    status, data = post(url, {"input": "x_i y_i", "wrt": ""})
    assert status == 422 and "x, y" in data["error"]["hint"]
    status, data = post(url, {"input": "x_i y_i", "wrt": "x", "dims": "q=3"})
    assert status == 422 and "'q'" in data["error"]["message"]
    status, data = post(url, {"input": "<script>&", "wrt": "x"})
    assert status == 422 and "<script>&" in data["error"]["message"]  # JSON text; the page shows it as text


def test_bad_requests(url):
    assert post(url, b"not json")[0] == 400
    assert post(url, {"wrt": "x"})[0] == 400
    assert post(url, {"input": 3, "wrt": "x"})[0] == 400
    assert post(url, {"input": "x_i x_i", "wrt": "x", "seed": -1})[0] == 400
    assert post(url, {"input": "x_i x_i", "wrt": "x"}, content_type="text/plain")[0] == 415
    assert post(url, b"[" * 30_000 + b"]" * 30_000)[0] == 400  # nesting deeper than json's recursion
    assert post(url, b'{"input": "x_i \\ud800", "wrt": "x"}')[0] == 400  # a lone surrogate is not text


def test_oversize_input(url):
    status, data = post(url, {"input": "x_i x_i + " * 2000 + "1", "wrt": "x"})
    assert status == 413 and "too long" in data["error"]["message"]
    status, data = post(url, {"input": "x" * 70_000, "wrt": "x"})
    assert status == 413 and "too large" in data["error"]["message"]


def test_missing_length_and_foreign_host(url):
    port = int(url.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port), timeout=60) as s:
        s.sendall(b"POST /api/derive HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n\r\n")
        assert s.recv(100).startswith(b"HTTP/1.1 411")
    assert get(url + "/", {"Host": "attacker.example:80"})[0] == 403


def _nested_softmax(levels: int) -> str:
    text = "x_i"
    for _ in range(levels):
        text = f"softmax_i({text})"
    return f"L = y_i {text}"


def test_pathological_input_times_out_and_the_server_still_answers(url):
    answers: list[tuple[int, dict]] = []
    slow = threading.Thread(target=lambda: answers.append(post(url, {"input": _nested_softmax(20), "wrt": "x,x"})))
    slow.start()
    status, _, body = get(url + "/")  # the page answers meanwhile
    assert status == 200 and b"indexdiff" in body
    slow.join(timeout=300)
    ((status, data),) = answers
    assert status == 422 and "CPU time" in data["error"]["message"] and data["error"]["hint"]
    for _ in range(3):  # the worker was replaced; every request is answered
        status, data = post(url, {"input": "x_i x_i", "wrt": "x"})
        assert status == 200 and data["derivatives"][0]["text"] == "2 x_k"


def test_a_worker_past_its_deadline_is_replaced():
    """The wall-clock deadline ends what the CPU-time limit cannot (here: a limit longer than the deadline)."""
    server = make_server(port=0, limits=Limits(seconds=60, workers=1, deadline=1.0), quiet=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    there = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        assert post(there, {"input": "x_i x_i", "wrt": "x"})[0] == 200  # the worker has started
        status, data = post(there, {"input": _nested_softmax(20), "wrt": "x,x"})
        assert status == 422 and data["error"]["reason"] == "the request took too long"
        status, data = post(there, {"input": "x_i x_i", "wrt": "x"})  # answered by the worker started in its place
        assert status == 200 and data["derivatives"][0]["text"] == "2 x_k"
    finally:
        server.shutdown()
        server.server_close()


def test_program_input(url):
    text = "h_i = tanh(W_ij x_j)\nL = sum_i((h_i - t_i)^2)"
    status, data = post(url, {"input": text, "wrt": "W; x"})
    assert status == 200 and data["kind"] == "program"
    (backward,) = data["derivatives"]
    program = ix.parse(backward["text"])
    assert {"dW", "dx"} <= set(program.names)
    rng = np.random.default_rng(1)
    W, x, t = rng.normal(size=(3, 4)), rng.normal(size=4), rng.normal(size=3)
    h = np.tanh(W @ x)
    dz = 2 * (h - t) * (1 - h**2)
    arrays = {"W": W, "x": x, "t": t}
    assert np.allclose(ix.evaluate(program, arrays, output="dW"), np.outer(dz, x))
    assert np.allclose(ix.evaluate(program, arrays, output="dx"), W.T @ dz)
    rows = [r for r in ET.fromstring(backward["mathml"]).iter() if r.tag.endswith("mtr")]
    assert len(rows) == len(program.statements)
    assert data["tabs"]["check"]["ok"] and "def gradients(" in data["tabs"]["python"]["text"]


def test_command_line(capsys):
    assert main(["serve", "--help"]) == 0
    assert "--port" in capsys.readouterr().out
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert main(["serve", "--port", str(port)]) == 2
    err = capsys.readouterr().err
    assert f"port {port} is in use" in err and "hint:" in err and "Traceback" not in err
    assert main(["serve", "--port", "70000"]) == 2
    assert main(["serve", "--wrt", "x"]) == 2
    assert "indexdiff --wrt serve serve" in capsys.readouterr().err


def test_the_wheel_ships_the_page(tmp_path):
    root = Path(__file__).resolve().parent.parent
    build = [sys.executable, "-m", "hatchling", "build", "-t", "wheel", "-d", str(tmp_path)]
    subprocess.run(build, cwd=root, check=True, capture_output=True)
    (wheel,) = tmp_path.glob("indexdiff-*.whl")
    with zipfile.ZipFile(wheel) as z:
        for name in ("index.html", "app.js", "style.css"):
            assert z.read(f"indexdiff/page/{name}") == (root / "indexdiff" / "page" / name).read_bytes()
        assert {"indexdiff/serve.py", "indexdiff/playground.py", "indexdiff/mathml.py"} <= set(z.namelist())


def test_a_bug_is_reported_not_a_dead_worker(monkeypatch):
    def broken(*args):
        raise TypeError("a bug")

    monkeypatch.setattr(playground, "_python", broken)
    reply = playground.derive({"input": "x_i x_i", "wrt": "x"}, limit=5)
    assert reply["ok"] and reply["restart"] and reply["tabs"]["python"]["status"] == "error"
    assert "internal error: TypeError: a bug" in reply["tabs"]["python"]["text"]
    assert reply["tabs"]["check"]["ok"]  # the other tabs are computed
    monkeypatch.setattr(playground, "_derivative", broken)
    reply = playground.derive({"input": "x_i x_i", "wrt": "x"}, limit=5)
    assert not reply["ok"] and reply["error"]["internal"] and reply["restart"]
