"""Trainer authentication on the aggregator: the job's shared token, checked at connect.

Plato's payloads are pickles, so a peer that is not part of the job must never get
a byte unpickled. With a token (``PLATO_SEDNA_TOKEN``), a socket.io connection that
does not present it is refused before it joins, and every trainer event from a
connection that did not authenticate is dropped before Plato's handler (which
unpickles) runs. Without a token the aggregator accepts any peer, as Plato does.
The token never appears in logs or errors.
"""

from __future__ import annotations

import hmac
import logging

from plato_sedna import runtime_config

LOGGER = logging.getLogger(__name__)

# What a refused trainer reads in its connect error: it names no token.
REFUSED_MESSAGE = "plato-sedna: this job's trainer token is missing or wrong"
# The key of socket.io's `auth` object that carries the token.
AUTH_TOKEN_KEY = "token"
ALL_INTERFACES = frozenset({"0.0.0.0", "::", ""})


class TrainerAuthMixin:
    """Mixed in front of the Sedna server: token check at connect, events from strangers dropped.

    Set ``trainer_token`` before ``run()``; ``None`` (the default) accepts any peer.
    """

    trainer_token: str | None = None
    _socket_server = None
    _authenticated_sids: set | frozenset = frozenset()
    _dropped_sids: set | frozenset = frozenset()

    # Plato's start() creates the socket.io server and serves at once: the check is
    # installed as the server is assigned, before it accepts any connection.
    @property
    def sio(self):
        return self._socket_server

    @sio.setter
    def sio(self, server) -> None:
        self._socket_server = server
        if server is not None:
            self._authenticated_sids = set()
            self._dropped_sids = set()
            # An explicit connect handler takes precedence over Plato's namespace one.
            server.on("connect", self._check_trainer_token, namespace="/")
            self._warn_when_open()

    def _warn_when_open(self) -> None:
        if self.trainer_token is not None:
            return
        address = runtime_config.setting("server", "address", "")
        if str(address) in ALL_INTERFACES:
            LOGGER.warning(
                "The aggregator listens on %s without a trainer token: any process that reaches "
                "its port can join the job and send payloads (pickles). Set PLATO_SEDNA_TOKEN or "
                "PLATO_SEDNA_TOKEN_FILE in every worker's env to admit only the job's trainers.",
                address or "all interfaces",
            )

    async def _check_trainer_token(self, sid, environ, auth=None):
        import socketio

        peer = (environ or {}).get("REMOTE_ADDR") or "an unknown address"
        if self.trainer_token is not None:
            presented = auth.get(AUTH_TOKEN_KEY) if isinstance(auth, dict) else None
            if not isinstance(presented, str) or not hmac.compare_digest(
                presented.encode("utf-8"), self.trainer_token.encode("utf-8")
            ):
                reason = "it sent no trainer token" if presented is None else "its trainer token is wrong"
                LOGGER.warning("Refused a connection from %s: %s", peer, reason)
                raise socketio.exceptions.ConnectionRefusedError(REFUSED_MESSAGE)
        self._authenticated_sids.add(sid)
        LOGGER.info("A trainer connected from %s%s", peer, " (token accepted)" if self.trainer_token else "")

    def _admitted(self, sid, event: str) -> bool:
        """Whether events from ``sid`` may reach Plato; a stranger's are dropped (logged once)."""
        if self.trainer_token is None or sid in self._authenticated_sids:
            return True
        if sid not in self._dropped_sids:
            self._dropped_sids = {*self._dropped_sids, sid}
            LOGGER.warning("Dropped %s (and any later event) from a connection that did not authenticate", event)
        return False

    # Plato's socket.io handlers call these; each is where a payload would be unpickled or a
    # trainer admitted, so each is guarded.

    async def register_client(self, sid, client_process_id, client_id):
        if self._admitted(sid, "client_alive"):
            await super().register_client(sid, client_process_id, client_id)

    async def _client_report_arrived(self, sid, client_id, report):
        if self._admitted(sid, "client_report"):
            await super()._client_report_arrived(sid, client_id, report)

    async def _client_chunk_arrived(self, sid, data) -> None:
        if self._admitted(sid, "chunk"):
            await super()._client_chunk_arrived(sid, data)

    async def _client_payload_arrived(self, sid, client_id):
        if self._admitted(sid, "client_payload"):
            await super()._client_payload_arrived(sid, client_id)

    async def _client_payload_done(self, sid, client_id, s3_key=None):
        if self._admitted(sid, "client_payload_done"):
            await super()._client_payload_done(sid, client_id, s3_key=s3_key)

    async def _client_disconnected(self, sid):
        await super()._client_disconnected(sid)
        self._authenticated_sids = self._authenticated_sids - {sid}
        self._dropped_sids = self._dropped_sids - {sid}
