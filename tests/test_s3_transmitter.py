"""The S3 transmitter's store against a real S3 API on loopback (moto's server): names, put/take, sweep, checks."""

from __future__ import annotations

import logging

import pytest
from support.s3_server import ANY_ACCESS_KEY_ID, ANY_SECRET_ACCESS_KEY, free_port

from plato_sedna.errors import ConfigError, ResourceError
from plato_sedna.storage import S3Settings
from plato_sedna.transport.folder import (
    PayloadFolder,
    is_payload_name,
    server_payload_name,
)
from plato_sedna.transport.startup import open_payload_store
from plato_sedna.transport.store import PayloadStore

pytest_plugins = ("support.storage_fixtures",)


def keys(s3_client, bucket: str) -> list[str]:
    return [item["Key"] for item in s3_client.list_objects_v2(Bucket=bucket).get("Contents", [])]


@pytest.fixture
def store(s3_bucket: str, s3_settings):
    folder = PayloadFolder.from_agg_data_path(f"s3://{s3_bucket}/fl/data", namespace="ns", job_name="job")
    opened = PayloadStore(folder, s3_settings)
    yield opened
    opened.close()


def test_folder_is_the_jobs_own_under_agg_data_path() -> None:
    folder = PayloadFolder.from_agg_data_path("s3://sedna/fl/aggregation_data/", namespace="default", job_name="digits")
    assert folder.url == "s3://sedna/fl/aggregation_data/default/digits/"
    assert folder.object("client_payload_1_AB12CD").path == "fl/aggregation_data/default/digits/client_payload_1_AB12CD"
    assert PayloadFolder.from_agg_data_path("s3://sedna").prefix == ""


def test_names_stay_inside_the_folder() -> None:
    folder = PayloadFolder("sedna", "fl/job/")
    for bad in ("../other/key", "a/b", "", "/abs", ".hidden"):
        with pytest.raises(ResourceError, match="not allowed"):
            folder.object(bad)
    name = server_payload_name(3, 2)
    assert name.startswith("server_payload_3_2_") and is_payload_name(name)
    assert server_payload_name(3, 2) != name  # one object per trainer and send
    assert not is_payload_name("model.pth")


def test_put_then_take_deletes_the_object(store: PayloadStore, s3_client, s3_bucket: str) -> None:
    store.put("server_payload_1_1_abcd", b"weights")
    assert keys(s3_client, s3_bucket) == ["fl/data/ns/job/server_payload_1_1_abcd"]

    assert store.take("server_payload_1_1_abcd") == b"weights"
    assert keys(s3_client, s3_bucket) == []
    with pytest.raises(ResourceError, match="no such object"):
        store.take("server_payload_1_1_abcd")  # read exactly once


def test_plato_interface_round_trips_a_state_dict(store: PayloadStore, s3_client, s3_bucket: str) -> None:
    import torch

    weights = {"fc.weight": torch.arange(6.0).reshape(2, 3), "fc.bias": torch.zeros(2)}
    key = store.send_to_s3("client_payload_2_0A1B2C", weights)
    received = store.receive_from_s3(key)
    assert set(received) == set(weights)
    assert all(torch.equal(received[name], weights[name]) for name in weights)
    assert keys(s3_client, s3_bucket) == []
    assert store.stats.bytes_uploaded == store.stats.bytes_downloaded > 0


def test_sweep_deletes_only_the_jobs_payloads(store: PayloadStore, s3_client, s3_bucket: str) -> None:
    store.put("client_payload_1_AAAAAA", b"1")
    store.put("server_payload_2_1_bbbb", b"2")
    for other in ("fl/data/ns/job/model.pth", "fl/data/ns/job/sub/client_payload_1_CCCCCC", "fl/data/ns/job2/client_payload_1_DDDDDD"):
        s3_client.put_object(Bucket=s3_bucket, Key=other, Body=b"keep")

    assert store.sweep() == 2
    assert sorted(keys(s3_client, s3_bucket)) == [
        "fl/data/ns/job/model.pth",
        "fl/data/ns/job/sub/client_payload_1_CCCCCC",
        "fl/data/ns/job2/client_payload_1_DDDDDD",
    ]


def test_ws_needs_no_store(s3_settings) -> None:
    assert open_payload_store("ws", None, s3_settings) is None


def test_checked_store_leaves_nothing_behind(s3_bucket: str, s3_settings, s3_client) -> None:
    store = open_payload_store("s3", f"s3://{s3_bucket}/fl", s3_settings, namespace="ns", job_name="job", sweep=True)
    try:
        assert store is not None and store.folder.url == f"s3://{s3_bucket}/fl/ns/job/"
    finally:
        store.close()
    assert keys(s3_client, s3_bucket) == []


@pytest.mark.parametrize("agg_data_path", [None, "", "/data/agg", "http://example.com/agg"])
def test_s3_without_an_s3_agg_data_path_is_a_config_error(agg_data_path, s3_settings) -> None:
    with pytest.raises(ConfigError, match="AGG_DATA_PATH"):
        open_payload_store("s3", agg_data_path, s3_settings)


def test_missing_bucket_fails_the_check_naming_endpoint_and_bucket(s3_server, s3_settings, caplog) -> None:
    caplog.set_level(logging.DEBUG)
    with pytest.raises(ResourceError) as raised:
        open_payload_store("s3", "s3://no-such-bucket/fl", s3_settings, job_name="job")
    message = str(raised.value)
    assert "no-such-bucket" in message and s3_server.endpoint_url in message
    assert "does not exist" in message
    assert ANY_SECRET_ACCESS_KEY not in message + caplog.text


def test_unreachable_endpoint_fails_the_check_naming_it(s3_bucket: str, caplog) -> None:
    caplog.set_level(logging.DEBUG)
    endpoint = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    settings = S3Settings(endpoint, ANY_ACCESS_KEY_ID, ANY_SECRET_ACCESS_KEY)
    with pytest.raises(ResourceError) as raised:
        open_payload_store("s3", f"s3://{s3_bucket}/fl", settings, job_name="job")
    message = str(raised.value)
    assert endpoint in message and repr(s3_bucket) in message and "S3_ENDPOINT_URL" in message
    assert ANY_SECRET_ACCESS_KEY not in message + caplog.text


def test_refused_keys_are_named_by_variable_never_shown(s3_server, s3_bucket: str, caplog) -> None:
    caplog.set_level(logging.DEBUG)
    s3_server.require_credentials()
    wrong_secret = "wrong-secret-value-123"
    try:
        settings = S3Settings(s3_server.endpoint_url, "AKIAWRONGKEY", wrong_secret)
        with pytest.raises(ResourceError) as raised:
            open_payload_store("s3", f"s3://{s3_bucket}/fl", settings, job_name="job")
    finally:
        s3_server.allow_any_credentials()
    message = str(raised.value)
    assert "SECRET_ACCESS_KEY" in message and s3_bucket in message
    assert wrong_secret not in message + caplog.text
