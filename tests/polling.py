"""Bounded polling for tests: wait for a condition instead of sleeping a guess."""

import socket
import time


def wait_until(predicate, timeout=5.0, interval=0.02, what="condition"):
    """Poll ``predicate`` until it returns a truthy value (returned); fail after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        assert time.monotonic() < deadline, f"timed out after {timeout} s waiting for {what}"
        time.sleep(interval)


def accepts_connections(port, host="127.0.0.1"):
    """True once something listens on (host, port)."""
    try:
        with socket.create_connection((host, port), timeout=0.2):
            return True
    except OSError:
        return False
