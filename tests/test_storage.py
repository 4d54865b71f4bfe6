"""The storage layer against a real S3 API (moto's server) and a real HTTP server on loopback."""

from __future__ import annotations

import hashlib
import io
import json
import logging
import os
import stat
import subprocess
import sys
import tarfile
import threading
import traceback
import zipfile
from pathlib import Path

import pytest
from support.http_server import HttpServer
from support.s3_server import free_port

from plato_sedna.context import SednaContext
from plato_sedna.errors import ResourceError
from plato_sedna.storage import (
    S3Settings,
    Storage,
    Unreachable,
    cache_key,
    display_url,
    is_remote,
    parse_url,
)

pytest_plugins = ("support.storage_fixtures",)

SECRET = "do-not-print-this-secret-7f3a"
MB = 1024 * 1024


def archive_bytes(kind: str, files: dict[str, bytes]) -> bytes:
    """A zip or tar.gz holding ``files``."""
    buffer = io.BytesIO()
    if kind == "zip":
        with zipfile.ZipFile(buffer, "w") as archive:
            for name, data in files.items():
                archive.writestr(name, data)
    else:
        with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
            for name, data in files.items():
                info = tarfile.TarInfo(name)
                info.size = len(data)
                archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def tree(root: Path) -> dict[str, bytes]:
    return {
        str(path.relative_to(root)): path.read_bytes() for path in root.rglob("*") if path.is_file()
    }


# --- local paths -------------------------------------------------------------------------


def test_a_local_path_and_a_file_url_are_returned_as_they_are(
    tmp_path: Path, storage: Storage
) -> None:
    data = tmp_path / "data" / "1.txt"
    data.parent.mkdir()
    data.write_text("a.png 0\n")
    mode = data.stat().st_mode

    assert storage.to_local_path(str(data)) == data
    assert storage.to_local_path(data.as_uri()) == data
    assert storage.to_local_path(str(data.parent)) == data.parent
    assert data.stat().st_mode == mode  # the user's own files are not made read-only
    assert storage.stats.bytes_downloaded == 0


def test_a_missing_local_path_names_the_url(tmp_path: Path, storage: Storage) -> None:
    with pytest.raises(ResourceError, match="does not exist") as caught:
        storage.to_local_path(str(tmp_path / "nope.txt"))
    assert str(tmp_path / "nope.txt") in str(caught.value)


def test_a_hostpath_is_found_under_data_path_prefix(tmp_path: Path, cache_dir: Path) -> None:
    prefix = tmp_path / "home" / "data"
    mounted = prefix / "data" / "1.txt"  # Sedna mounts the host's /data/ at $DATA_PATH_PREFIX/data/
    mounted.parent.mkdir(parents=True)
    mounted.write_text("x 1\n")
    storage = Storage(cache_dir, data_path_prefix=str(prefix))

    assert storage.to_local_path("/data/1.txt") == mounted
    assert storage.to_local_path("data/1.txt") == mounted
    assert storage.to_local_path(str(mounted)) == mounted
    with pytest.raises(ResourceError) as caught:
        storage.to_local_path("/data/2.txt")
    assert "/data/2.txt" in str(caught.value) and str(prefix / "data" / "2.txt") in str(
        caught.value
    )


# --- s3 ----------------------------------------------------------------------------------


def test_an_s3_object_is_cached_by_url_hash_and_the_second_fetch_transfers_nothing(
    storage: Storage, s3_client, s3_bucket: str, cache_dir: Path
) -> None:
    s3_client.put_object(Bucket=s3_bucket, Key="edge1/train.txt", Body=b"a.png 0\nb.png 1\n")
    url = f"s3://{s3_bucket}/edge1/train.txt"

    path = storage.to_local_path(url)

    key = hashlib.sha256(url.encode()).hexdigest()
    assert key == cache_key(url)
    assert path == cache_dir / key / "train.txt"
    assert path.read_bytes() == b"a.png 0\nb.png 1\n"
    assert stat.S_IMODE(path.stat().st_mode) == 0o444
    sidecar = json.loads((cache_dir / f"{key}.json").read_text())
    assert sidecar["validators"] == {
        "etag": s3_client.head_object(Bucket=s3_bucket, Key="edge1/train.txt")["ETag"],
        "size": 16,
    }
    assert storage.stats.bytes_downloaded == 16

    assert storage.to_local_path(url) == path
    assert storage.stats.bytes_downloaded == 16
    assert storage.stats.cache_hits == 1


