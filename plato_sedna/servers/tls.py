"""TLS on the aggregator link: the aggregator serves socket.io over https with its certificate.

Plato's ``start()`` serves plain http; with a certificate and key (``PLATO_SEDNA_TLS_CERT_FILE``
and ``PLATO_SEDNA_TLS_KEY_FILE``, from a mounted Secret) the same server is served with an SSL
context, so only trainers that trust the job's CA can talk to it. Errors name the variables and
the files, never what the key holds.
"""

from __future__ import annotations

import logging
import ssl
from pathlib import Path

from plato_sedna.context import TLS_CERT_FILE_ENV, TLS_KEY_FILE_ENV
from plato_sedna.errors import ConfigError

LOGGER = logging.getLogger(__name__)


def _check_readable(variable: str, path: str, what: str) -> None:
    try:
        Path(path).read_bytes()
    except OSError as error:
        raise ConfigError(
            f"{variable}={path!r} cannot be read ({error.strerror or error}); "
            f"mount the job's TLS Secret there or point {variable} at the {what}"
        ) from None


def server_ssl_context(cert_file: str, key_file: str) -> ssl.SSLContext:
    """An SSL context serving ``cert_file`` with ``key_file``; a ConfigError names what is wrong."""
    _check_readable(TLS_CERT_FILE_ENV, cert_file, "aggregator's PEM certificate (tls.crt)")
    _check_readable(TLS_KEY_FILE_ENV, key_file, "aggregator's PEM private key (tls.key)")
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        ssl.create_default_context(cafile=cert_file)  # parses the certificate on its own
    except ssl.SSLError:
        raise ConfigError(
            f"{TLS_CERT_FILE_ENV}={cert_file!r} holds no PEM certificate; "
            "point it at the aggregator's certificate (tls.crt of the TLS Secret)"
        ) from None
    try:
        context.load_cert_chain(cert_file, key_file)
    except ssl.SSLError as error:
        if "KEY_VALUES_MISMATCH" in str(error) or "key values mismatch" in str(error):
            problem = f"the key does not match the certificate {TLS_CERT_FILE_ENV}={cert_file!r}"
        else:
            problem = "it holds no unencrypted PEM private key"
        raise ConfigError(
            f"{TLS_KEY_FILE_ENV}={key_file!r} cannot serve TLS: {problem}; "
            "give the aggregator the key its certificate was issued for (tls.key of the same Secret)"
        ) from None
    return context


class TlsServerMixin:
    """Mixed in front of the Sedna server: serve socket.io over https when ``tls_context`` is set."""

    tls_context: ssl.SSLContext | None = None

    def start(self, port=None):
        if self.tls_context is None:
            return super().start() if port is None else super().start(port)
        import asyncio

        import socketio
        from aiohttp import web
        from plato.config import Config
        from plato.servers.base import ServerEvents

        # Plato's start(), served with the SSL context.
        port = Config().server.port if port is None else port
        LOGGER.info("Starting a server at address %s and port %s (TLS).", Config().server.address, port)
        self.sio = socketio.AsyncServer(
            ping_interval=self.ping_interval, max_http_buffer_size=2**31, ping_timeout=self.ping_timeout
        )
        self.sio.register_namespace(ServerEvents(namespace="/", plato_server=self))
        if hasattr(Config().server, "s3_endpoint_url"):
            from plato.utils import s3

            self.s3_client = s3.S3()
        app = web.Application()
        self.sio.attach(app)
        web.run_app(
            app,
            host=Config().server.address,
            port=port,
            ssl_context=self.tls_context,
            loop=asyncio.get_event_loop(),
        )
