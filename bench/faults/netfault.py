"""Two network namespaces joined by a veth pair, and the faults put on that link.

Layout (the addresses exist only inside the namespaces; the root namespace is untouched)::

    <tag>-c   central   eth0 10.254.78.1/30 ──veth── eth0 10.254.78.2/30   <tag>-a   agent

Faults act on that veth only, from inside the namespaces:

* partition: ``iptables -j DROP`` on both ends' INPUT (silent, like a cut cable: no resets,
  no errors for the sender; TCP and ZeroMQ find out by their own timers);
* loss: ``tc qdisc ... netem loss`` when the kernel has ``sch_netem``; otherwise
  ``iptables -m statistic --mode random --probability p -j DROP`` on both ends' INPUT
  (each direction loses ``p`` of its packets); :attr:`Link.loss_method` says which;
* jitter: netem's ``delay`` when present, else :mod:`bench.faults.jitter_relay` in the path.

:meth:`Link.close` kills every process left in the namespaces and deletes them (deleting a
namespace deletes its veth end, its iptables rules and qdiscs too); it runs even when the
set-up failed half way, and ``with Link(...)`` calls it.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, TypeVar

CENTRAL_ADDR = "10.254.78.1"
AGENT_ADDR = "10.254.78.2"
_CLONE_NEWNET = 0x40000000
T = TypeVar("T")


def unavailable() -> str:
    """Why the fault rig cannot run here, or ``""`` when it can."""
    if os.geteuid() != 0:
        return "needs root (ip netns add, iptables)"
    for tool, package in (("ip", "iproute2"), ("iptables", "iptables"), ("tc", "iproute2")):
        if shutil.which(tool) is None:
            return f"needs {tool} (Debian package {package}; ./run setup installs it)"
    probe = f"vtfp{os.getpid() % 100000}"
    made = _run(["ip", "netns", "add", probe], check=False)
    if made.returncode != 0:
        return f"ip netns add failed: {made.stderr.strip()}"
    try:
        rule = _run(
            ["ip", "netns", "exec", probe, "iptables", "-A", "INPUT", "-j", "ACCEPT"], check=False
        )
        if rule.returncode != 0:
            return f"iptables does not work in a network namespace: {rule.stderr.strip()}"
    finally:
        _run(["ip", "netns", "del", probe], check=False)
    return ""


def netem_available() -> bool:
    """Whether the kernel can attach a netem qdisc (module ``sch_netem``)."""
    probe = f"vtnp{os.getpid() % 100000}"
    _run(["ip", "netns", "add", probe])
    try:
        _run(["ip", "-n", probe, "link", "set", "lo", "up"])
        done = _run(
            ["ip", "netns", "exec", probe, "tc", "qdisc", "add", "dev", "lo", "root", "netem"],
            check=False,
        )
        return done.returncode == 0
    finally:
        _run(["ip", "netns", "del", probe], check=False)


def _run(argv: list[str], check: bool = True) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(argv, capture_output=True, text=True, check=False, timeout=30)
    if check and done.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} exited {done.returncode}: {done.stderr.strip()}")
    return done


@dataclass
class Link:
    """The central and agent namespaces, their veth link and the faults on it."""

    tag: str = field(default_factory=lambda: f"vf{os.getpid() % 100000}")
    netem: bool = field(default_factory=netem_available)
    _made: list[str] = field(default_factory=list)

    @property
    def central_ns(self) -> str:
        return f"{self.tag}-c"

    @property
    def agent_ns(self) -> str:
        return f"{self.tag}-a"

    @property
    def loss_method(self) -> str:
        """How loss and jitter are made: ``netem``, or the emulation this kernel needs."""
        if self.netem:
            return "netem"
        return "iptables statistic DROP + userspace jitter relay (no sch_netem in this kernel)"

    def up(self) -> Link:
        """Make both namespaces and the veth between them."""
        try:
            for ns in (self.central_ns, self.agent_ns):
                _run(["ip", "netns", "add", ns])
                self._made.append(ns)
                _run(["ip", "-n", ns, "link", "set", "lo", "up"])
            central_end, agent_end = f"{self.tag}c", f"{self.tag}a"
            _run(
                ["ip", "link", "add", central_end, "netns", self.central_ns, "type", "veth",
                 "peer", agent_end, "netns", self.agent_ns]
            )  # fmt: skip
            for ns, end, addr in (
                (self.central_ns, f"{self.tag}c", CENTRAL_ADDR),
                (self.agent_ns, f"{self.tag}a", AGENT_ADDR),
            ):
                _run(["ip", "-n", ns, "link", "set", end, "name", "eth0"])
                _run(["ip", "-n", ns, "addr", "add", f"{addr}/30", "dev", "eth0"])
                _run(["ip", "-n", ns, "link", "set", "eth0", "up"])
        except BaseException:
            self.close()
            raise
        return self

    def __enter__(self) -> Link:
        return self.up()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # -- faults ---------------------------------------------------------------------------

    def _both(self, *argv: str) -> None:
        for ns in (self.central_ns, self.agent_ns):
            _run(["ip", "netns", "exec", ns, *argv])

    def partition(self) -> None:
        """Drop every packet arriving over the veth, both ways (silently)."""
        self._both("iptables", "-I", "INPUT", "-i", "eth0", "-j", "DROP")

    def heal(self) -> None:
        """Undo :meth:`partition`."""
        self._both("iptables", "-D", "INPUT", "-i", "eth0", "-j", "DROP")

    def lossy(self, probability: float, jitter_ms: float) -> None:
        """Lose ``probability`` of the packets each way; with netem, also delay 0..jitter_ms.

        Without netem the jitter is the relay's (:mod:`bench.faults.jitter_relay`), which the
        caller puts in the path.
        """
        if self.netem:
            half = f"{jitter_ms / 2:.0f}ms"
            self._both(
                "tc", "qdisc", "add", "dev", "eth0", "root", "netem",
                "loss", "random", f"{probability * 100:.1f}%", "delay", half, half,
            )  # fmt: skip
            return
        self._both(*_statistic_rule("-I", probability))

    def clear_loss(self, probability: float) -> None:
        """Undo :meth:`lossy`."""
        if self.netem:
            self._both("tc", "qdisc", "del", "dev", "eth0", "root")
            return
        self._both(*_statistic_rule("-D", probability))

    def dropped_packets(self) -> int:
        """Packets the iptables DROP rules of both ends have dropped so far."""
        total = 0
        for ns in (self.central_ns, self.agent_ns):
            listed = _run(["ip", "netns", "exec", ns, "iptables", "-L", "INPUT", "-v", "-x", "-n"])
            for line in listed.stdout.splitlines():
                cols = line.split()
                if len(cols) > 2 and cols[2] == "DROP" and cols[0].isdigit():
                    total += int(cols[0])
        return total

    # -- processes and sockets --------------------------------------------------------------

    def spawn(
        self, netns: str, argv: list[str], env: dict[str, str] | None = None, log: Any = None
    ) -> subprocess.Popen[bytes]:
        """Run ``argv`` inside ``netns``; the Popen's pid is the program's own (ip execs it)."""
        return subprocess.Popen(
            ["ip", "netns", "exec", netns, *argv],
            env={**os.environ, **(env or {})},
            stdout=log if log is not None else subprocess.DEVNULL,
            stderr=subprocess.STDOUT if log is not None else None,
        )

    def get_json(self, netns: str, host: str, port: int, path: str, headers: dict[str, str]) -> Any:
        """``GET path`` over HTTP from inside ``netns``; the decoded JSON body.

        Raises:
            OSError: nothing answers (yet).
            ValueError: the answer is not a 200 with JSON.
        """
        sock = in_netns(netns, lambda: socket.create_connection((host, port), timeout=5))
        conn = http.client.HTTPConnection(host, port, timeout=5)
        conn.sock = sock
        try:
            conn.request("GET", path, headers=headers)
            answer = conn.getresponse()
            body = answer.read()
        finally:
            conn.close()
        if answer.status != 200:
            raise ValueError(f"GET {path}: expected 200, got {answer.status}: {body[:200]!r}")
        return json.loads(body)

    def close(self) -> None:
        """Kill what runs in the namespaces, then delete them (with their veth and rules)."""
        pids: list[int] = []
        for ns in self._made:
            listed = _run(["ip", "netns", "pids", ns], check=False).stdout.split()
            pids += [int(p) for p in listed]
        for pid in pids:
            _kill(pid, signal.SIGKILL)
        for ns in reversed(self._made):
            _run(["ip", "netns", "del", ns], check=False)
        self._made.clear()


def _statistic_rule(action: str, probability: float) -> list[str]:
    return [
        "iptables", action, "INPUT", "-i", "eth0", "-m", "statistic", "--mode", "random",
        "--probability", f"{probability:.4f}", "-j", "DROP",
    ]  # fmt: skip


def _kill(pid: int, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signum)


def in_netns(netns: str, fn: Callable[[], T]) -> T:
    """Call ``fn`` on a thread that entered ``netns``: sockets it makes live there.

    A socket keeps the namespace it was made in, so the caller can use it from any thread.
    """
    libc = ctypes.CDLL(None, use_errno=True)
    out: list[T] = []
    failed: list[BaseException] = []

    def enter() -> None:
        fd = os.open(f"/run/netns/{netns}", os.O_RDONLY)
        try:
            if libc.setns(fd, _CLONE_NEWNET) != 0:
                code = ctypes.get_errno()
                raise OSError(code, f"setns({netns}): {os.strerror(code)}")
        finally:
            os.close(fd)

    def run() -> None:
        try:
            enter()
            out.append(fn())
        except BaseException as err:  # handed to the caller's thread below
            failed.append(err)

    thread = threading.Thread(target=run, name=f"netns-{netns}")
    thread.start()
    thread.join()
    if failed:
        raise failed[0]
    if not out:
        raise OSError(errno.EIO, f"could not enter network namespace {netns}")
    return out[0]


def wait_until(predicate: Callable[[], bool], timeout: float, interval: float = 0.1) -> bool:
    """Poll ``predicate`` until true (True) or ``timeout`` seconds pass (False)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return predicate()
