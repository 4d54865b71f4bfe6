"""TLS on the aggregator link: only trainers that trust the job's CA talk to the aggregator (issue #11)."""

from __future__ import annotations

import asyncio
import json
import subprocess
import threading
from pathlib import Path

import pytest
from conftest import QUICKSTART
from support.workers import (
    aggregator_env,
    free_port,
    start_plato,
    stop,
    wait_for_text,
)
from test_quickstart_e2e import run_job
from test_render_validate import objects, plato_sedna, render_quickstart
from test_trainer_auth import (  # a trainer of the module's job
    CONFIG,
    EXIT_TIMEOUT_S,
    _trainer,
)

from plato_sedna.clients.tls import TrainerTls, link_mismatch
from plato_sedna.context import SednaContext
from plato_sedna.errors import ConfigError
from plato_sedna.local.certificates import write_tls_files
from plato_sedna.servers.tls import server_ssl_context

TOKEN = "tls-job-token-7d1e0b9c"


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    """The job's CA and aggregator certificate (for 127.0.0.1), and a stranger's CA."""
    root = tmp_path_factory.mktemp("pki")
    return {"job": write_tls_files(root / "job"), "other": write_tls_files(root / "other", ca_name="another CA")}


def _key_text(files) -> str:
    """The base64 body of the private key: what must never appear in a log or an error."""
    lines = Path(getattr(files, "key_file", files)).read_text().splitlines()
    return "".join(line for line in lines if not line.startswith("-----"))


# Settings: the env, a mounted Secret folder, and bad files


def test_tls_files_come_from_the_env_or_a_mounted_tls_secret(pki) -> None:
    job = pki["job"]
    secret = job.cert_file.parent  # tls.crt, tls.key, ca.crt: a kubernetes.io/tls Secret's mount

    from_dir = SednaContext.from_env({"PLATO_SEDNA_TLS_DIR": str(secret)})
    explicit = SednaContext.from_env(
        {"PLATO_SEDNA_TLS_DIR": str(secret), "PLATO_SEDNA_TLS_CA_FILE": str(pki["other"].ca_file)}
    )

    assert (from_dir.tls_cert_file, from_dir.tls_key_file, from_dir.tls_ca_file) == (
        str(job.cert_file),
        str(job.key_file),
        str(job.ca_file),
    )
    assert explicit.tls_ca_file == str(pki["other"].ca_file)  # a variable naming a file wins
    assert SednaContext.from_env({}).tls_ca_file is None


@pytest.mark.parametrize(
    ("variables", "named"),
    [
        ({"PLATO_SEDNA_TLS_CERT_FILE": "/run/tls/tls.crt"}, "PLATO_SEDNA_TLS_KEY_FILE is not set"),
        ({"PLATO_SEDNA_TLS_KEY_FILE": "/run/tls/tls.key"}, "PLATO_SEDNA_TLS_CERT_FILE is not set"),
        ({"PLATO_SEDNA_TLS_DIR": "/nonexistent/tls"}, "holds none of tls.crt, tls.key, ca.crt"),
    ],
)
def test_an_incomplete_tls_setting_is_a_clear_error(variables: dict[str, str], named: str) -> None:
    with pytest.raises(ConfigError, match=named):
        SednaContext.from_env(variables)


def test_bad_certificate_or_key_files_name_the_variable_and_file_never_the_key(pki) -> None:
    job, other = pki["job"], pki["other"]
    cases = {
        (str(job.cert_file), str(other.key_file)): ("PLATO_SEDNA_TLS_KEY_FILE", "does not match the certificate"),
        (str(job.cert_file), "/nonexistent/tls.key"): ("PLATO_SEDNA_TLS_KEY_FILE='/nonexistent/tls.key'", "cannot be read"),
        ("/nonexistent/tls.crt", str(job.key_file)): ("PLATO_SEDNA_TLS_CERT_FILE='/nonexistent/tls.crt'", "cannot be read"),
        (str(job.key_file), str(job.key_file)): ("PLATO_SEDNA_TLS_CERT_FILE", "holds no PEM certificate"),
        (str(job.cert_file), str(job.ca_file)): ("PLATO_SEDNA_TLS_KEY_FILE", "no unencrypted PEM private key"),
    }
    for (cert, key), (variable, problem) in cases.items():
        with pytest.raises(ConfigError) as error:
            server_ssl_context(cert, key)
        message = str(error.value)
        assert variable in message and problem in message, message
        assert _key_text(job) not in message and _key_text(other) not in message
    assert server_ssl_context(str(job.cert_file), str(job.key_file)) is not None


