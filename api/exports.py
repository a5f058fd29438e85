"""How many exports (CSV and NDJSON streams) may run at once in this process: in all,
and from one client address.

A stream holds a database connection and its place in the server's queues for as
long as its client reads, minutes for a large export: without a cap, one client
opening many streams would take every connection and the export threads' time
(api/edge.py bounds the threads). A stream takes a slot before its first byte and
gives it back when its response is closed, however it ends. Counted per worker process: with N
workers, an address may run N times as many (docs/operations.md, "Threats and limits").
"""

import threading
from collections import Counter

from flask import current_app, request

from api.problems import SERVER_BUSY, TOO_MANY_EXPORTS, Problem

# Seconds a client refused a slot is told to wait: an export usually ends in seconds.
RETRY_AFTER_S = 10

_lock = threading.Lock()
_running: Counter[str] = Counter()


class Slot:
    """One running export's place; give it back once, when the stream ends."""

    def __init__(self, address: str) -> None:
        self.address = address
        self._held = True

    def give_back(self) -> None:
        with _lock:
            if self._held:
                self._held = False
                _running[self.address] -= 1
                if not _running[self.address]:
                    del _running[self.address]


def take_slot() -> Slot:
    """A slot for one export from the request's address: a 429 problem if the address
    runs EXPORTS_PER_ADDRESS already, a 503 if the process runs EXPORTS_RUNNING."""
    address = request.remote_addr or ""
    per_address = current_app.config["EXPORTS_PER_ADDRESS"]
    in_all = current_app.config["EXPORTS_RUNNING"]
    with _lock:
        if _running[address] >= per_address:
            raise Problem(
                429,
                f"{address} runs {per_address} exports already, as many as one address "
                "may; retry when one has ended (Retry-After), or page through JSON instead.",
                type=TOO_MANY_EXPORTS,
                title="Too many exports",
                headers={"Retry-After": str(RETRY_AFTER_S)},
            )
        if _running.total() >= in_all:
            raise Problem(
                503,
                f"The server runs {in_all} exports already; retry after {RETRY_AFTER_S} s.",
                type=SERVER_BUSY,
                title="Server busy",
                headers={"Retry-After": str(RETRY_AFTER_S)},
            )
        _running[address] += 1
    return Slot(address)


def running() -> int:
    """Exports running in this process."""
    with _lock:
        return _running.total()
