"""A loopback HTTPS server that answers like kube-apiserver for Sedna resources and pods, for tests."""

from __future__ import annotations

import copy
import datetime
import ipaddress
import json
import re
import ssl
import threading
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from functools import partial
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import jsonschema
import yaml

from plato_sedna.crd_schemas import CRD_DIR, prune, sedna_crds
from support.loopback import LoopbackServer

SEDNA_API = "sedna.io/v1alpha1"
SERVICE_ACCOUNT = "plato-sedna"

_SEDNA_PATH = re.compile(
    r"^/apis/sedna\.io/v1alpha1/namespaces/(?P<ns>[^/]+)/(?P<plural>[a-z]+)(?:/(?P<name>[^/]+))?$"
)
_POD_PATH = re.compile(r"^/api/v1/namespaces/(?P<ns>[^/]+)/(?P<plural>pods)(?:/(?P<name>[^/]+))?$")


@dataclass(frozen=True)
class TlsFiles:
    """A CA and a server certificate for 127.0.0.1/localhost signed by it (PEM files)."""

    ca_cert: Path
    cert: Path
    key: Path


def make_tls(directory: Path, common_name: str = "fake-apiserver") -> TlsFiles:
    """Generate a fresh CA and a loopback server certificate into ``directory``."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    directory.mkdir(parents=True, exist_ok=True)
    now = datetime.datetime.now(datetime.UTC)

    def builder(subject: str, issuer: str, public_key) -> x509.CertificateBuilder:
        return (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
            .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, issuer)]))
            .public_key(public_key)
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(hours=1))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
        )

    usage = dict.fromkeys(
        ("content_commitment", "data_encipherment", "key_agreement", "encipher_only", "decipher_only"),
        False,
    )
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = f"{common_name}-ca"
    ca = (
        builder(ca_name, ca_name, ca_key.public_key())
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True, key_encipherment=False, key_cert_sign=True, crl_sign=True, **usage
            ),
            critical=True,
        )
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    names = [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
    cert = (
        builder(common_name, ca_name, key.public_key())
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True, key_encipherment=True, key_cert_sign=False, crl_sign=False, **usage
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    files = TlsFiles(directory / "ca.crt", directory / "server.crt", directory / "server.key")
    files.ca_cert.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    files.cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    files.key.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return files


def status(code: int, reason: str, message: str, details: Mapping[str, Any] | None = None) -> dict:
    """A ``Status`` object as the apiserver answers failures."""
    body = {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason,
        "code": code,
    }
    if details is not None:
        body["details"] = dict(details)
    return body


class _Handler(BaseHTTPRequestHandler):
    """Answers GETs from its :class:`FakeApiServer`'s store."""

    def __init__(self, *args, owner: FakeApiServer, **kwargs) -> None:
        self.owner = owner
        super().__init__(*args, **kwargs)

    def do_GET(self) -> None:
        code, body = self.owner._answer(self.path, self.headers.get("Authorization"))
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)
        self.owner._record(f"GET {self.path} {code}")

    def log_message(self, format, *args) -> None:
        pass