def test_a_bad_ca_file_names_the_variable(pki, tmp_path: Path) -> None:
    not_pem = tmp_path / "ca.crt"
    not_pem.write_text("not a certificate\n")
    for path, problem in ((tmp_path / "missing.crt", "cannot be read"), (not_pem, "holds no PEM certificate")):
        with pytest.raises(ConfigError, match=f"PLATO_SEDNA_TLS_CA_FILE='{path}'.*{problem}"):
            TrainerTls.from_ca_file(str(path))


# Real processes over real sockets


@pytest.fixture
def plain_server():
    """A plain-http socket.io server on loopback, in a thread: an aggregator without TLS."""
    import socketio
    from aiohttp import web

    port, ready, loop = free_port(), threading.Event(), asyncio.new_event_loop()

    async def serve() -> web.AppRunner:
        app = web.Application()
        socketio.AsyncServer().attach(app)
        runner = web.AppRunner(app)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", port).start()
        return runner

    def run() -> None:
        asyncio.set_event_loop(loop)
        runner = loop.run_until_complete(serve())
        ready.set()
        loop.run_forever()
        loop.run_until_complete(runner.cleanup())

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    ready.wait(10)
    yield port
    loop.call_soon_threadsafe(loop.stop)
    thread.join(10)


@pytest.fixture(scope="module")
def tls_job(tmp_path_factory, digits_data: Path, pki):
    """An aggregator serving TLS (with a token), waiting for its one trainer."""
    root = tmp_path_factory.mktemp("tls")
    port = free_port()
    env = aggregator_env(
        port,
        1,
        root / "model.pth",
        digits_data / "test.txt",
        rounds="1",
        PLATO_SEDNA_TOKEN=TOKEN,
        PLATO_SEDNA_TLS_DIR=str(pki["job"].cert_file.parent),
    )
    aggregator = start_plato(CONFIG, root / "aggregator", env)
    log = root / "aggregator" / "worker.log"
    try:
        wait_for_text(log, "Starting a server", 90, aggregator)
        yield {"root": root, "port": port, "aggregator": aggregator, "log": log, "data": digits_data}
    finally:
        stop(aggregator)


def _exit_codes(processes: dict[str, subprocess.Popen]) -> dict[str, int]:
    try:
        return {name: process.wait(EXIT_TIMEOUT_S) for name, process in processes.items()}
    finally:
        stop(*processes.values())


def test_a_trainer_that_does_not_trust_the_jobs_ca_fails_at_connect(tls_job: dict, pki) -> None:
    stranger = _trainer(tls_job, "wrong-ca", PLATO_SEDNA_TOKEN=TOKEN, PLATO_SEDNA_TLS_CA_FILE=str(pki["other"].ca_file))
    code = _exit_codes({"wrong-ca": stranger})["wrong-ca"]

    assert code != 0
    log = (tls_job["root"] / "wrong-ca" / "worker.log").read_text()
    assert f"PLATO_SEDNA_TLS_CA_FILE='{pki['other'].ca_file}' does not verify" in log
    assert "(certificate verify failed: unable to get local issuer certificate)" in log
    assert "Trainer digits-edge1 is client" not in tls_job["log"].read_text()
    assert tls_job["aggregator"].poll() is None  # a stranger does not end the job


async def _connect_error(url: str, tls: TrainerTls | None) -> BaseException:
    """The error a socket.io client (as a trainer makes it) gets connecting to ``url``."""
    import socketio

    client = socketio.AsyncClient(reconnection=False, http_session=tls.http_session if tls else None)
    with pytest.raises(socketio.exceptions.ConnectionError) as error:
        await client.connect(url, wait_timeout=10)
    await client.disconnect()
    return error.value


