"""A real S3 API on loopback for tests and benchmarks: moto's standalone server, in a thread.

Run ``python tests/support/s3_server.py`` to serve in the foreground; it prints the
endpoint URL on its first line and serves until killed.
"""

from __future__ import annotations

import json
import logging
import socket
import sys
import threading
import urllib.request
from dataclasses import dataclass, field
from typing import Self

# Moto accepts any keys until credentials are required; these are what the tests use.
ANY_ACCESS_KEY_ID = "testing-key-id"
ANY_SECRET_ACCESS_KEY = "testing-secret-key"
REGION = "us-east-1"
_ALLOW_ALL_S3 = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}],
}


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@dataclass
class S3Server:
    """moto's ThreadedMotoServer on a free loopback port.

    Attributes
    ----------
    endpoint_url : str
        ``http://127.0.0.1:<port>``, set by :meth:`start`.
    """

    endpoint_url: str = ""
    _server: object = field(default=None, repr=False)
    _checking_credentials: bool = field(default=False, repr=False)

    def start(self) -> S3Server:
        from moto.server import ThreadedMotoServer

        logging.getLogger("werkzeug").setLevel(logging.ERROR)
        port = free_port()
        self._server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
        self._server.start()
        self.endpoint_url = f"http://127.0.0.1:{port}"
        return self

    def stop(self) -> None:
        if self._server is not None:
            if self._checking_credentials:
                self.allow_any_credentials()
            self._server.stop()
            self._server = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc_info) -> None:
        self.stop()

    def client(
        self,
        service: str = "s3",
        access_key_id: str = ANY_ACCESS_KEY_ID,
        secret_access_key: str = ANY_SECRET_ACCESS_KEY,
    ):
        """A boto3 client for this server (tests use it to arrange buckets and objects)."""
        import boto3

        return boto3.session.Session().client(
            service,
            endpoint_url=self.endpoint_url,
            region_name=REGION,
            aws_access_key_id=access_key_id,
            aws_secret_access_key=secret_access_key,
        )

    def require_credentials(self) -> tuple[str, str]:
        """Make the server check every request's keys; returns a key pair allowed all of S3.

        The check is global to moto in this process: undo it with
        :meth:`allow_any_credentials`.
        """
        iam = self.client("iam")
        user = f"storage-tests-{free_port()}"
        iam.create_user(UserName=user)
        iam.put_user_policy(
            UserName=user, PolicyName="all-s3", PolicyDocument=json.dumps(_ALLOW_ALL_S3)
        )
        key = iam.create_access_key(UserName=user)["AccessKey"]
        self._set_unchecked_requests("0")
        self._checking_credentials = True
        return key["AccessKeyId"], key["SecretAccessKey"]

    def allow_any_credentials(self) -> None:
        """Go back to accepting any keys."""
        self._set_unchecked_requests("inf")
        self._checking_credentials = False

    def _set_unchecked_requests(self, count: str) -> None:
        request = urllib.request.Request(
            f"{self.endpoint_url}/moto-api/reset-auth",
            data=count.encode(),
            method="POST",
            headers={"Content-Type": "text/plain"},
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            response.read()


def start_s3_server() -> S3Server:
    """Start a server; call ``.stop()`` (or use it as a context manager) when done."""
    return S3Server().start()


def main() -> None:
    server = start_s3_server()
    print(server.endpoint_url, flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()


if __name__ == "__main__":
    sys.exit(main())
