"""``indexdiff serve``: the playground page, served by Python's standard library on this machine only.

``GET /`` is a static page (``indexdiff/page/``: HTML, CSS and JavaScript, no outside resources); it posts the
input to ``POST /api/derive``, which answers JSON. Requests are bounded: the body's size, the input's length, and
the CPU time of each part of the answer, which is computed in a worker process (``playground.py``) that is killed
and replaced when it overruns, so a pathological expression cannot hang the server. User text is parsed as index
notation, never run.
"""

from __future__ import annotations

import argparse
import errno
import json
import multiprocessing
import queue
import socket
import sys
import threading
from collections.abc import Sequence
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from typing import Any
from urllib.parse import urlsplit

from . import __version__
from .errors import IndexDiffError
from .playground import TABS, error_json, worker

__all__ = ["main", "make_server", "Limits"]

PAGE_FILES = {
    "/": ("index.html", "text/html; charset=utf-8"),
    "/index.html": ("index.html", "text/html; charset=utf-8"),
    "/app.js": ("app.js", "text/javascript; charset=utf-8"),
    "/style.css": ("style.css", "text/css; charset=utf-8"),
}
API = "/api/derive"
HEADERS = {
    "Content-Security-Policy": "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
    "img-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}
LOOPBACK = ("127.0.0.1", "localhost", "::1")


class Limits:
    """How much one request may ask: body bytes, input characters, CPU seconds per part, worker processes, seconds
    to wait for a free worker, and the wall-clock ``deadline`` after which a worker is killed (by default every part
    at its limit, with room for a loaded machine, where CPU time runs slower than the clock)."""

    def __init__(
        self,
        body: int = 64_000,
        text: int = 20_000,
        seconds: float = 5.0,
        workers: int = 2,
        wait: float = 30.0,
        deadline: float | None = None,
    ) -> None:
        self.body, self.text, self.seconds, self.workers, self.wait = body, text, seconds, workers, wait
        self.deadline = 2 * seconds * (1 + len(TABS)) + 5 if deadline is None else deadline


class _Worker:
    """A worker process, the server's end of its pipe, and whether it has said it is ready."""

    def __init__(self, process: Any, conn: Any) -> None:
        self.process, self.conn, self.ready = process, conn, False


class Workers:
    """Worker processes (spawned: no fork of a threaded server) answering one request at a time each."""

    STARTUP = 120.0  # seconds a new worker may take to import (a loaded machine)

    def __init__(self, limits: Limits) -> None:
        self._limits = limits
        self._context = multiprocessing.get_context("spawn")
        self._idle: queue.Queue[_Worker] = queue.Queue()
        self._all: set[Any] = set()
        self._lock = threading.Lock()
        self._closed = False
        for _ in range(limits.workers):
            self._idle.put(self._start())

    def _start(self) -> _Worker:
        mine, theirs = self._context.Pipe()
        process = self._context.Process(target=worker, args=(theirs, self._limits.seconds), daemon=True)
        process.start()
        theirs.close()
        with self._lock:
            self._all.add(process)
        return _Worker(process, mine)

    def _replace(self, w: _Worker) -> None:
        """Kill a worker and start another in its place, in the background."""
        w.process.kill()
        w.conn.close()

        def restart() -> None:
            w.process.join()
            with self._lock:
                self._all.discard(w.process)
                if self._closed:
                    return
            self._idle.put(self._start())

        threading.Thread(target=restart, daemon=True).start()

    def run(self, request: dict[str, Any]) -> dict[str, Any] | None:
        """The worker's answer; None when every worker stayed busy for ``limits.wait`` seconds."""
        try:
            w = self._idle.get(timeout=self._limits.wait)
        except queue.Empty:
            return None
        reply: dict[str, Any] | None = None
        try:
            if not w.ready:  # the deadline counts computing, not a new worker's start
                w.ready = w.conn.poll(self.STARTUP) and w.conn.recv() == "ready"
            if w.ready:
                w.conn.send(request)
                if w.conn.poll(self._limits.deadline):
                    reply = w.conn.recv()
        except (EOFError, OSError):
            reply = None
        if reply is None:  # past the deadline (stuck where the CPU-time limit cannot interrupt), or dead
            died = not w.process.is_alive() or not w.ready
            self._replace(w)
            what = "the computation ended unexpectedly" if died else "the request took too long"
            err = IndexDiffError(what, hint="split the expression into statements, or differentiate fewer times")
            return {"ok": False, "error": error_json(err) | {"internal": died}}
        if reply.pop("restart", False):
            self._replace(w)
        else:
            self._idle.put(w)
        return reply

    def close(self) -> None:
        with self._lock:
            self._closed = True
            processes = list(self._all)
        for p in processes:
            p.kill()
        for p in processes:
            p.join(timeout=5)


def _request(body: bytes, limits: Limits) -> tuple[HTTPStatus, dict[str, Any]]:
    """The request's fields, checked (status OK), or the status and error to answer."""

    def bad(status: HTTPStatus, reason: str, hint: str) -> tuple[HTTPStatus, dict[str, Any]]:
        return status, {"ok": False, "error": error_json(IndexDiffError(reason, hint=hint))}

    shape = 'send {"input": "x_i A_ij x_j", "wrt": "x", "dims": "", "seed": 0}'
    try:
        data = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        return bad(HTTPStatus.BAD_REQUEST, "the request is not JSON", shape)
    if not isinstance(data, dict) or not isinstance(data.get("input"), str):
        return bad(HTTPStatus.BAD_REQUEST, "the request has no input text", shape)
    fields = {k: data.get(k, "") for k in ("input", "wrt", "dims")}
    if not all(isinstance(v, str) for v in fields.values()):
        return bad(HTTPStatus.BAD_REQUEST, "input, wrt and dims must be text", shape)
    seed = data.get("seed", 0)
    if not isinstance(seed, int) or isinstance(seed, bool) or not 0 <= seed < 2**32:
        return bad(HTTPStatus.BAD_REQUEST, "seed must be an integer from 0 to 2^32 - 1", shape)
    for name, value in fields.items():
        try:
            value.encode("utf-8")
        except UnicodeEncodeError as err:  # a lone surrogate (\ud800): not text
            return bad(HTTPStatus.BAD_REQUEST, f"the {name} is not Unicode text (at character {err.start})", shape)
        if len(value) > limits.text:
            return bad(
                HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
                f"the {name} is too long ({len(value)} characters; at most {limits.text})",
                "split a long program into files and use the command line: indexdiff -f FILE",
            )
    return HTTPStatus.OK, {**fields, "seed": seed}


class Handler(BaseHTTPRequestHandler):
    """The page's files on GET, derivations on POST /api/derive; anything else is a 404 (or 405)."""

    server: PlaygroundServer
    server_version = f"indexdiff/{__version__}"
    protocol_version = "HTTP/1.1"
    timeout = 60  # seconds a connection may stay silent

    def _send(self, status: HTTPStatus, body: bytes, content_type: str, extra: dict[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for key, value in {**HEADERS, **(extra or {})}.items():
            self.send_header(key, value)
        self.end_headers()
        if self.command != "HEAD":
            try:
                self.wfile.write(body)
            except ConnectionError:  # the client left before its answer
                self.close_connection = True

    def _json(self, status: HTTPStatus, data: dict[str, Any], extra: dict[str, str] | None = None) -> None:
        body = json.dumps(data, ensure_ascii=False).encode("utf-8")
        self._send(status, body, "application/json; charset=utf-8", extra)

    def _error(self, status: HTTPStatus, reason: str, hint: str, extra: dict[str, str] | None = None) -> None:
        self._json(status, {"ok": False, "error": error_json(IndexDiffError(reason, hint=hint))}, extra)

    def _host_ok(self) -> bool:
        """On a loopback address, only requests addressed to this machine by name (no DNS rebinding)."""
        if self.server.server_address[0] not in ("127.0.0.1", "::1"):
            return True
        try:
            host = urlsplit("//" + (self.headers.get("Host") or "")).hostname
        except ValueError:
            return False
        return host in LOOPBACK

    def do_GET(self) -> None:  # noqa: N802 (the standard library's name)
        path = urlsplit(self.path).path
        if not self._host_ok():
            self._error(HTTPStatus.FORBIDDEN, "unknown host", "open http://127.0.0.1:PORT/")
        elif path in PAGE_FILES:
            name, content_type = PAGE_FILES[path]
            body = resources.files("indexdiff").joinpath("page", name).read_bytes()
            self._send(HTTPStatus.OK, body, content_type)
        elif path == API:
            self._error(HTTPStatus.METHOD_NOT_ALLOWED, "use POST", "POST JSON to " + API, {"Allow": "POST"})
        else:
            self._error(HTTPStatus.NOT_FOUND, f"no page at {path[:100]}", "open /")

    do_HEAD = do_GET  # noqa: N815

    def do_POST(self) -> None:  # noqa: N802
        path = urlsplit(self.path).path
        limits = self.server.limits
        length = self.headers.get("Content-Length")
        content_type = (self.headers.get("Content-Type") or "").split(";")[0].strip().lower()
        if not self._host_ok():
            self._error(HTTPStatus.FORBIDDEN, "unknown host", "open http://127.0.0.1:PORT/")
        elif path != API:
            status = HTTPStatus.METHOD_NOT_ALLOWED if path in PAGE_FILES else HTTPStatus.NOT_FOUND
            self._error(status, f"nothing to POST to at {path[:100]}", "POST to " + API, {"Allow": "GET"})
        elif length is None or not length.isdigit():
            self._error(HTTPStatus.LENGTH_REQUIRED, "the request has no Content-Length", "send the body's length")
        elif int(length) > limits.body:
            self.close_connection = True  # the body is not read
            self._error(
                HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
                f"the request is too large ({length} bytes; at most {limits.body})",
                "use the command line for long programs: indexdiff -f FILE",
                {"Connection": "close"},
            )
        elif content_type != "application/json":
            self.rfile.read(int(length))
            self._error(HTTPStatus.UNSUPPORTED_MEDIA_TYPE, "the request is not JSON", "Content-Type: application/json")
        else:
            try:
                body = self.rfile.read(int(length))
            except (TimeoutError, ConnectionError):  # a client that stops sending
                self.close_connection = True
                return
            status, request = _request(body, limits)
            if status != HTTPStatus.OK:
                self._json(status, request)
                return
            assert self.server.workers is not None
            reply = self.server.workers.run(request)
            if reply is None:
                self._error(HTTPStatus.SERVICE_UNAVAILABLE, "the server is busy", "try again", {"Retry-After": "5"})
            elif reply["ok"]:
                self._json(HTTPStatus.OK, reply)
            else:
                internal = reply["error"].get("internal")
                self._json(HTTPStatus.INTERNAL_SERVER_ERROR if internal else HTTPStatus.UNPROCESSABLE_ENTITY, reply)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 (the standard library's name)
        if not self.server.quiet:
            super().log_message(format, *args)


class PlaygroundServer(ThreadingHTTPServer):
    """The HTTP server with its workers and limits."""

    daemon_threads = True

    def __init__(self, address: tuple[str, int], limits: Limits, quiet: bool = False) -> None:
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        self.workers: Workers | None = None
        super().__init__(address, Handler)  # binds (a port in use raises here)
        self.limits, self.quiet = limits, quiet
        self.workers = Workers(limits)

    def server_close(self) -> None:
        super().server_close()
        if self.workers is not None:
            self.workers.close()


def make_server(host: str = "127.0.0.1", port: int = 8765, limits: Limits | None = None, quiet: bool = False):
    """A playground server bound to ``host:port`` (port 0: any free port); ``serve_forever()`` runs it,
    ``shutdown()`` then ``server_close()`` stop it and its workers. A port in use is an IndexDiffError."""
    try:
        return PlaygroundServer((host, port), limits or Limits(), quiet)
    except OSError as err:
        if err.errno == errno.EADDRINUSE:
            raise IndexDiffError(
                f"port {port} is in use", hint="choose another with --port N, or stop the server that uses it"
            ) from None
        raise IndexDiffError(f"cannot listen on {host}:{port}: {err.strerror or err}", hint="check --host") from None


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]  # bad options are bad input
        self.print_usage(sys.stderr)
        hint = "see indexdiff serve --help (to differentiate a tensor named serve: indexdiff --wrt serve serve)"
        raise IndexDiffError(message, hint=hint)


def _parser() -> argparse.ArgumentParser:
    p = _Parser(
        prog="indexdiff serve",
        description="Serve the indexdiff playground page on this machine: type an expression or a program, see its "
        "derivative as rendered math, the steps, the matrix form, a numerical check, the cost and Python code.",
        epilog="example: indexdiff serve --port 8765, then open http://127.0.0.1:8765/",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--port", type=int, default=8765, help="the port (default 8765; 0 picks a free one)")
    p.add_argument(
        "--host", default="127.0.0.1", help="the address to listen on (default 127.0.0.1: this machine only)"
    )
    p.add_argument("--time-limit", type=float, default=5.0, metavar="SECONDS", help="CPU seconds per part (default 5)")
    p.add_argument("--workers", type=int, default=2, help="worker processes computing answers (default 2)")
    p.add_argument("--quiet", action="store_true", help="do not log requests")
    return p


def main(argv: Sequence[str]) -> int:
    """``indexdiff serve ...``: serve until interrupted. Bad options and a port in use exit 2."""
    try:
        args = _parser().parse_args(argv)
        if not 0 <= args.port <= 65535:
            raise IndexDiffError(f"--port must be from 0 to 65535, not {args.port}", hint="e.g. --port 8765")
        if not 0.1 <= args.time_limit <= 600 or not 1 <= args.workers <= 64:
            raise IndexDiffError("--time-limit must be 0.1 to 600 and --workers 1 to 64", hint="e.g. --time-limit 5")
        server = make_server(args.host, args.port, Limits(seconds=args.time_limit, workers=args.workers), args.quiet)
    except IndexDiffError as err:
        print(f"indexdiff: error: {err}", file=sys.stderr)
        return 2
    except SystemExit as done:  # --help
        return done.code if isinstance(done.code, int) else 0
    host, port = server.server_address[:2]
    shown = f"[{host}]" if ":" in host else host
    print(f"indexdiff playground: http://{shown}:{port}/ (Ctrl-C stops it)", flush=True)
    if host not in ("127.0.0.1", "::1"):
        print(f"warning: listening on {host}: other machines can reach this page", file=sys.stderr)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        return 130
    finally:
        server.server_close()
    return 0
