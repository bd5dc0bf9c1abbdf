"""Loopback ports: finding free ones for tests and refusing taken ones before anything starts."""

from __future__ import annotations

import random
import socket


def free_port(host: str = "127.0.0.1") -> int:
    """A port that was free a moment ago (the kernel's choice)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def is_free(port: int, host: str = "127.0.0.1") -> bool:
    """Whether ``host:port`` can be bound now (SO_REUSEADDR, as servers bind)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
        return True


def free_block(count: int, host: str = "127.0.0.1", *, low: int = 20000, high: int = 60000) -> int:
    """A base port such that ``base + 1 … base + count`` were all free a moment ago."""
    rng = random.Random()
    for _ in range(200):
        base = rng.randrange(low, high - count - 1)
        if all(is_free(base + i, host) for i in range(1, count + 1)):
            return base
    raise RuntimeError(f"no block of {count} free ports found on {host}")
