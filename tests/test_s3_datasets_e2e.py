"""A federated run (`plato-sedna run`) whose two edge datasets live in S3 (a real S3 API on loopback)."""

from __future__ import annotations

import json
from pathlib import Path

from support.s3_server import ANY_ACCESS_KEY_ID, ANY_SECRET_ACCESS_KEY
from test_quickstart_e2e import run_job

pytest_plugins = ("support.storage_fixtures",)

TRAINER_ENV = '''              env:
                - name: epochs'''


def upload_edge(s3_client, bucket: str, data: Path, edge: str) -> None:
    """The edge's index as <edge>/train.txt and the images it lists under <edge>/."""
    index = (data / f"{edge}.txt").read_text()
    s3_client.put_object(Bucket=bucket, Key=f"{edge}/train.txt", Body=index.encode())
    for line in index.splitlines():
        image = line.split()[0]
        s3_client.upload_file(str(data / image), bucket, f"{edge}/{image}")


def test_edge_datasets_in_s3(quickstart_job: Path, tmp_path: Path, digits_data: Path, s3_server, s3_client, s3_bucket) -> None:
    for edge in ("edge1", "edge2"):
        upload_edge(s3_client, s3_bucket, digits_data, edge)
    credentials = (
        f'\n                - name: S3_ENDPOINT_URL\n                  value: "{s3_server.endpoint_url}"'
        f'\n                - name: ACCESS_KEY_ID\n                  value: "{ANY_ACCESS_KEY_ID}"'
        f'\n                - name: SECRET_ACCESS_KEY\n                  value: "{ANY_SECRET_ACCESS_KEY}"'
    )
    text = quickstart_job.read_text().replace('value: "10"', 'value: "2"')
    for edge in ("edge1", "edge2"):
        text = text.replace(f"url: data/{edge}.txt", f"url: s3://{s3_bucket}/{edge}/")
    quickstart_job.write_text(text.replace(TRAINER_ENV, TRAINER_ENV.replace("env:", "env:" + credentials, 1)))
    workdir = tmp_path / "run"

    result = run_job(quickstart_job, workdir)

    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    summary = json.loads((workdir / "summary.json").read_text())
    assert summary["status"] == "succeeded" and summary["rounds"] == 2
    for trainer in ("trainer-1", "trainer-2"):
        log = (workdir / trainer / "worker.log").read_text()
        assert "sednaDataResource: 575 training and 144 test samples" in log  # checked at start
        assert "sednaDataResource: 719 training and 0 test samples" in log  # the aggregator tests
        assert ANY_SECRET_ACCESS_KEY not in log
        assert any((workdir / trainer / "runtime" / "cache").iterdir())
    assert ANY_SECRET_ACCESS_KEY not in result.stdout + result.stderr
