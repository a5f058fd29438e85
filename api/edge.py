"""The edge: how the server hands requests to the Flask app, and what a slow or hostile
client can cost it.

Under Granian's WSGI interface a request, and the sending of its whole response, run
on one of the worker's Python threads: four clients reading an export 1 KB every 2 s
held all four threads (and /healthz timed out), and so did eight that sent their
bodies a byte at a time. Granian speaks ASGI to this module instead, which runs the
WSGI app itself. (Not RSGI, Granian's own interface, though it cost 4-6% less CPU a
page in a prototype: its streamed response goes through an unbounded channel, so
a send never waits for the client. Granian 2.8.9 held a whole 100 MiB stream for a
reader that took none of it, and no send deadline could cut that reader.)

- the request body is read with a deadline (408 past it), and no further than the
  app's size bound (which answers 413), holding no thread while it arrives;
- the app runs on one of three bounded pools of threads: writes (one thread: SQLite
  has one writer at a time, so a process's writers queue here in order instead of
  racing for the lock, and a writer waiting on another process's lock holds no
  reader's thread), exports (the chunks of a streamed response after its first) and
  reads (everything else). A request that waits for its pool past the queue deadline
  gets a 503 with Retry-After;
- every chunk of a response is sent with a deadline: a reader who stalls past it is
  cut (its client sees an incomplete body, never a short one that looks whole), and
  while it waits, it holds no thread;
- the access log is written here, with secrets in query strings redacted.

Each bound is an environment variable (see `settings`), listed with its reason in
docs/operations.md, "Threats and limits".
"""

import asyncio
import concurrent.futures
import contextlib
import contextvars
import dataclasses
import gc
import io
import os
import re
import sys
import time
import traceback
from collections.abc import Awaitable, Callable, Iterable, Iterator, MutableMapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote_to_bytes

import orjson
from flask import Flask

from api.cors import EXPOSED_HEADERS, allowed_origin
from api.problems import PROBLEM_CONTENT_TYPE, SERVER_BUSY, SLOW_REQUEST
from api.request_ids import HEADER as REQUEST_ID_HEADER
from api.request_ids import new_request_id

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
# Query parameters whose values are secrets, never written to the access log.
SECRET_PARAMETERS = frozenset(
    {"api_key", "apikey", "key", "token", "access_token", "secret", "password", "auth"}
)
_SECRET = re.compile(
    r"(?:^|(?<=&))((?:" + "|".join(sorted(SECRET_PARAMETERS)) + r")=)[^&]*", re.IGNORECASE
)


@dataclass(frozen=True)
class Settings:
    """The edge's bounds, from the environment that `python -m api serve` sets."""

    # Threads per worker process for reads, writes and the chunks of exports.
    read_threads: int = 4
    write_threads: int = 1
    export_threads: int = 2
    # Seconds a request's whole body may take to arrive (the largest, 2 MiB, needs
    # 200 KB/s at 10 s; a partner's script on a server sends it in milliseconds).
    body_deadline_s: float = 10.0
    # Seconds one chunk (at most 64 KiB of an export) may wait for the client to take
    # it: a reader slower than about 4 KB/s for that long is cut.
    send_deadline_s: float = 15.0
    # Seconds a request may wait for a thread of its pool before it is answered 503.
    queue_deadline_s: float = 5.0
    # Requests whose bodies are being read at once: each may buffer up to the largest
    # body before the app sees it, so this bounds that memory (32 x 2 MiB = 64 MiB).
    bodies_in_flight: int = 32
    # Bytes of a request body: the app's MAX_CONTENT_LENGTH, set by Edge.
    max_body_bytes: int = 0


