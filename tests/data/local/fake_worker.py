"""A stand-in for the plato launcher: plays aggregator or trainer from Sedna's env.

The aggregator waits on AGG_BIND_PORT for PARTICIPANTS_COUNT trainers, reports
two rounds, publishes a model and metrics.json at MODEL_URL, sleeps FAKE_SLEEP
seconds and exits FAKE_EXIT. A trainer with a non-zero FAKE_EXIT exits with it
after FAKE_SLEEP seconds; otherwise it connects to AGG_IP:AGG_PORT, sends its
DATASET_NAME, sleeps FAKE_SLEEP seconds and exits 0. Each writes env.json and
pid into its cwd; with FAKE_GRANDCHILD set it also leaves a sleeping child
(grandchild.pid).
"""

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path


def write_atomically(name: str, text: str) -> None:
    Path(name + ".tmp").write_text(text)
    os.replace(name + ".tmp", name)


def record_self() -> None:
    write_atomically("env.json", json.dumps(dict(os.environ)))
    if os.environ.get("FAKE_GRANDCHILD"):
        child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
        write_atomically("grandchild.pid", str(child.pid))
    write_atomically("pid", str(os.getpid()))


def aggregate() -> None:
    port = int(os.environ["AGG_BIND_PORT"])
    with socket.create_server(("127.0.0.1", port)) as server:
        server.settimeout(20)
        datasets = []
        for _ in range(int(os.environ["PARTICIPANTS_COUNT"])):
            connection, _ = server.accept()
            with connection:
                datasets.append(connection.makefile().readline().strip())
    print("aggregating updates from", " ".join(sorted(datasets)))
    for round_number, accuracy in ((1, 0.5), (2, 0.9567)):
        report = {
            "round": round_number,
            "rounds": 2,
            "accuracy": accuracy,
            "elapsed_s": 0.1 * round_number,
        }
        print("PLATO_SEDNA_PROGRESS " + json.dumps(report))
    model = Path(os.environ["MODEL_URL"])
    model.parent.mkdir(parents=True, exist_ok=True)
    model.write_bytes(b"fake weights")
    metrics = {"rounds": 2, "accuracy": 0.9567, "stop_reason": "rounds reached"}
    (model.parent / "metrics.json").write_text(json.dumps(metrics))


def train() -> None:
    if int(os.environ.get("FAKE_EXIT", "0")):
        time.sleep(float(os.environ.get("FAKE_SLEEP", "0")))
        print("failing on purpose", file=sys.stderr)
        sys.exit(int(os.environ["FAKE_EXIT"]))
    address = (os.environ["AGG_IP"], int(os.environ["AGG_PORT"]))
    deadline = time.monotonic() + 20
    while True:
        try:
            connection = socket.create_connection(address, timeout=5)
            break
        except ConnectionRefusedError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)
    with connection:
        connection.sendall((os.environ["DATASET_NAME"] + "\n").encode())
    print("trained on", os.environ["DATASET_NAME"])
    print("a line on stderr", file=sys.stderr)


def main() -> int:
    record_self()
    if "AGG_BIND_PORT" in os.environ:
        aggregate()
    else:
        train()
    time.sleep(float(os.environ.get("FAKE_SLEEP", "0")))
    return int(os.environ.get("FAKE_EXIT", "0"))


if __name__ == "__main__":
    sys.exit(main())
