"""Trainer authentication: only workers with the job's token join or send payloads (issue #11)."""

from __future__ import annotations

import asyncio
import json
import pickle
import subprocess
from pathlib import Path

import pytest
from conftest import QUICKSTART
from support.workers import (
    aggregator_env,
    free_port,
    start_plato,
    stop,
    trainer_env,
    wait_for_text,
)

from plato_sedna.context import SednaContext
from plato_sedna.errors import ConfigError
from plato_sedna.local.environment import worker_env
from plato_sedna.local.manifests import load_job
from plato_sedna.servers.auth import TrainerAuthMixin

CONFIG = QUICKSTART / "fedavg.toml"
MNIST_JOB = Path(__file__).parent / "data" / "local" / "mnist-job.yaml"
TOKEN = "job-token-3f9c1e7a5b"
EXIT_TIMEOUT_S = 120


class _Unpickled:
    """A pickle whose loading creates ``marker``: proof that a payload was unpickled."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))


# The token in the env and in a mounted Secret file


def test_the_token_comes_from_the_env_or_a_secret_file_and_is_never_shown(tmp_path: Path) -> None:
    secret = tmp_path / "token"
    secret.write_text(TOKEN + "\n")

    from_env = SednaContext.from_env({"PLATO_SEDNA_TOKEN": TOKEN})
    from_file = SednaContext.from_env({"PLATO_SEDNA_TOKEN_FILE": str(secret)})

    assert from_env.trainer_token == from_file.trainer_token == TOKEN
    assert SednaContext.from_env({}).trainer_token is None
    assert TOKEN not in repr(from_env)


@pytest.mark.parametrize(
    ("environ", "named"),
    [
        ({"PLATO_SEDNA_TOKEN": TOKEN, "PLATO_SEDNA_TOKEN_FILE": "/run/token"}, "set only one"),
        ({"PLATO_SEDNA_TOKEN_FILE": "/nonexistent/token"}, "cannot be read"),
        ({"PLATO_SEDNA_TOKEN": "   "}, "blank trainer token"),
    ],
)
def test_a_bad_token_setting_is_a_clear_error(environ: dict[str, str], named: str) -> None:
    with pytest.raises(ConfigError, match=named) as error:
        SednaContext.from_env(environ)
    assert "PLATO_SEDNA_TOKEN" in str(error.value)
    assert TOKEN not in str(error.value)


def test_a_local_run_gives_all_its_workers_one_random_token(tmp_path: Path) -> None:
    job = load_job(MNIST_JOB)
    workers = [job.aggregator, *job.trainers]
    run = [worker_env(job, w, agg_port=7363, workdir=tmp_path / "a", inherited={}) for w in workers]
    other_run = worker_env(job, job.aggregator, agg_port=7364, workdir=tmp_path / "b", inherited={})
    chosen = worker_env(job, job.aggregator, agg_port=7363, workdir=tmp_path / "a", inherited={"PLATO_SEDNA_TOKEN": TOKEN})

    tokens = {env["PLATO_SEDNA_TOKEN"] for env in run}
    assert len(tokens) == 1 and len(tokens.pop()) >= 32
    assert other_run["PLATO_SEDNA_TOKEN"] != run[0]["PLATO_SEDNA_TOKEN"]
    assert chosen["PLATO_SEDNA_TOKEN"] == TOKEN  # a token from the shell is the job's


# The guard in front of Plato's handlers, over a stand-in that unpickles as Plato does


class _UnpicklingServer:
    """Plato's server as far as the guard sees it: each handler unpickles what it gets."""

    async def register_client(self, sid, client_process_id, client_id):
        self.registered = client_process_id

    async def _client_report_arrived(self, sid, client_id, report):
        pickle.loads(report)

    async def _client_chunk_arrived(self, sid, data):
        pickle.loads(data)

    async def _client_disconnected(self, sid):
        pass


class _GuardedServer(TrainerAuthMixin, _UnpicklingServer):
    pass


def test_events_from_a_connection_without_the_token_never_reach_the_unpickler(tmp_path: Path) -> None:
    import socketio

    marker = tmp_path / "unpickled"
    payload = pickle.dumps(_Unpickled(marker))
    server = _GuardedServer()
    server.trainer_token = TOKEN
    server.sio = socketio.AsyncServer()

    async def scenario() -> None:
        for auth in (None, {"token": "wrong"}, {"token": 42}):
            with pytest.raises(socketio.exceptions.ConnectionRefusedError):
                await server._check_trainer_token("stranger", {"REMOTE_ADDR": "10.0.0.9"}, auth)
        await server.register_client("stranger", "intruder", 1)
        await server._client_report_arrived("stranger", 1, payload)
        await server._client_chunk_arrived("stranger", payload)
        assert not hasattr(server, "registered") and not marker.exists()

        await server._check_trainer_token("trainer", {"REMOTE_ADDR": "10.0.0.8"}, {"token": TOKEN})
        await server._client_report_arrived("trainer", 1, payload)
        assert marker.exists()  # the guard lets the job's trainer through
        await server._client_disconnected("trainer")
        marker.unlink()
        await server._client_report_arrived("trainer", 1, payload)
        assert not marker.exists()  # a closed connection's sid is no longer trusted

    asyncio.run(scenario())