class FakeApiServer(LoopbackServer):
    """Serves Sedna resources and pods over HTTPS on 127.0.0.1 until :meth:`stop`.

    Every request needs ``Authorization: Bearer <token>`` (else 401). Sedna objects are
    validated against Sedna's CRD schemas (``plato_sedna/crds``; the extended ones with
    ``extended_crds``) when added, and stored pruned as kube-apiserver stores them.

    Attributes
    ----------
    token : str
        The service-account token the server accepts.
    tls : TlsFiles
        The server's certificate and the CA that signed it (``tls.ca_cert``).
    requests : list[str]
        ``GET <path> <status>`` for every request answered, in order.
    delay_s : float
        Seconds to wait before each answer (a slow API server).
    """

    def __init__(
        self, tls: TlsFiles, token: str, crd_dir: Path = CRD_DIR, *, extended_crds: bool = False
    ) -> None:
        self.tls = tls
        self.token = token
        self.delay_s = 0.0
        self.requests: list[str] = []
        self._crds = sedna_crds(crd_dir, extended=extended_crds)
        self._rules: list[Mapping[str, Any]] | None = None
        self._objects: dict[tuple[str, str, str], dict] = {}
        self._denied: set[str] = set()
        self._failures: list[int] = []
        self._version = 0
        self._lock = threading.Lock()
        super().__init__(partial(_Handler, owner=self))
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(tls.cert, tls.key)
        self._server.socket = context.wrap_socket(
            self._server.socket, server_side=True, do_handshake_on_connect=False
        )

    @property
    def host(self) -> str:
        return "127.0.0.1"

    @property
    def url(self) -> str:
        return f"https://{self.host}:{self.port}"

    # -- what it serves

    def add(self, obj: Mapping[str, Any]) -> dict:
        """Store a Sedna object (validated against its CRD) or a Pod; return it as served."""
        served = copy.deepcopy(dict(obj))
        kind = served.get("kind")
        plural = "pods" if kind == "Pod" else self._plural(kind)
        metadata = served.setdefault("metadata", {})
        metadata.setdefault("namespace", "default")
        with self._lock:
            self._version += 1
            metadata.setdefault("uid", str(uuid.uuid4()))
            metadata["resourceVersion"] = str(self._version)
        metadata.setdefault("creationTimestamp", "2025-01-01T00:00:00Z")
        if plural != "pods":
            schema = self._crds[plural].schema
            jsonschema.Draft4Validator(schema).validate(served)
            served["spec"] = prune(served["spec"], schema["properties"]["spec"])
        with self._lock:
            self._objects[(plural, metadata["namespace"], metadata["name"])] = served
        return served

    def add_manifests(self, path: Path) -> None:
        """Store every Sedna object of a multi-document YAML file."""
        for document in yaml.safe_load_all(path.read_text(encoding="utf-8")):
            if isinstance(document, dict) and document.get("apiVersion") == SEDNA_API:
                self.add(document)

    def add_pod(self, name: str, namespace: str, labels: Mapping[str, str], *, node: str, ip: str) -> dict:
        """Store a running Pod with these labels."""
        return self.add(
            {
                "apiVersion": "v1",
                "kind": "Pod",
                "metadata": {"name": name, "namespace": namespace, "labels": dict(labels)},
                "spec": {"nodeName": node, "containers": [{"name": "worker", "image": "plato-sedna"}]},
                "status": {"phase": "Running", "podIP": ip},
            }
        )

    def deny(self, *plurals: str) -> None:
        """Answer 403 for these resources, as when the service account lacks an RBAC rule."""
        self._denied.update(plurals)

    def enforce_role(self, rules: list[Mapping[str, Any]]) -> None:
        """Authorise requests by these RBAC Role rules only (apiGroups, resources, verbs); 403 otherwise."""
        self._rules = [dict(rule) for rule in rules]

    def _allowed(self, verb: str, group: str, plural: str) -> bool:
        if self._rules is None:
            return True
        return any(
            group in rule.get("apiGroups", ()) and plural in rule.get("resources", ()) and verb in rule.get("verbs", ())
            for rule in self._rules
        )

    def fail_next(self, count: int, code: int = 503) -> None:
        """Answer the next ``count`` authorised requests with ``code``."""
        with self._lock:
            self._failures.extend([code] * count)

    def service_account(self, directory: Path, namespace: str = "default") -> Path:
        """Write ``token``, ``ca.crt`` and ``namespace`` into ``directory``, as Kubernetes mounts them."""
        directory.mkdir(parents=True, exist_ok=True)
        (directory / "token").write_text(self.token)
        (directory / "ca.crt").write_bytes(self.tls.ca_cert.read_bytes())
        (directory / "namespace").write_text(namespace)
        return directory

    # -- answering

    def _plural(self, kind: Any) -> str:
        for plural, crd in self._crds.items():
            if crd.kind == kind:
                return plural
        raise ValueError(f"{kind!r} is neither a Sedna kind nor Pod")

    def _record(self, line: str) -> None:
        with self._lock:
            self.requests.append(line)

    def _take_failure(self) -> int | None:
        with self._lock:
            return self._failures.pop(0) if self._failures else None

    def _answer(self, raw_path: str, authorization: str | None) -> tuple[int, dict]:
        if self.delay_s:
            time.sleep(self.delay_s)
        scheme, _, credential = (authorization or "").partition(" ")
        if scheme.lower() != "bearer" or credential != self.token:
            return 401, status(401, "Unauthorized", "Unauthorized")
        failure = self._take_failure()
        if failure is not None:
            return failure, status(failure, "InternalError", "injected failure")
        url = urlsplit(raw_path)
        match = _SEDNA_PATH.match(url.path) or _POD_PATH.match(url.path)
        if match is None or (match["plural"] != "pods" and match["plural"] not in self._crds):
            return 404, status(404, "NotFound", "the server could not find the requested resource", {})
        namespace, plural, name = match["ns"], match["plural"], match["name"]
        group = "" if plural == "pods" else "sedna.io"
        if plural in self._denied or not self._allowed("list" if name is None else "get", group, plural):
            return 403, _forbidden(namespace, plural, group, name)
        if name is None:
            selector = parse_qs(url.query).get("labelSelector", [""])[0]
            return 200, self._list(namespace, plural, selector)
        found = self._objects.get((plural, namespace, name))
        if found is None:
            resource = f"{plural}.{group}" if group else plural
            details = {"name": name, "group": group, "kind": plural}
            return 404, status(404, "NotFound", f'{resource} "{name}" not found', details)
        return 200, found

    def _list(self, namespace: str, plural: str, selector: str) -> dict:
        with self._lock:
            items = [
                obj
                for (kind, ns, _), obj in sorted(self._objects.items())
                if kind == plural and ns == namespace and _selects(selector, obj)
            ]
            version = str(self._version)
        if plural == "pods":
            api_version, list_kind = "v1", "PodList"
        else:
            api_version, list_kind = SEDNA_API, f"{self._crds[plural].kind}List"
        return {
            "apiVersion": api_version,
            "kind": list_kind,
            "metadata": {"resourceVersion": version},
            "items": items,
        }


def _forbidden(namespace: str, plural: str, group: str, name: str | None) -> dict:
    user = f"system:serviceaccount:{namespace}:{SERVICE_ACCOUNT}"
    resource = f"{plural}.{group}" if group else plural
    verb = "list" if name is None else "get"
    subject = f'{resource} "{name}"' if name else resource
    message = (
        f'{subject} is forbidden: User "{user}" cannot {verb} resource "{plural}" '
        f'in API group "{group}" in the namespace "{namespace}"'
    )
    details = {"group": group, "kind": plural} | ({"name": name} if name else {})
    return status(403, "Forbidden", message, details)


def _selects(selector: str, obj: Mapping[str, Any]) -> bool:
    """Whether ``obj``'s labels match an equality-based selector (``a=b,c!=d``)."""
    labels = obj.get("metadata", {}).get("labels") or {}
    for term in filter(None, selector.split(",")):
        if "!=" in term:
            key, value = term.split("!=", 1)
            if labels.get(key.strip()) == value.strip():
                return False
        else:
            key, value = re.split(r"==?", term, maxsplit=1)
            if labels.get(key.strip()) != value.strip():
                return False
    return True
