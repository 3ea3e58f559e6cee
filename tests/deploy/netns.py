"""Test hosts for the Ansible run: network namespaces, each with its own sshd.

Layout (subnet ``10.254.77.0/24``, which exists only inside the namespaces)::

    root namespace:   prohibit route for the subnet (nothing here can reach it by mistake)
    <tag>-ctl:        bridge br0 10.254.77.1, the controller (ansible-playbook runs here)
      veth ─┬─ <tag>-h0  10.254.77.10  sshd
            └─ <tag>-h1  10.254.77.11  sshd ...

Namespaces share the filesystem, so each host gets a root directory of its own
(``varta_prefix``). SSH uses keys made for this run only, and a known_hosts file holding
the host keys made for each sshd (strict host key checking stays on).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

SUBNET = "10.254.77"


def netns_available() -> str:
    """Why the network tests cannot run here, or ``""`` when they can."""
    if os.geteuid() != 0:
        return "needs root (ip netns add)"
    if shutil.which("ip") is None:
        return "needs iproute2 (ip netns)"
    if not Path("/usr/sbin/sshd").is_file() or shutil.which("ssh-keygen") is None:
        return "needs openssh-server and openssh-client (./run setup installs them)"
    if shutil.which("start-stop-daemon") is None:
        return "needs start-stop-daemon (dpkg)"
    probe = f"vtprobe{os.getpid()}"
    made = subprocess.run(
        ["ip", "netns", "add", probe], check=False, capture_output=True, text=True
    )
    if made.returncode != 0:
        return f"ip netns add failed: {made.stderr.strip()}"
    subprocess.run(["ip", "netns", "del", probe], check=False)
    return ""


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, text=True)


@dataclass
class Host:
    """One test host: a namespace, its address, its root directory and its sshd."""

    name: str
    netns: str
    address: str
    root: Path
    sshd: subprocess.Popen[bytes] | None = None

    def run(self, *argv: str, check: bool = True, timeout: float = 60) -> str:
        """Run a command inside this host's namespace; return its stdout."""
        done = subprocess.run(
            ["ip", "netns", "exec", self.netns, *argv],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if check and done.returncode != 0:
            raise AssertionError(f"{argv} in {self.netns} exited {done.returncode}: {done.stderr}")
        return done.stdout


@dataclass
class HostNet:
    """The controller namespace and the hosts; :meth:`close` removes all of it."""

    base: Path
    tag: str = field(default_factory=lambda: f"vt{os.getpid() % 100000}")
    hosts: dict[str, Host] = field(default_factory=dict)
    _route: bool = False
    _made: list[str] = field(default_factory=list)

    @property
    def ctl(self) -> str:
        return f"{self.tag}-ctl"

    @property
    def ssh_key(self) -> Path:
        return self.base / "ssh" / "id_ed25519"

    @property
    def known_hosts(self) -> Path:
        return self.base / "ssh" / "known_hosts"

    def up(self, names: list[str]) -> None:
        """Namespaces, bridge, veth pairs, the safety route, keys and one sshd per host."""
        _ip("route", "add", "prohibit", f"{SUBNET}.0/24")
        self._route = True
        self._netns(self.ctl)
        _ip("-n", self.ctl, "link", "add", "br0", "type", "bridge")
        _ip("-n", self.ctl, "addr", "add", f"{SUBNET}.1/24", "dev", "br0")
        _ip("-n", self.ctl, "link", "set", "br0", "up")
        (self.base / "ssh").mkdir(parents=True)
        _keygen(self.ssh_key)
        for index, name in enumerate(names):
            self._host(index, name)
        for host in self.hosts.values():
            self._wait_ssh(host)

    def _netns(self, name: str) -> None:
        _ip("netns", "add", name)
        self._made.append(name)
        _ip("-n", name, "link", "set", "lo", "up")

    def _host(self, index: int, name: str) -> None:
        netns, address = f"{self.tag}-h{index}", f"{SUBNET}.{10 + index}"
        self._netns(netns)
        outer, inner = f"{self.tag}v{index}a", f"{self.tag}v{index}b"
        _ip("link", "add", outer, "netns", self.ctl, "type", "veth", "peer", inner, "netns", netns)
        _ip("-n", self.ctl, "link", "set", outer, "master", "br0", "up")
        _ip("-n", netns, "link", "set", inner, "name", "eth0")
        _ip("-n", netns, "addr", "add", f"{address}/24", "dev", "eth0")
        _ip("-n", netns, "link", "set", "eth0", "up")
        root = self.base / "hosts" / name
        sshd_dir = root / "sshd"
        sshd_dir.mkdir(parents=True)
        host_key = sshd_dir / "ssh_host_ed25519_key"
        _keygen(host_key)
        shutil.copy(self.ssh_key.with_suffix(".pub"), sshd_dir / "authorized_keys")
        config = sshd_dir / "sshd_config"
        config.write_text(
            f"ListenAddress {address}\nPort 22\nHostKey {host_key}\n"
            f"PidFile {sshd_dir / 'sshd.pid'}\nAuthorizedKeysFile {sshd_dir / 'authorized_keys'}\n"
            "PermitRootLogin prohibit-password\nPasswordAuthentication no\n"
            "KbdInteractiveAuthentication no\nUsePAM no\nStrictModes no\n"
            "Subsystem sftp internal-sftp\n"
        )
        Path("/run/sshd").mkdir(exist_ok=True)  # sshd's privilege separation directory
        log = (sshd_dir / "sshd.log").open("wb")
        sshd = subprocess.Popen(
            ["ip", "netns", "exec", netns, "/usr/sbin/sshd", "-D", "-e", "-f", str(config)],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        public = host_key.with_suffix(".pub").read_text().split()
        with self.known_hosts.open("a") as fh:
            fh.write(f"{address} {public[0]} {public[1]}\n")
        self.hosts[name] = Host(name, netns, address, root, sshd)

    def _wait_ssh(self, host: Host, timeout: float = 20) -> None:
        deadline = time.monotonic() + timeout
        while True:
            probe = subprocess.run(
                ["ip", "netns", "exec", self.ctl, "ssh", *self.ssh_options(), host.address, "true"],
                capture_output=True,
                text=True,
                check=False,
            )
            if probe.returncode == 0:
                return
            if time.monotonic() > deadline:
                raise AssertionError(f"sshd of {host.name} not reachable: {probe.stderr}")
            time.sleep(0.2)

    def ssh_options(self) -> list[str]:
        """The options every SSH connection of the run uses (also Ansible's)."""
        return [
            "-o",
            "BatchMode=yes",
            "-o",
            "IdentitiesOnly=yes",
            "-o",
            f"UserKnownHostsFile={self.known_hosts}",
            "-o",
            "StrictHostKeyChecking=yes",
            "-i",
            str(self.ssh_key),
            "-l",
            "root",
        ]

    def close(self) -> None:
        """Stop every process left in the namespaces, then delete them and the route."""
        pids: list[int] = []
        for netns in self._made:
            listed = subprocess.run(
                ["ip", "netns", "pids", netns], capture_output=True, text=True, check=False
            ).stdout.split()
            pids += [int(pid) for pid in listed]
        _stop(pids)
        for host in self.hosts.values():
            if host.sshd is not None and host.sshd.poll() is None:
                host.sshd.kill()
            if host.sshd is not None:
                host.sshd.wait(5)
        for netns in reversed(self._made):
            subprocess.run(["ip", "netns", "del", netns], check=False, capture_output=True)
        self._made.clear()
        if self._route:
            subprocess.run(
                ["ip", "route", "del", "prohibit", f"{SUBNET}.0/24"],
                check=False,
                capture_output=True,
            )
            self._route = False


def _keygen(path: Path) -> None:
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "varta-test", "-f", str(path)],
        check=True,
    )


def _stop(pids: list[int], timeout: float = 15) -> None:
    """SIGTERM, then SIGKILL what is left after ``timeout``: services stop cleanly if they can."""
    for pid in pids:
        _signal(pid, 15)
    deadline = time.monotonic() + timeout
    while pids and time.monotonic() < deadline:
        pids = [pid for pid in pids if _signal(pid, 0)]
        time.sleep(0.1)
    for pid in pids:
        _signal(pid, 9)


def _signal(pid: int, signum: int) -> bool:
    """Send ``signum``; whether the process was still there."""
    try:
        os.kill(pid, signum)
    except ProcessLookupError:
        return False
    return True