# Real processes over real sockets


@pytest.fixture(scope="module")
def guarded_job(tmp_path_factory, digits_data: Path):
    """An aggregator with a token, waiting for its one trainer; the test module feeds it."""
    root = tmp_path_factory.mktemp("guarded")
    port = free_port()
    env = aggregator_env(port, 1, root / "model.pth", digits_data / "test.txt", rounds="1", PLATO_SEDNA_TOKEN=TOKEN)
    aggregator = start_plato(CONFIG, root / "aggregator", env)
    log = root / "aggregator" / "worker.log"
    try:
        wait_for_text(log, "Starting a server", 90, aggregator)
        yield {"root": root, "port": port, "aggregator": aggregator, "log": log, "data": digits_data}
    finally:
        stop(aggregator)


def _trainer(job: dict, name: str, **extra: str) -> subprocess.Popen:
    env = trainer_env(job["port"], 1, "digits-edge1", job["data"] / "edge1.txt", CONNECT_TIMEOUT="60", **extra)
    return start_plato(CONFIG, job["root"] / name, env)


def test_trainers_without_the_right_token_are_refused_at_connect(guarded_job: dict) -> None:
    strangers = {
        "no-token": _trainer(guarded_job, "no-token"),
        "wrong-token": _trainer(guarded_job, "wrong-token", PLATO_SEDNA_TOKEN="not-the-job-token"),
    }
    try:
        codes = {name: process.wait(EXIT_TIMEOUT_S) for name, process in strangers.items()}
    finally:
        stop(*strangers.values())

    assert all(code != 0 for code in codes.values()), codes
    no_token = (guarded_job["root"] / "no-token" / "worker.log").read_text()
    wrong_token = (guarded_job["root"] / "wrong-token" / "worker.log").read_text()
    assert "refused trainer digits-edge1: it has no trainer token" in no_token
    assert "refused trainer digits-edge1: its trainer token is wrong" in wrong_token
    assert "not-the-job-token" not in wrong_token
    aggregator_log = guarded_job["log"].read_text()
    assert "Refused a connection from 127.0.0.1: it sent no trainer token" in aggregator_log
    assert "Refused a connection from 127.0.0.1: its trainer token is wrong" in aggregator_log
    assert "Trainer digits-edge1 is client" not in aggregator_log
    assert guarded_job["aggregator"].poll() is None  # strangers do not end the job


def test_a_raw_socket_payload_without_the_token_is_never_unpickled(guarded_job: dict) -> None:
    """A peer that ignores the refusal and sends Plato's events anyway: nothing is unpickled."""
    import engineio

    marker = guarded_job["root"] / "unpickled-marker"
    payload = pickle.dumps(_Unpickled(marker))
    received: list[str] = []

    async def intrude() -> None:
        client = engineio.AsyncClient()
        client.on("message", lambda data: received.append(str(data)))
        await client.connect(f"http://127.0.0.1:{guarded_job['port']}", engineio_path="socket.io")
        await client.send("0")  # socket.io CONNECT to "/" without auth
        await client.send('2["client_alive",{"pid":"intruder","id":1}]')
        report = {"id": 1, "report": {"_placeholder": True, "num": 0}}
        await client.send("51-" + json.dumps(["client_report", report]))
        await client.send(payload)
        await client.send("51-" + json.dumps(["chunk", {"data": {"_placeholder": True, "num": 0}}]))
        await client.send(payload)
        await client.send('2["client_payload",{"id":1}]')
        await client.send('2["client_payload_done",{"id":1}]')
        await asyncio.sleep(1.0)
        await client.disconnect()

    asyncio.run(intrude())

    assert any(message.startswith("4") for message in received), received  # CONNECT_ERROR
    assert not marker.exists()
    aggregator_log = guarded_job["log"].read_text()
    assert "Trainer intruder" not in aggregator_log
    assert guarded_job["aggregator"].poll() is None


def test_the_jobs_trainer_with_the_token_completes_the_job(guarded_job: dict) -> None:
    trainer = _trainer(guarded_job, "trainer", PLATO_SEDNA_TOKEN=TOKEN)
    try:
        assert trainer.wait(EXIT_TIMEOUT_S) == 0
        assert guarded_job["aggregator"].wait(EXIT_TIMEOUT_S) == 0
    finally:
        stop(trainer)
    aggregator_log = guarded_job["log"].read_text()
    assert "A trainer connected from 127.0.0.1 (token accepted)" in aggregator_log
    assert json.loads((guarded_job["root"] / "metrics.json").read_text())["rounds"] == 1
    for log in (guarded_job["log"], guarded_job["root"] / "trainer" / "worker.log"):
        assert TOKEN not in log.read_text()