def test_a_new_storage_on_the_same_cache_transfers_nothing(
    storage: Storage, s3_client, s3_bucket: str, cache_dir: Path, s3_settings: S3Settings
) -> None:
    s3_client.put_object(Bucket=s3_bucket, Key="model.pth", Body=b"m" * 1000)
    first = storage.to_local_path(f"s3://{s3_bucket}/model.pth")
    with Storage(cache_dir, s3_settings) as second_run:
        assert second_run.to_local_path(f"s3://{s3_bucket}/model.pth") == first
        assert second_run.stats.bytes_downloaded == 0


def test_a_changed_s3_object_is_fetched_again(storage: Storage, s3_client, s3_bucket: str) -> None:
    s3_client.put_object(Bucket=s3_bucket, Key="train.txt", Body=b"old\n")
    url = f"s3://{s3_bucket}/train.txt"
    assert storage.to_local_path(url).read_bytes() == b"old\n"

    s3_client.put_object(Bucket=s3_bucket, Key="train.txt", Body=b"newer\n")

    assert storage.to_local_path(url).read_bytes() == b"newer\n"
    assert storage.stats.bytes_downloaded == 4 + 6


@pytest.mark.parametrize("url_suffix", ["data/", "data"])
def test_an_s3_prefix_becomes_a_folder(
    storage: Storage, s3_client, s3_bucket: str, url_suffix: str
) -> None:
    objects = {
        "data/index.txt": b"img/a.png 0\n",
        "data/img/a.png": b"PNG",
        "data/img/b.png": b"PNG2",
    }
    for key, body in objects.items():
        s3_client.put_object(Bucket=s3_bucket, Key=key, Body=body)
    s3_client.put_object(Bucket=s3_bucket, Key="data-other/x", Body=b"not under the prefix")

    folder = storage.to_local_path(f"s3://{s3_bucket}/{url_suffix}")

    assert folder.is_dir()
    assert tree(folder) == {key.removeprefix("data/"): body for key, body in objects.items()}
    downloaded = storage.stats.bytes_downloaded
    assert storage.to_local_path(f"s3://{s3_bucket}/{url_suffix}") == folder
    assert storage.stats.bytes_downloaded == downloaded


def test_a_changed_prefix_fetches_only_the_changed_objects(
    storage: Storage, s3_client, s3_bucket: str
) -> None:
    for name in ("a", "b", "c"):
        s3_client.put_object(Bucket=s3_bucket, Key=f"set/{name}.bin", Body=name.encode() * 100)
    storage.to_local_path(f"s3://{s3_bucket}/set/")
    s3_client.put_object(Bucket=s3_bucket, Key="set/b.bin", Body=b"B" * 7)
    s3_client.put_object(Bucket=s3_bucket, Key="set/d.bin", Body=b"D" * 5)
    s3_client.delete_object(Bucket=s3_bucket, Key="set/c.bin")

    folder = storage.to_local_path(f"s3://{s3_bucket}/set/")

    assert tree(folder) == {"a.bin": b"a" * 100, "b.bin": b"B" * 7, "d.bin": b"D" * 5}
    assert storage.stats.bytes_downloaded == 300 + 7 + 5


@pytest.mark.parametrize("kind, name", [("zip", "images.zip"), ("tar.gz", "images.tar.gz")])
def test_an_s3_archive_is_unpacked_into_a_cached_folder(
    storage: Storage, s3_client, s3_bucket: str, kind: str, name: str
) -> None:
    files = {"train.txt": b"imgs/a.png 0\n", "imgs/a.png": b"PNG"}
    s3_client.put_object(Bucket=s3_bucket, Key=f"ds/{name}", Body=archive_bytes(kind, files))
    url = f"s3://{s3_bucket}/ds/{name}"

    folder = storage.to_local_path(url)

    assert tree(folder) == files
    assert storage.to_local_path(url) == folder
    assert storage.stats.cache_hits == 1
    packed = storage.to_local_path(url, unpack=False)
    assert packed.name == name and packed.is_file()