def settings(environ: MutableMapping[str, str] = os.environ) -> Settings:
    """The edge's bounds: the defaults above, each overridden by the environment
    variable of its name in capitals after SALVO_ (SALVO_READ_THREADS, ...)."""
    defaults = Settings()

    def number(name: str, default: float, kind: type) -> Any:
        value = environ.get(f"SALVO_{name.upper()}")
        if value is None:
            return default
        parsed = kind(value)
        if parsed <= 0:
            raise ValueError(f"SALVO_{name.upper()} must be positive, not {value!r}")
        return parsed

    return Settings(
        read_threads=number("read_threads", defaults.read_threads, int),
        write_threads=number("write_threads", defaults.write_threads, int),
        export_threads=number("export_threads", defaults.export_threads, int),
        body_deadline_s=number("body_deadline_s", defaults.body_deadline_s, float),
        bodies_in_flight=number("bodies_in_flight", defaults.bodies_in_flight, int),
        send_deadline_s=number("send_deadline_s", defaults.send_deadline_s, float),
        queue_deadline_s=number("queue_deadline_s", defaults.queue_deadline_s, float),
    )


class Busy(Exception):
    """A request waited for its pool's thread past the queue deadline."""


class Pool:
    """A pool of threads whose calls go into the executor's queue at once, so that a
    thread that ends one call starts the next without waiting for the event loop. A
    call still queued at the deadline is taken back (it never runs) and is Busy."""

    def __init__(self, name: str, threads: int) -> None:
        self.name = name
        self.threads = threads
        self.executor = concurrent.futures.ThreadPoolExecutor(
            threads, thread_name_prefix=f"salvo-{name}"
        )
        # Calls submitted and not yet answered (read and written on the loop's thread).
        self._in_flight = 0

    async def run(self, deadline_s: float, function: Callable[..., Any], *args: Any) -> Any:
        loop = asyncio.get_running_loop()
        answer: asyncio.Future[Any] = loop.create_future()

        def call() -> None:
            # One wake-up of the loop per call, carrying the answer: a wrapped
            # executor future costs two, and a round trip measured 110 us here.
            try:
                result = function(*args)
            except BaseException as error:
                loop.call_soon_threadsafe(self._answered, answer, None, error)
            else:
                loop.call_soon_threadsafe(self._answered, answer, result, None)

        try:
            queued = self.executor.submit(call)
        except RuntimeError:
            # The worker is stopping (lifespan shutdown ended the executor) while
            # Granian still hands it a request: busy, so that the client retries
            # another instance, rather than a 500.
            raise Busy(self.name) from None
        self._in_flight += 1
        # With a thread free the call starts at once, and no timer is set.
        expiry = None
        if self._in_flight > self.threads:
            expiry = loop.call_later(deadline_s, self._expire, queued, answer)
        try:
            return await answer
        except asyncio.CancelledError:
            # The caller is gone: a call that has not started never will.
            if queued.cancel():
                self._in_flight -= 1
            raise
        finally:
            if expiry is not None:
                expiry.cancel()

    def _expire(
        self, queued: "concurrent.futures.Future[None]", answer: "asyncio.Future[Any]"
    ) -> None:
        # cancel() takes back only a call no thread has started: one that has started
        # runs to its end and is answered.
        if queued.cancel():
            self._in_flight -= 1
            if not answer.done():
                answer.set_exception(Busy(self.name))

    def _answered(
        self, answer: "asyncio.Future[Any]", result: Any, error: BaseException | None
    ) -> None:
        # The call has ended (a client that goes away cannot stop a running call).
        self._in_flight -= 1
        if answer.done():
            return  # its caller was cancelled
        if error is not None:
            answer.set_exception(error)
        else:
            answer.set_result(result)


@dataclass
class _Started:
    """What the WSGI app answered: status, headers, the chunks it has given so far
    and, for a streamed body, the iterator of the rest."""

    status: int
    headers: list[tuple[bytes, bytes]]
    chunks: list[bytes]
    rest: Iterator[bytes] | None
    result: Iterable[bytes]


