"""Separate hosts on one machine: each process in its own network namespace, on one bridge.

The test side (:class:`NetnsLab`) starts this file as a "hub" inside
``unshare --user --map-root-user --net --fork`` (nothing touches the host's network).
The hub makes a bridge; each process it starts runs in a further ``unshare --net``,
joined to the bridge by a veth pair, with its own address on ``SUBNET``. The test
sends the hub one JSON command per line on its stdin and reads one reply per line:

- ``{"op": "start", "name", "ip", "argv", "env", "cwd"}``: start a process
  (its output goes to ``cwd/worker.log``);
- ``{"op": "link", "name", "up": bool}``: set the hub's end of its link up or down;
- ``{"op": "poll", "name"}``: its exit code, or None while it runs;
- ``{"op": "stop"}``: kill every process and exit.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

SUBNET_PREFIX = "10.77.0"
BRIDGE = "br0"
OUTER_NAMESPACES = ("unshare", "--user", "--map-root-user", "--net", "--fork")
# Run in the new namespace: wait for the veth end the hub moves in, address it, run the process.
NODE_SETUP = (
    'ip="$1"; shift; n=0; '
    "while ! ip link show eth0 >/dev/null 2>&1; do n=$((n+1)); [ $n -gt 200 ] && exit 97; sleep 0.05; done; "
    'ip link set lo up && ip addr add "$ip/24" dev eth0 && ip link set eth0 up || exit 98; '
    'exec "$@"'
)


def address(host: int) -> str:
    """The address of host number ``host`` (1 to 254) on the lab's subnet."""
    return f"{SUBNET_PREFIX}.{host}"


def unavailable_reason() -> str | None:
    """Why network namespaces cannot be used here, or None when they can."""
    for tool in ("unshare", "ip"):
        if shutil.which(tool) is None:
            return f"`{tool}` is not installed"
    probe = subprocess.run(
        [*OUTER_NAMESPACES, "sh", "-c", f"ip link add {BRIDGE} type bridge && ip link add va type veth peer name vb"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    if probe.returncode != 0:
        return f"cannot create network namespaces with a bridge and veth pairs: {probe.stderr.strip()}"
    return None


class NetnsLab:
    """The test's handle on the hub: start processes on their own hosts, cut and restore links."""

    def __init__(self, log: Path) -> None:
        self._log = log.open("w")
        self._hub = subprocess.Popen(
            [*OUTER_NAMESPACES, sys.executable, __file__],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._log,
            text=True,
            start_new_session=True,
        )

    def __enter__(self) -> NetnsLab:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def _ask(self, **command) -> dict:
        self._hub.stdin.write(json.dumps(command) + "\n")
        self._hub.stdin.flush()
        reply = self._hub.stdout.readline()
        if not reply:
            raise RuntimeError(f"the network namespace hub exited (rc={self._hub.wait()}); see {self._log.name}")
        answer = json.loads(reply)
        if "error" in answer:
            raise RuntimeError(f"hub: {answer['error']}")
        return answer

    def start(self, name: str, ip: str, argv: Sequence[str], env: Mapping[str, str], cwd: Path) -> None:
        cwd.mkdir(parents=True, exist_ok=True)
        self._ask(op="start", name=name, ip=ip, argv=list(argv), env=dict(env), cwd=str(cwd))

    def link(self, name: str, up: bool) -> None:
        self._ask(op="link", name=name, up=up)

    def poll(self, name: str) -> int | None:
        return self._ask(op="poll", name=name)["rc"]

    def wait(self, name: str, timeout_s: float) -> int:
        deadline = time.monotonic() + timeout_s
        while (rc := self.poll(name)) is None:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{name} still runs after {timeout_s:g} s")
            time.sleep(0.5)
        return rc

    def close(self) -> None:
        if self._hub.poll() is None:
            try:
                self._ask(op="stop")
            except (OSError, RuntimeError, ValueError):
                pass
        try:
            self._hub.wait(15)
        except subprocess.TimeoutExpired:
            os.killpg(self._hub.pid, signal.SIGKILL)
            self._hub.wait()
        self._log.close()


# The hub, run inside the outer namespaces


class _Hub:
    def __init__(self) -> None:
        self.processes: dict[str, subprocess.Popen] = {}
        self.links: dict[str, str] = {}
        _ip("link", "set", "lo", "up")
        _ip("link", "add", BRIDGE, "type", "bridge")
        _ip("link", "set", BRIDGE, "up")

    def start(self, name: str, ip: str, argv: list[str], env: dict[str, str], cwd: str) -> dict:
        with open(Path(cwd) / "worker.log", "wb") as log:
            process = subprocess.Popen(
                ["unshare", "--net", "--", "sh", "-c", NODE_SETUP, "node", ip, *argv],
                cwd=cwd,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        _wait_for_own_namespace(process.pid)
        link = f"veth{len(self.links)}"
        _ip("link", "add", link, "type", "veth", "peer", "name", "eth0", "netns", str(process.pid))
        _ip("link", "set", link, "master", BRIDGE)
        _ip("link", "set", link, "up")
        self.processes[name], self.links[name] = process, link
        return {"pid": process.pid}

    def link(self, name: str, up: bool) -> dict:
        _ip("link", "set", self.links[name], "up" if up else "down")
        return {}

    def poll(self, name: str) -> dict:
        return {"rc": self.processes[name].poll()}

    def stop(self) -> None:
        for process in self.processes.values():
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, text=True)


def _wait_for_own_namespace(pid: int) -> None:
    """Until ``pid`` has left the hub's network namespace (unshare has run)."""
    own = os.readlink("/proc/self/ns/net")
    deadline = time.monotonic() + 10
    while os.readlink(f"/proc/{pid}/ns/net") == own:
        if time.monotonic() > deadline:
            raise RuntimeError(f"process {pid} did not enter its own network namespace")
        time.sleep(0.01)


def _serve() -> None:
    hub = _Hub()
    for line in sys.stdin:
        command = json.loads(line)
        op = command.pop("op")
        if op == "stop":
            print("{}", flush=True)
            break
        try:
            reply = getattr(hub, op)(**command)
        except (subprocess.CalledProcessError, OSError, RuntimeError, KeyError) as error:
            detail = getattr(error, "stderr", "") or ""
            reply = {"error": f"{op} {command.get('name')}: {error} {detail}".strip()}
        print(json.dumps(reply), flush=True)
    hub.stop()


if __name__ == "__main__":
    _serve()