def test_a_link_with_tls_on_one_side_only_is_named_with_its_fix(tls_job: dict, plain_server: int, pki) -> None:
    """What a trainer without the CA, or with a CA and a plain aggregator, is told (not retried)."""
    job_ca = TrainerTls.from_ca_file(str(pki["job"].ca_file))

    async def diagnoses() -> tuple[str | None, str | None, str | None]:
        no_ca_url = f"http://127.0.0.1:{tls_job['port']}"
        plain_url = f"https://127.0.0.1:{plain_server}"
        closed_url = f"https://127.0.0.1:{free_port()}"
        return (
            await link_mismatch(no_ca_url, None, await _connect_error(no_ca_url, None)),
            await link_mismatch(plain_url, job_ca, await _connect_error(plain_url, job_ca)),
            await link_mismatch(closed_url, job_ca, await _connect_error(closed_url, job_ca)),
        )

    no_ca, plain, not_up_yet = asyncio.run(diagnoses())

    assert no_ca == (
        f"the aggregator at 127.0.0.1:{tls_job['port']} serves TLS but this trainer has no CA to verify it; "
        "set PLATO_SEDNA_TLS_CA_FILE to the job's CA certificate (ca.crt of its TLS Secret)"
    )
    assert f"the aggregator at 127.0.0.1:{plain_server} does not serve TLS" in plain
    assert "give the aggregator PLATO_SEDNA_TLS_CERT_FILE and PLATO_SEDNA_TLS_KEY_FILE" in plain
    assert not_up_yet is None  # nothing listens yet: the trainer keeps waiting


def test_a_plain_http_client_cannot_talk_to_the_tls_port(tls_job: dict) -> None:
    import aiohttp

    async def plain_request() -> None:
        async with aiohttp.ClientSession() as session:
            url = f"http://127.0.0.1:{tls_job['port']}/socket.io/?EIO=4&transport=polling"
            async with session.get(url, timeout=aiohttp.ClientTimeout(total=10)) as response:
                await response.read()

    with pytest.raises(aiohttp.ClientError):
        asyncio.run(plain_request())
    assert tls_job["aggregator"].poll() is None


def test_the_jobs_trainer_completes_a_round_over_tls(tls_job: dict, pki) -> None:
    trainer = _trainer(tls_job, "trainer", PLATO_SEDNA_TOKEN=TOKEN, PLATO_SEDNA_TLS_CA_FILE=str(pki["job"].ca_file))
    try:
        assert trainer.wait(EXIT_TIMEOUT_S) == 0
        assert tls_job["aggregator"].wait(EXIT_TIMEOUT_S) == 0
    finally:
        stop(trainer)
    trainer_log = (tls_job["root"] / "trainer" / "worker.log").read_text()
    assert f"Connected to the aggregator at https://127.0.0.1:{tls_job['port']}" in trainer_log
    assert "(TLS)" in tls_job["log"].read_text()
    assert json.loads((tls_job["root"] / "metrics.json").read_text())["rounds"] == 1
    for log in tls_job["root"].glob("*/worker.log"):
        text = log.read_text()
        assert TOKEN not in text and _key_text(pki["job"]) not in text and "PRIVATE KEY" not in text


def test_an_aggregator_with_a_key_that_does_not_match_fails_at_start(digits_data: Path, pki, tmp_path: Path) -> None:
    bad_key = aggregator_env(
        free_port(),
        1,
        tmp_path / "model.pth",
        digits_data / "test.txt",
        PLATO_SEDNA_TLS_CERT_FILE=str(pki["job"].cert_file),
        PLATO_SEDNA_TLS_KEY_FILE=str(pki["other"].key_file),
    )
    code = _exit_codes({"aggregator": start_plato(CONFIG, tmp_path / "aggregator", bad_key)})["aggregator"]

    assert code != 0
    log = (tmp_path / "aggregator" / "worker.log").read_text()
    assert f"PLATO_SEDNA_TLS_KEY_FILE='{pki['other'].key_file}' cannot serve TLS: the key does not match" in log
    assert "Traceback" not in log and _key_text(pki["other"]) not in log


# The Secrets in rendered manifests, and a local run of them over TLS


def _container(template: dict) -> tuple[dict[str, str], dict[str, list[str]]]:
    """(env, mounted Secret -> its keys) of a pod template's container."""
    spec = template["spec"]
    env = {variable["name"]: variable["value"] for variable in spec["containers"][0]["env"]}
    secrets = {v["secret"]["secretName"]: [i["key"] for i in v["secret"]["items"]] for v in spec["volumes"] if "secret" in v}
    return env, secrets