class Edge:
    """The ASGI application Granian runs: the WSGI app behind the bounds above."""

    def __init__(self, app: Flask, bounds: Settings) -> None:
        self.app = app
        self.bounds = dataclasses.replace(bounds, max_body_bytes=app.config["MAX_CONTENT_LENGTH"])
        self._pools: dict[str, Pool] = {}
        self._reading: asyncio.Semaphore | None = None

    def _pool(self, name: str) -> Pool:
        # Made on first use, inside the server's event loop.
        if name not in self._pools:
            threads = getattr(self.bounds, f"{name}_threads")
            self._pools[name] = Pool(name, threads)
        return self._pools[name]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
        elif scope["type"] == "http":
            await self._http(scope, receive, send)

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                for pool in self._pools.values():
                    pool.executor.shutdown(wait=True)
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        began = time.perf_counter()
        environ: dict[str, Any] | None = None

        def logged(status: int) -> None:
            # Written before the response's last message, so that a client which
            # sends its next request on receiving it finds this line logged first.
            # The client is the app's (api.proxies) once it has seen the request.
            peer = (scope.get("client") or ("-", 0))[0]
            client = peer if environ is None else environ.get("REMOTE_ADDR", peer)
            _log_access(scope, status, began, client)

        bounds = self.bounds
        body = await self._body(scope, receive)
        if isinstance(body, int):
            logged(body)
            await _refuse(send, scope, body, bounds, self.app)
            return
        environ = _environ(scope, body)
        pool = "write" if scope["method"] in WRITE_METHODS else "read"
        # One context for the request's calls, whichever threads they run on: a
        # stream's generator keeps Flask's contexts (context variables) across chunks.
        context = contextvars.Context()
        try:
            started: _Started = await self._pool(pool).run(
                bounds.queue_deadline_s, context.run, _start, self.app, environ
            )
        except Busy:
            logged(503)
            await _refuse(send, scope, 503, bounds, self.app)
            return
        except Exception:
            # Flask answers its own errors; this is a fault of the edge's call itself.
            traceback.print_exc()
            logged(500)
            await _refuse(send, scope, 500, bounds, self.app)
            return
        try:
            await self._respond(started, context, receive, send, logged)
        finally:
            close = getattr(started.result, "close", None)
            if close is not None:
                # A stream's generator closes its database connection here (quick).
                # If this task was cancelled while a chunk was being made, the
                # generator is still running: it is closed when it is collected.
                with contextlib.suppress(RuntimeError, ValueError):
                    context.run(close)

    async def _respond(
        self,
        started: "_Started",
        context: contextvars.Context,
        receive: Receive,
        send: Send,
        logged: Callable[[int], None],
    ) -> None:
        """Send the app's answer: whole if its length is known, else chunk by chunk,
        each made on the export pool and sent within the send deadline."""
        start = {
            "type": "http.response.start",
            "status": started.status,
            "headers": started.headers,
        }
        if started.rest is None:
            logged(started.status)
            await send(start)
            body = b"".join(started.chunks)
            await send({"type": "http.response.body", "body": body, "more_body": False})
            return
        # The client going away ends the stream early (Granian answers a receive
        # after the body with http.disconnect once the connection is gone).
        gone = asyncio.ensure_future(_disconnected(receive))
        try:
            await send(start)
            for chunk in started.chunks:
                if not await self._sent(send, chunk, gone):
                    logged(started.status)
                    return
            while True:
                try:
                    chunk = await self._pool("export").run(
                        self.bounds.send_deadline_s, context.run, next, started.rest, None
                    )
                except Exception as error:
                    # After the first bytes the status cannot change: the response
                    # is cut (its client sees an incomplete body), also when no
                    # export thread was free for a send deadline (Busy).
                    if not isinstance(error, Busy):
                        traceback.print_exc()
                    logged(started.status)
                    return
                if chunk is None:
                    break
                if chunk and not await self._sent(send, chunk, gone):
                    logged(started.status)
                    return
            logged(started.status)
            await send({"type": "http.response.body", "body": b"", "more_body": False})
        finally:
            gone.cancel()

    async def _sent(self, send: Send, chunk: bytes, gone: asyncio.Future[None]) -> bool:
        """Send a chunk within the send deadline; False if the client is gone or
        stalled past it (the response is then cut: it ends without its last chunk)."""
        if gone.done():
            return False
        try:
            async with asyncio.timeout(self.bounds.send_deadline_s):
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
        except TimeoutError:
            deadline = self.bounds.send_deadline_s
            print(f"api: cut a response: its client took no data for {deadline:g} s", flush=True)
            return False
        return True

    async def _body(self, scope: Scope, receive: Receive) -> bytes | int:
        """The request's body, or the status refusing it: 408 if it has not all arrived
        within the body deadline, 503 if bodies_in_flight others are being read past
        the queue deadline. A body over the app's limit is read no further than one
        byte past it (not at all when its Content-Length says so): the app answers it
        413."""
        limit = self.bounds.max_body_bytes
        declared = _header(scope, b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            return b""
        if declared in (None, "0") and _header(scope, b"transfer-encoding") is None:
            return b""
        if self._reading is None:
            self._reading = asyncio.Semaphore(self.bounds.bodies_in_flight)
        try:
            async with asyncio.timeout(self.bounds.queue_deadline_s):
                await self._reading.acquire()
        except TimeoutError:
            return 503
        body = bytearray()
        try:
            async with asyncio.timeout(self.bounds.body_deadline_s):
                while len(body) <= limit:
                    message = await receive()
                    if message["type"] == "http.disconnect":
                        break
                    body += message.get("body", b"")
                    if not message.get("more_body"):
                        break
        except TimeoutError:
            return 408
        finally:
            self._reading.release()
        return bytes(body)


def _start(app: Flask, environ: dict[str, Any]) -> _Started:
    """Call the WSGI app (on a pool's thread) and take its answer's first chunk; a body
    of known length (every response but the exports) is taken whole."""
    answered: dict[str, Any] = {}

    def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
        answered["status"], answered["headers"] = status, headers
        return _no_write

    result = app(environ, start_response)
    iterator = iter(result)
    first = next(iterator, None)
    headers = [
        (name.lower().encode("latin-1"), value.encode("latin-1"))
        for name, value in answered["headers"]
    ]
    known_length = any(name == b"content-length" for name, _ in headers)
    chunks = [] if first is None else [first]
    if known_length or first is None:
        chunks.extend(iterator)
        rest = None
    else:
        rest = iterator
    status = int(answered["status"].split(" ", 1)[0])
    return _Started(status, headers, [chunk for chunk in chunks if chunk], rest, result)


def _no_write(data: bytes) -> None:
    raise RuntimeError("Salvo's app never uses WSGI's write()")


async def _disconnected(receive: Receive) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass


async def _refuse(send: Send, scope: Scope, status: int, bounds: Settings, app: Flask) -> None:
    """Answer, as a problem, a request the edge refuses before the app sees it: with
    the headers every answer of the app has (a request id, CORS for a browser app)."""
    headers = [
        (b"content-type", PROBLEM_CONTENT_TYPE.encode()),
        (b"cache-control", b"no-store"),
        (REQUEST_ID_HEADER.lower().encode(), new_request_id().encode()),
    ]
    origin = allowed_origin(app.config["CORS_ORIGINS"], _header(scope, b"origin"))
    if origin is not None:
        headers.append((b"access-control-allow-origin", origin.encode()))
        headers.append((b"access-control-expose-headers", ", ".join(EXPOSED_HEADERS).encode()))
        if origin != "*":
            headers.append((b"vary", b"Origin"))
    if status == 408:
        problem = {
            "type": SLOW_REQUEST,
            "title": "Request timeout",
            "detail": f"The request body did not arrive within {bounds.body_deadline_s:g} s; "
            "send it whole, at once.",
        }
        headers.append((b"connection", b"close"))
    elif status == 500:
        problem = {
            "type": "about:blank",
            "title": "Internal Server Error",
            "detail": "The server failed to answer this request; the failure has been logged.",
        }
    else:
        problem = {
            "type": SERVER_BUSY,
            "title": "Server busy",
            "detail": "The request was not run: the server had no thread free for it "
            f"within {bounds.queue_deadline_s:g} s, or is stopping; retry after the time "
            "given.",
        }
        headers.append((b"retry-after", b"1"))
    body = orjson.dumps({**problem, "status": status, "instance": scope["path"]})
    headers.append((b"content-length", str(len(body)).encode()))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body, "more_body": False})


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope["headers"]:
        if key == name:
            return bytes(value).decode("latin-1")
    return None


