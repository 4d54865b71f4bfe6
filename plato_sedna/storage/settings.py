"""S3Settings: the endpoint and keys s3:// URLs are read with, never shown in reprs or logs."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from plato_sedna.context import SednaContext


@dataclass(frozen=True)
class S3Settings:
    """Where and as whom to reach S3.

    ``None`` keys leave boto3's own credential chain (``AWS_*`` env, ``~/.aws``) in
    charge; a ``None`` endpoint means boto3's default (AWS). An endpoint without a
    scheme gets ``https://``, as Sedna's own library does.

    Attributes
    ----------
    endpoint_url : str | None
        ``S3_ENDPOINT_URL``, e.g. ``http://minio.default:9000``.
    access_key_id, secret_access_key : str | None
        ``ACCESS_KEY_ID`` and ``SECRET_ACCESS_KEY``; left out of ``repr``.
    """

    endpoint_url: str | None = None
    access_key_id: str | None = field(default=None, repr=False)
    secret_access_key: str | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        endpoint = self.endpoint_url
        if endpoint and "://" not in endpoint:
            object.__setattr__(self, "endpoint_url", f"https://{endpoint}")

    @classmethod
    def from_context(cls, context: SednaContext) -> S3Settings:
        """What Sedna injects: ``S3_ENDPOINT_URL``, ``ACCESS_KEY_ID``, ``SECRET_ACCESS_KEY``."""
        return cls(
            endpoint_url=context.s3_endpoint_url,
            access_key_id=context.access_key_id,
            secret_access_key=context.secret_access_key,
        )

    @property
    def endpoint_name(self) -> str:
        """The endpoint as messages name it."""
        return self.endpoint_url or "the default AWS S3 endpoint"