@pytest.mark.slow
def test_rendered_secrets_validate_and_a_local_run_of_them_uses_tls(tmp_path: Path, digits_data: Path) -> None:
    job_file = render_quickstart(
        tmp_path / "manifests", digits_data, "--token-secret", "digits-token", "--tls-secret", "digits-tls", "--env", "rounds=1"
    )
    validated = plato_sedna("validate", str(job_file))
    assert validated.returncode == 0, validated.stdout + validated.stderr
    job = objects(job_file)[-1]["spec"]
    aggregator_env, aggregator_secrets = _container(job["aggregationWorker"]["template"])
    trainer_env_, trainer_secrets = _container(job["trainingWorkers"][0]["template"])
    assert aggregator_secrets == {"digits-token": ["token"], "digits-tls": ["tls.crt", "tls.key"]}
    assert trainer_secrets == {"digits-token": ["token"], "digits-tls": ["ca.crt"]}  # never the key
    assert aggregator_env["PLATO_SEDNA_TLS_KEY_FILE"] == "/etc/plato-sedna/tls/tls.key"
    assert trainer_env_["PLATO_SEDNA_TLS_CA_FILE"] == "/etc/plato-sedna/tls/ca.crt"
    assert trainer_env_["PLATO_SEDNA_TOKEN_FILE"] == "/etc/plato-sedna/token/token"

    workdir = tmp_path / "run"
    result = run_job(job_file, workdir)

    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    summary = json.loads((workdir / "summary.json").read_text())
    assert summary["rounds"] == 1
    key_text = _key_text(workdir / "tls" / "tls.key")
    for log in workdir.glob("*/worker.log"):
        text = log.read_text()
        assert key_text not in text and "PRIVATE KEY" not in text
        if log.parent.name.startswith("trainer"):
            # AGG_IP as the GM gives it (the Service name where a mount namespace names it locally)
            assert f"Connected to the aggregator at https://{summary['agg_ip']}:" in text


def test_render_notes_how_to_create_the_secrets(tmp_path: Path) -> None:
    result = plato_sedna(
        "render", "-c", str(QUICKSTART / "fedavg.toml"), "--trainer", "edge1=data/edge1.txt", "--model-url", "m.pth",
        "--name", "digits", "--token-secret", "digits-token", "--tls-secret", "digits-tls", "-o", str(tmp_path),
    )
    assert result.returncode == 0, result.stderr
    assert 'kubectl -n default create secret generic digits-token --from-literal=token="$(openssl rand -hex 32)"' in result.stdout
    assert "create secret generic digits-tls --type=kubernetes.io/tls --from-file=tls.crt --from-file=tls.key --from-file=ca.crt" in result.stdout
    assert "subjectAltName=DNS:digits-aggregation.default" in result.stdout


def test_a_local_run_with_tls_gives_the_aggregator_a_certificate_and_the_trainers_its_ca(tmp_path: Path) -> None:
    from plato_sedna.local.command import build_parser
    from plato_sedna.local.environment import worker_env
    from plato_sedna.local.manifests import load_job

    job = load_job(Path(__file__).parent / "data" / "local" / "mnist-job.yaml")
    envs = [worker_env(job, w, agg_port=7363, workdir=tmp_path, inherited={}, tls=True) for w in (job.aggregator, *job.trainers)]
    aggregator, *trainers = [SednaContext.from_env(env) for env in envs]

    assert build_parser().parse_args(["job.yaml", "--tls"]).tls
    assert (aggregator.tls_cert_file, aggregator.tls_key_file) == (str(tmp_path / "tls" / "tls.crt"), str(tmp_path / "tls" / "tls.key"))
    assert {trainer.tls_ca_file for trainer in trainers} == {str(tmp_path / "tls" / "ca.crt")}
    assert all(trainer.tls_key_file is None for trainer in trainers)  # trainers never get the key
    assert server_ssl_context(aggregator.tls_cert_file, aggregator.tls_key_file) is not None
    assert (tmp_path / "tls" / "tls.key").stat().st_mode & 0o077 == 0
    assert "PLATO_SEDNA_TLS_CA_FILE" not in worker_env(job, job.trainers[0], agg_port=7363, workdir=tmp_path, inherited={})