def _environ(scope: Scope, body: bytes) -> dict[str, Any]:
    """The WSGI environ (PEP 3333) of an ASGI request, as Granian's WSGI interface built
    it: the path percent-decoded and read as Latin-1, repeated headers joined by commas
    (cookies by semicolons)."""
    raw_path = scope.get("raw_path") or scope["path"].encode()
    server_host, server_port = scope.get("server") or ("127.0.0.1", 80)
    client = scope.get("client") or ("", 0)
    environ: dict[str, Any] = {
        "REQUEST_METHOD": scope["method"],
        "SCRIPT_NAME": scope.get("root_path", ""),
        "PATH_INFO": unquote_to_bytes(bytes(raw_path).split(b"?", 1)[0]).decode("latin-1"),
        "QUERY_STRING": bytes(scope["query_string"]).decode("latin-1"),
        "SERVER_NAME": str(server_host),
        "SERVER_PORT": str(server_port),
        "SERVER_PROTOCOL": f"HTTP/{scope.get('http_version', '1.1')}",
        "REMOTE_ADDR": client[0],
        "REMOTE_PORT": str(client[1]),
        "wsgi.version": (1, 0),
        "wsgi.url_scheme": scope.get("scheme", "http"),
        "wsgi.input": io.BytesIO(body),
        # The body is read whole (or to one byte past the limit): a chunked one too.
        "wsgi.input_terminated": True,
        "wsgi.errors": sys.stderr,
        "wsgi.multithread": True,
        "wsgi.multiprocess": False,
        "wsgi.run_once": False,
    }
    for name, value in scope["headers"]:
        key = bytes(name).decode("latin-1").upper().replace("-", "_")
        text = bytes(value).decode("latin-1")
        if key in ("CONTENT_TYPE", "CONTENT_LENGTH"):
            environ[key] = text
            continue
        key = f"HTTP_{key}"
        if key in environ:
            text = f"{environ[key]}{'; ' if key == 'HTTP_COOKIE' else ','}{text}"
        environ[key] = text
    if "CONTENT_LENGTH" not in environ and body:
        environ["CONTENT_LENGTH"] = str(len(body))
    return environ