def test_publish_to_s3_uploads_in_parts(
    storage: Storage, s3_client, s3_bucket: str, tmp_path: Path
) -> None:
    model = tmp_path / "model.pth"
    model.write_bytes(os.urandom(20 * MB))

    storage.publish(model, f"s3://{s3_bucket}/models/global.pth")
    storage.publish(model, f"s3://{s3_bucket}/models/")

    head = s3_client.head_object(Bucket=s3_bucket, Key="models/global.pth")
    assert head["ContentLength"] == 20 * MB
    assert head["ETag"].endswith('-3"')  # three 8 MB parts: a multipart upload
    assert (
        s3_client.head_object(Bucket=s3_bucket, Key="models/model.pth")["ContentLength"] == 20 * MB
    )
    assert storage.stats.bytes_uploaded == 40 * MB
    assert (
        storage.to_local_path(f"s3://{s3_bucket}/models/global.pth").read_bytes()
        == model.read_bytes()
    )


# --- http --------------------------------------------------------------------------------


def test_an_http_file_is_revalidated_with_a_conditional_get(
    storage: Storage, http_server: HttpServer, web_root: Path
) -> None:
    (web_root / "test.txt").write_bytes(b"t" * 5000)
    url = http_server.url("test.txt")

    path = storage.to_local_path(url)
    assert path.read_bytes() == b"t" * 5000 and path.name == "test.txt"
    served = http_server.bytes_served

    assert storage.to_local_path(url) == path
    assert http_server.bytes_served == served
    assert storage.stats.bytes_downloaded == 5000


def test_a_changed_http_file_is_fetched_again(
    storage: Storage, http_server: HttpServer, web_root: Path
) -> None:
    (web_root / "test.txt").write_bytes(b"first")
    storage.to_local_path(http_server.url("test.txt"))
    (web_root / "test.txt").write_bytes(b"second version")

    assert storage.to_local_path(http_server.url("test.txt")).read_bytes() == b"second version"


@pytest.mark.parametrize("kind, name", [("zip", "coco128.zip"), ("tar.gz", "coco128.tar.gz")])
def test_an_http_archive_is_unpacked(
    storage: Storage, http_server: HttpServer, web_root: Path, kind: str, name: str
) -> None:
    files = {"coco128/images/a.jpg": b"JPG", "coco128/labels/a.txt": b"0 0.5 0.5 0.1 0.1\n"}
    (web_root / name).write_bytes(archive_bytes(kind, files))

    folder = storage.to_local_path(http_server.url(name))

    assert tree(folder) == files
    served = http_server.bytes_served
    assert storage.to_local_path(http_server.url(name)) == folder
    assert http_server.bytes_served == served


def test_http_server_errors_are_retried(
    storage: Storage, http_server: HttpServer, web_root: Path
) -> None:
    (web_root / "x.txt").write_bytes(b"x")
    http_server.fail_next(2, status=503)

    assert storage.to_local_path(http_server.url("x.txt")).read_bytes() == b"x"
    assert len(http_server.requests) == 3


def test_a_missing_http_file_is_a_resource_error(storage: Storage, http_server: HttpServer) -> None:
    with pytest.raises(ResourceError, match="404") as caught:
        storage.to_local_path(http_server.url("missing.txt") + "?token=abc")
    assert "missing.txt" in str(caught.value) and "token=abc" not in str(caught.value)


def test_the_cached_copy_serves_when_the_server_is_gone(
    cache_dir: Path, web_root: Path, caplog: pytest.LogCaptureFixture
) -> None:
    (web_root / "x.txt").write_bytes(b"cached")
    storage = Storage(cache_dir)
    with HttpServer(web_root) as server:
        url = server.url("x.txt")
        path = storage.to_local_path(url)

    with caplog.at_level(logging.WARNING, logger="plato_sedna.storage"):
        assert storage.to_local_path(url) == path
    assert "could not be revalidated" in caplog.text


# --- several URLs, several fetchers --------------------------------------------------------


