"""`plato -c URL`: configs kept in S3 or on a web server, fetched through the storage layer."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from conftest import QUICKSTART
from support.s3_server import ANY_ACCESS_KEY_ID, ANY_SECRET_ACCESS_KEY
from test_quickstart_e2e import run_job

from plato_sedna.config import load_config_file
from plato_sedna.config_source import local_config
from plato_sedna.context import SednaContext
from plato_sedna.errors import ConfigError, ResourceError

pytest_plugins = ("support.storage_fixtures",)

TOML = QUICKSTART / "fedavg.toml"
YAML = Path(__file__).parent / "data" / "configs" / "fedavg.yml"


def _s3_context(s3_server) -> SednaContext:
    return SednaContext(
        s3_endpoint_url=s3_server.endpoint_url,
        access_key_id=ANY_ACCESS_KEY_ID,
        secret_access_key=ANY_SECRET_ACCESS_KEY,
    )


def test_configs_from_a_web_server_load_like_local_files(tmp_path: Path, web_root: Path, http_server) -> None:
    shutil.copy(TOML, web_root / "fedavg.toml")
    shutil.copy(YAML, web_root / "fedavg.yml")
    base = str(tmp_path / "runtime")

    toml_path = local_config(f"{http_server.base_url}/fedavg.toml", base, SednaContext())
    yaml_path = local_config(f"{http_server.base_url}/fedavg.yml", base, SednaContext())

    assert load_config_file(toml_path) == load_config_file(TOML)
    assert load_config_file(yaml_path) == load_config_file(YAML)
    assert toml_path.is_relative_to(tmp_path / "runtime" / "cache")
    (web_root / "fedavg.toml").write_text(TOML.read_text().replace("rounds = 10", "rounds = 3"))
    refetched = local_config(f"{http_server.base_url}/fedavg.toml", base, SednaContext())
    assert load_config_file(refetched)["trainer"]["rounds"] == 3  # a changed config is fetched again


def test_config_from_s3_with_sednas_credentials(tmp_path: Path, s3_server, s3_client, s3_bucket) -> None:
    s3_client.put_object(Bucket=s3_bucket, Key="jobs/fedavg.toml", Body=TOML.read_bytes())

    path = local_config(f"s3://{s3_bucket}/jobs/fedavg.toml", str(tmp_path), _s3_context(s3_server))

    assert load_config_file(path) == load_config_file(TOML)
    with pytest.raises(ResourceError, match=f"s3://{s3_bucket}/jobs/missing.toml"):
        local_config(f"s3://{s3_bucket}/jobs/missing.toml", str(tmp_path), _s3_context(s3_server))
    with pytest.raises(ConfigError, match="names a folder"):
        local_config(f"s3://{s3_bucket}/jobs/", str(tmp_path), _s3_context(s3_server))


def test_an_unsupported_scheme_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ResourceError, match="unsupported URL scheme 'ftp'"):
        local_config("ftp://host/fedavg.toml", str(tmp_path), SednaContext())


CREDENTIALS_ENV = """
              - name: S3_ENDPOINT_URL
                value: "{endpoint}"
              - name: ACCESS_KEY_ID
                value: "{key}"
              - name: SECRET_ACCESS_KEY
                value: "{secret}"
"""


@pytest.mark.slow  # a full job run; the default suite keeps one of each kind (CI runs -m slow too)
def test_a_job_whose_config_lives_in_s3(quickstart_job: Path, tmp_path: Path, s3_server, s3_client, s3_bucket) -> None:
    s3_client.put_object(Bucket=s3_bucket, Key="config/fedavg.toml", Body=TOML.read_bytes())
    text = quickstart_job.read_text().replace('value: "10"', 'value: "2"')
    text = text.replace('"-c", "/config/fedavg.toml"', f'"-c", "s3://{s3_bucket}/config/fedavg.toml"')
    credentials = CREDENTIALS_ENV.format(endpoint=s3_server.endpoint_url, key=ANY_ACCESS_KEY_ID, secret=ANY_SECRET_ACCESS_KEY)
    # every container's env list gets the credentials (aggregator: 12 spaces; trainers: 14)
    text = text.replace("            env:\n", "            env:" + credentials, 1)
    text = text.replace("              env:\n", "              env:" + credentials.replace("\n  ", "\n    "))
    quickstart_job.write_text(text)
    (quickstart_job.parent / "fedavg.toml").unlink()  # only the S3 copy exists
    workdir = tmp_path / "run"

    result = run_job(quickstart_job, workdir)

    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert json.loads((workdir / "summary.json").read_text())["rounds"] == 2
    for worker in ("aggregator", "trainer-1", "trainer-2"):
        assert ANY_SECRET_ACCESS_KEY not in (workdir / worker / "worker.log").read_text()


def test_with_no_config_a_pod_builds_it_and_plain_plato_says_what_to_pass(tmp_path: Path, monkeypatch) -> None:
    from plato_sedna.config_source import config_to_run
    from plato_sedna.context import SednaContext
    from plato_sedna.errors import ConfigError

    monkeypatch.chdir(tmp_path)  # no ./config.toml here
    trainer = SednaContext.from_env({"AGG_IP": "x", "JOB_NAME": "j", "NAMESPACE": "default"})
    assert config_to_run(None, str(tmp_path), trainer, None) == {}
    with pytest.raises(ConfigError, match="no Plato config: ./config.toml and /config/fedavg.toml do not exist"):
        config_to_run(None, str(tmp_path), SednaContext(), None)
    (tmp_path / "config.toml").write_text("[trainer]\nrounds = 2\n")
    assert config_to_run(None, str(tmp_path), SednaContext(), None) == {"trainer": {"rounds": 2}}