def redacted(query: str) -> str:
    """A query string with the value of every secret parameter (SECRET_PARAMETERS)
    replaced, so that no key sent in a URL lands in a log."""
    return _SECRET.sub(r"\1[redacted]", query)


# The access log's time, formatted once a second rather than once a request.
_stamped: list[Any] = [0, ""]


def _log_access(scope: Scope, status: int, began: float, client: str) -> None:
    """One line per request: when, who, what (the query string redacted), the status
    and how long it took, e.g. `"GET /api/v1/events?limit=5 HTTP/1.1" 200 1.2 ms`.
    A request without a query string is logged as it was sent, without a `?`."""
    query = redacted(bytes(scope["query_string"]).decode("latin-1"))
    target = f"{scope['path']}?{query}" if query else scope["path"]
    second = int(time.time())
    if second != _stamped[0]:
        _stamped[:] = second, time.strftime("%Y-%m-%d %H:%M:%S %z", time.localtime(second))
    took = (time.perf_counter() - began) * 1000
    line = (
        f'[{_stamped[1]}] {client} "{scope["method"]} {target} '
        f'HTTP/{scope.get("http_version", "1.1")}" {status} {took:.1f} ms\n'
    )
    sys.stdout.write(line)
    sys.stdout.flush()


def create_edge() -> Edge:
    """Granian's factory (`python -m api serve`): the app, and the edge around it."""
    from api import create_app

    app = create_app()
    # What the app built (its routes, schemas, the OpenAPI spec: ~80,000 objects) lives
    # as long as the worker: frozen, the collector's full passes, which every few
    # hundred requests' garbage sets off, no longer walk it: 0-4% of a page's CPU
    # in-process at 1M events (`bench/inprocess.py --frozen`: 458 -> 437 us for the
    # first page), 2.6% of the server's CPU per type + date page under wrk.
    gc.freeze()
    return Edge(app, settings())