def test_fetch_many_keeps_the_order_and_mixes_schemes(
    storage: Storage,
    s3_client,
    s3_bucket: str,
    http_server: HttpServer,
    web_root: Path,
    tmp_path: Path,
) -> None:
    for index in range(6):
        s3_client.put_object(Bucket=s3_bucket, Key=f"img/{index}.png", Body=bytes([index]) * 10)
    (web_root / "h.png").write_bytes(b"h")
    local = tmp_path / "l.png"
    local.write_bytes(b"l")
    urls = [f"s3://{s3_bucket}/img/{index}.png" for index in range(6)]
    urls += [http_server.url("h.png"), str(local), urls[0]]

    paths = storage.fetch_many(urls)

    assert [path.read_bytes() for path in paths] == [bytes([i]) * 10 for i in range(6)] + [
        b"h",
        b"l",
        b"\0" * 10,
    ]
    assert storage.stats.bytes_downloaded == 61


def test_concurrent_fetchers_of_one_url_download_it_once(
    cache_dir: Path, s3_settings: S3Settings, s3_client, s3_bucket: str
) -> None:
    s3_client.put_object(Bucket=s3_bucket, Key="shared.bin", Body=b"s" * MB)
    storages = [Storage(cache_dir, s3_settings) for _ in range(4)]
    paths: list[Path] = []
    threads = [
        threading.Thread(
            target=lambda s=s: paths.append(s.to_local_path(f"s3://{s3_bucket}/shared.bin"))
        )
        for s in storages
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert len(set(paths)) == 1 and len(paths) == 4
    assert sum(s.stats.bytes_downloaded for s in storages) == MB


# --- publishing locally --------------------------------------------------------------------


def test_publish_to_a_local_path_replaces_the_file_atomically(
    storage: Storage, tmp_path: Path
) -> None:
    source = tmp_path / "new.pth"
    source.write_bytes(b"new model")
    destination = tmp_path / "out" / "model.pth"
    destination.parent.mkdir()
    destination.write_bytes(b"old model")
    with open(destination, "rb") as reader:  # a reader of the old version keeps reading it
        storage.publish(source, str(destination))
        assert destination.read_bytes() == b"new model"
        assert reader.read() == b"old model"
    assert sorted(path.name for path in destination.parent.iterdir()) == ["model.pth"]
    storage.publish(source, f"{destination.parent}/")
    storage.publish(source, (tmp_path / "fresh" / "m.pth").as_uri())
    assert (destination.parent / "new.pth").read_bytes() == b"new model"
    assert (tmp_path / "fresh" / "m.pth").read_bytes() == b"new model"


def test_publish_refuses_http_and_missing_files(storage: Storage, tmp_path: Path) -> None:
    source = tmp_path / "m.pth"
    source.write_bytes(b"m")
    with pytest.raises(ResourceError, match="local paths and s3"):
        storage.publish(source, "http://127.0.0.1:1/m.pth")
    with pytest.raises(ResourceError, match="not a file"):
        storage.publish(tmp_path / "absent.pth", str(tmp_path / "x.pth"))


# --- errors ------------------------------------------------------------------------------


def test_urls_are_told_apart_from_local_paths() -> None:
    assert is_remote("s3://bkt/a.png") and is_remote("HTTPS://host/a.png")
    assert not is_remote("/data/a.png") and not is_remote("file:///data/a.png")
    assert not is_remote("C://data/a.png") and not is_remote("imgs/a.png")
    assert parse_url("s3://bkt/set/").is_prefix and not parse_url("s3://bkt/set/a").is_prefix
    assert (
        display_url("https://user:pw@host:8443/a.zip?X-Amz-Signature=s")
        == "https://host:8443/a.zip?..."
    )


def test_an_unknown_scheme_lists_the_supported_ones(storage: Storage) -> None:
    with pytest.raises(ResourceError) as caught:
        storage.to_local_path("gs://bucket/train.txt")
    assert "'gs'" in str(caught.value)
    for scheme in ("file", "s3", "http", "https"):
        assert scheme in str(caught.value)


def test_a_missing_key_and_a_missing_bucket_name_endpoint_bucket_and_key(
    storage: Storage, s3_bucket: str, s3_server
) -> None:
    with pytest.raises(ResourceError) as missing_key:
        storage.to_local_path(f"s3://{s3_bucket}/no/such.txt")
    message = str(missing_key.value)
    assert s3_server.endpoint_url in message and s3_bucket in message and "no/such.txt" in message

    with pytest.raises(ResourceError) as missing_bucket:
        storage.to_local_path("s3://no-such-bucket-here/train.txt")
    message = str(missing_bucket.value)
    assert (
        "bucket 'no-such-bucket-here' does not exist" in message
        and s3_server.endpoint_url in message
    )


def test_a_wrong_endpoint_names_it_and_never_the_secret(
    cache_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    endpoint = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    storage = Storage(cache_dir, S3Settings(endpoint, "some-key-id", SECRET))

    with caplog.at_level(logging.DEBUG), pytest.raises(Unreachable) as caught:
        storage.to_local_path("s3://bkt/edge1/train.txt")

    message = str(caught.value)
    assert endpoint in message and "'bkt'" in message and "edge1/train.txt" in message
    assert "S3_ENDPOINT_URL" in message
    assert SECRET not in "".join(traceback.format_exception(caught.value))
    assert SECRET not in caplog.text
    assert not any(cache_dir.glob("*.json"))


def test_wrong_credentials_are_refused_with_what_to_check(
    s3_server, s3_client, s3_bucket: str, cache_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    s3_client.put_object(Bucket=s3_bucket, Key="train.txt", Body=b"x 0\n")
    key_id, secret = s3_server.require_credentials()
    try:
        wrong = Storage(cache_dir, S3Settings(s3_server.endpoint_url, key_id, SECRET))
        with caplog.at_level(logging.DEBUG), pytest.raises(ResourceError) as caught:
            wrong.to_local_path(f"s3://{s3_bucket}/train.txt")
        right = Storage(cache_dir, S3Settings(s3_server.endpoint_url, key_id, secret))
        assert right.to_local_path(f"s3://{s3_bucket}/train.txt").read_bytes() == b"x 0\n"
    finally:
        s3_server.allow_any_credentials()

    message = str(caught.value)
    assert (
        "refused access" in message
        and "ACCESS_KEY_ID" in message
        and "SECRET_ACCESS_KEY" in message
    )
    assert s3_server.endpoint_url in message and s3_bucket in message and "train.txt" in message
    assert SECRET not in "".join(traceback.format_exception(caught.value))
    assert SECRET not in caplog.text and secret not in caplog.text


def test_an_unreachable_http_host_is_a_resource_error(storage: Storage) -> None:
    with pytest.raises(Unreachable, match="cannot reach 127.0.0.1"):
        storage.to_local_path(f"http://127.0.0.1:{free_port()}/train.txt")


def test_a_corrupt_archive_is_a_resource_error_and_leaves_no_entry(
    storage: Storage, s3_client, s3_bucket: str, cache_dir: Path
) -> None:
    s3_client.put_object(Bucket=s3_bucket, Key="broken.zip", Body=b"this is not a zip file")
    with pytest.raises(ResourceError, match="cannot unpack"):
        storage.to_local_path(f"s3://{s3_bucket}/broken.zip")
    assert sorted(path.suffix for path in cache_dir.iterdir()) == [".lock"]


# --- settings and imports ------------------------------------------------------------------


def test_s3_settings_hide_the_keys_and_come_from_the_context(tmp_path: Path) -> None:
    context = SednaContext(
        s3_endpoint_url="minio.default:9000",
        access_key_id="AKID",
        secret_access_key=SECRET,
        data_path_prefix="/home/data",
    )
    settings = S3Settings.from_context(context)
    assert settings.endpoint_url == "https://minio.default:9000"  # Sedna's lib adds https too
    assert settings.secret_access_key == SECRET
    assert SECRET not in repr(settings) and "AKID" not in repr(settings)
    assert Storage.from_context(context, tmp_path).data_path_prefix == "/home/data"


def test_importing_the_storage_layer_loads_no_client_library() -> None:
    code = (
        "import sys, plato_sedna.storage; "
        "print(sorted(m for m in ('boto3', 'botocore', 'requests', 'tqdm') if m in sys.modules))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "[]"


def test_without_boto3_an_s3_url_says_what_to_install(tmp_path: Path) -> None:
    code = (
        "import sys; sys.modules['boto3'] = None\n"
        "from plato_sedna.storage import Storage\n"
        f"Storage({str(tmp_path)!r}).to_local_path('s3://bkt/key')\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=False
    )
    assert result.returncode != 0
    assert (
        "ImportError: s3:// URLs need boto3" in result.stderr
        and "pip install boto3" in result.stderr
    )
