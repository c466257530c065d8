"""Entering a named network namespace from this thread (``setns(2)``), and leaving it again.

pyroute2's own ``setns`` creates the namespace when it is missing (``O_CREAT``
by default): a typo would then quietly build an empty namespace, so we open
``/run/netns/NAME`` ourselves and fail when it is not there.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
from collections.abc import Iterator
from contextlib import contextmanager

NETNS_RUN_DIR = "/run/netns"
CLONE_NEWNET = 0x40000000

_libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)


class NamespaceError(Exception):
    """A namespace is missing or cannot be entered."""


def netns_path(name: str) -> str:
    return os.path.join(NETNS_RUN_DIR, name)


def exists(name: str) -> bool:
    return os.path.exists(netns_path(name))


def setns_fd(fd: int) -> None:
    if _libc.setns(fd, CLONE_NEWNET) != 0:
        err = ctypes.get_errno()
        raise NamespaceError(f"setns failed: {os.strerror(err)}")


def setns(name: str) -> None:
    """Move the calling thread into namespace ``name`` for good (used before ``exec``)."""
    try:
        fd = os.open(netns_path(name), os.O_RDONLY)
    except FileNotFoundError:
        raise NamespaceError(f"network namespace {name!r} does not exist") from None
    try:
        setns_fd(fd)
    finally:
        os.close(fd)


@contextmanager
def entered(name: str) -> Iterator[None]:
    """Run a block inside namespace ``name`` (sockets, /proc/sys/net and children follow it)."""
    home = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
    try:
        setns(name)
        try:
            yield
        finally:
            setns_fd(home)
    finally:
        os.close(home)


def write_sysctl(key: str, value: str | int) -> None:
    """Write a sysctl of the current namespace (``net.ipv4.ip_forward`` → /proc/sys/net/ipv4/ip_forward)."""
    path = "/proc/sys/" + key.replace(".", "/")
    with open(path, "w") as fh:
        fh.write(str(value))


def read_sysctl(key: str) -> str:
    with open("/proc/sys/" + key.replace(".", "/")) as fh:
        return fh.read().strip()
