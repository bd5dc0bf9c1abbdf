"""Loopback ports: finding free ones for tests and refusing taken ones before anything starts."""

from __future__ import annotations

import random
import socket
import threading

#: Below Linux's ephemeral range (32768–60999), so an outgoing connection's local port never takes
#: a listening port chosen for a server that has not bound it yet.
LOW, HIGH = 20000, 32767

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


def free_block(count: int, host: str = "127.0.0.1", *, low: int = LOW, high: int = HIGH) -> int:
    """A base port such that ``base + 1 … base + count`` were all free a moment ago."""
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
