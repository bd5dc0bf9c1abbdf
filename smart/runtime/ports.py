"""Loopback ports: finding free ones for tests and refusing taken ones before anything starts."""

from __future__ import annotations

import os
import random
import socket
import threading

#: Below Linux's ephemeral range (32768–60999), so an outgoing connection's local port never takes
#: a listening port chosen for a server that has not bound it yet.
LOW, HIGH = 20000, 32767

#: ``LOW-HIGH`` narrowing where this process and its children look for free ports: test runs working
#: side by side (pytest-xdist's workers) each take a slice, so two never pick the same free port
#: before either binds it.
RANGE_ENV = "SMART_PORT_RANGE"

# Ports this process has handed out. Several picks are made before any server binds (a floor's hub,
# monitor and per-station blocks), so "free a moment ago" alone could hand out one port twice.
_handed_out: set[int] = set()
_handing_out = threading.Lock()


def free_port(host: str = "127.0.0.1") -> int:
    """A port below the ephemeral range that was free a moment ago."""
    return free_block(1, host) + 1


def is_free(port: int, host: str = "127.0.0.1") -> bool:
    """Whether ``host:port`` can be bound now (SO_REUSEADDR, as servers bind)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
        return True


def port_range() -> tuple[int, int]:
    """Where free ports are looked for: ``SMART_PORT_RANGE`` if set, else below the ephemeral range."""
    narrowed = os.environ.get(RANGE_ENV)
    if not narrowed:
        return LOW, HIGH
    low, _, high = narrowed.partition("-")
    try:
        bounds = int(low), int(high)
    except ValueError:
        raise ValueError(f"{RANGE_ENV}={narrowed!r} is not LOW-HIGH (two port numbers)") from None
    if not LOW <= bounds[0] < bounds[1] <= HIGH:
        raise ValueError(f"{RANGE_ENV}={narrowed!r} must lie within {LOW}-{HIGH}")
    return bounds


def free_block(
    count: int, host: str = "127.0.0.1", *, low: int | None = None, high: int | None = None
) -> int:
    """A base port such that ``base + 1 … base + count`` were all free a moment ago."""
    if low is None or high is None:
        low, high = port_range()
    rng = random.Random()
    # Random bases first, so test runs side by side on one machine rarely reach for the same ports;
    # then every base in order, because random picks in a crowded range (other suites' servers,
    # blocks already handed out) can miss the few gaps left that still hold a whole block.
    bases: list[int] = [rng.randrange(low, high - count - 1) for _ in range(200)]
    bases += range(low, high - count - 1)
    with _handing_out:
        for base in bases:
            block = range(base + 1, base + count + 1)
            if _handed_out.isdisjoint(block) and all(is_free(port, host) for port in block):
                _handed_out.update(block)
                return base
    raise RuntimeError(f"no block of {count} free ports found on {host} between {low} and {high}")
