"""A trainer's side of TLS on the aggregator link: trust the job's CA, and say why a link fails.

With ``PLATO_SEDNA_TLS_CA_FILE`` a trainer connects over https and verifies the aggregator's
certificate and host name against that CA. A mismatch that retrying cannot fix (a TLS
aggregator and a trainer without the CA, a certificate the CA did not sign or issued for
another name, a trainer with a CA and a plain aggregator) fails the trainer at connect with
a message naming the fix, instead of waiting out ``CONNECT_TIMEOUT``.
"""

from __future__ import annotations

import asyncio
import re
import ssl
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from plato_sedna.context import TLS_CA_FILE_ENV, TLS_CERT_FILE_ENV, TLS_KEY_FILE_ENV
from plato_sedna.errors import ConfigError

PROBE_TIMEOUT_S = 5.0
VERIFY_FAILED = "certificate verify failed"


@dataclass(frozen=True)
class TrainerTls:
    """The CA a trainer verifies the aggregator against, loaded into an SSL context."""

    ca_file: str
    context: ssl.SSLContext = field(repr=False, compare=False)

    @classmethod
    def from_ca_file(cls, ca_file: str) -> TrainerTls:
        """Load ``ca_file``; a ConfigError names the variable and the file when it cannot be used."""
        try:
            Path(ca_file).read_bytes()
        except OSError as error:
            raise ConfigError(
                f"{TLS_CA_FILE_ENV}={ca_file!r} cannot be read ({error.strerror or error}); "
                "mount ca.crt of the job's TLS Secret there or fix the path"
            ) from None
        try:
            context = ssl.create_default_context(cafile=ca_file)
        except ssl.SSLError:
            raise ConfigError(
                f"{TLS_CA_FILE_ENV}={ca_file!r} holds no PEM certificate; "
                "point it at the CA certificate that signed the aggregator's (ca.crt)"
            ) from None
        return cls(ca_file, context)

    def http_session(self):
        """An aiohttp session whose connections verify against the CA (python-socketio's http_session)."""
        import aiohttp

        return aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=self.context))


async def _speaks_tls(host: str, port: int) -> bool | None:
    """Whether host:port answers a TLS handshake (None: nothing accepts TCP there yet)."""
    try:
        _, writer = await asyncio.wait_for(asyncio.open_connection(host, port), PROBE_TIMEOUT_S)
    except (OSError, TimeoutError):
        return None
    unverified = ssl.create_default_context()
    unverified.check_hostname = False
    unverified.verify_mode = ssl.CERT_NONE  # only asks whether TLS is spoken; nothing is sent
    try:
        await asyncio.wait_for(writer.start_tls(unverified, server_hostname=host), PROBE_TIMEOUT_S)
    except (ssl.SSLError, OSError, TimeoutError, asyncio.IncompleteReadError):
        return False
    else:
        return True
    finally:
        writer.close()


async def link_mismatch(url: str, tls: TrainerTls | None, error: BaseException) -> str | None:
    """Why connecting to ``url`` cannot succeed however long the trainer waits, or None.

    ``error`` is the failed connect's error; the aggregator is probed only when it is not
    a verification failure (which already says it all).
    """
    if tls is not None and VERIFY_FAILED in str(error):
        found = re.search(VERIFY_FAILED + r":?\s*(.*?)\.?\s*(?:\(_ssl\.c:\d+\)|'?\)*\]*$)", str(error))
        detail = (found.group(1) if found else "") or "not signed by that CA"
        return (
            f"the aggregator at {url} presented a certificate that {TLS_CA_FILE_ENV}={tls.ca_file!r} "
            f"does not verify ({VERIFY_FAILED}: {detail}); give trainers the CA that signed the "
            "aggregator's certificate (ca.crt of the job's TLS Secret), and issue that certificate "
            "for the host name trainers connect to"
        )
    parts = urlsplit(url)
    speaks_tls = await _speaks_tls(parts.hostname or "", parts.port or 0)
    if speaks_tls and tls is None:
        return (
            f"the aggregator at {parts.hostname}:{parts.port} serves TLS but this trainer has no CA to "
            f"verify it; set {TLS_CA_FILE_ENV} to the job's CA certificate (ca.crt of its TLS Secret)"
        )
    if speaks_tls is False and tls is not None:
        return (
            f"the aggregator at {parts.hostname}:{parts.port} does not serve TLS, but this trainer has "
            f"{TLS_CA_FILE_ENV} set; give the aggregator {TLS_CERT_FILE_ENV} and {TLS_KEY_FILE_ENV} "
            f"(or unset {TLS_CA_FILE_ENV} for a plain link)"
        )
    return None
