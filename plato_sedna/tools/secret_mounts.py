"""The job's security Secrets in its pod templates: the trainer token, the TLS files, the HE context.

Each Secret is mounted read-only and named to the worker by a ``*_FILE`` variable, so its
value never appears in a manifest, an env listing or a log. The aggregator mounts the TLS
certificate and key; trainers mount only the CA (``ca.crt``), never the key. Every worker
mounts the fedavg_he CKKS context (its secret key included, as Plato gives every party).
"""

from __future__ import annotations

from typing import Any

from plato_sedna.context import (
    HE_CONTEXT_FILE_ENV,
    TLS_CA_FILE_ENV,
    TLS_CERT_FILE_ENV,
    TLS_KEY_FILE_ENV,
    TOKEN_FILE_ENV,
)

TOKEN_MOUNT = "/etc/plato-sedna/token"
TOKEN_KEY = "token"
TLS_MOUNT = "/etc/plato-sedna/tls"
AGGREGATOR_TLS_FILES = {TLS_CERT_FILE_ENV: "tls.crt", TLS_KEY_FILE_ENV: "tls.key"}
TRAINER_TLS_FILES = {TLS_CA_FILE_ENV: "ca.crt"}
HE_MOUNT = "/etc/plato-sedna/he"
HE_KEY = "context"


def _mount(volume: str, secret: str, mount: str, files: dict[str, str]) -> tuple[list[dict], dict, dict]:
    """(env naming each file, the Secret volume with only those keys, its read-only mount)."""
    env = [{"name": variable, "value": f"{mount}/{key}"} for variable, key in files.items()]
    items = [{"key": key, "path": key} for key in files.values()]
    return env, {"name": volume, "secret": {"secretName": secret, "items": items}}, {"name": volume, "mountPath": mount, "readOnly": True}


def add_secret_mounts(
    pod_spec: dict[str, Any],
    token_secret: str | None,
    tls_secret: str | None,
    *,
    aggregator: bool,
    he_secret: str | None = None,
) -> None:
    """Mount the token, TLS and HE context Secrets into ``pod_spec``'s first container, with the env naming them."""
    mounts = []
    if token_secret:
        mounts.append(_mount("plato-sedna-token", token_secret, TOKEN_MOUNT, {TOKEN_FILE_ENV: TOKEN_KEY}))
    if tls_secret:
        files = AGGREGATOR_TLS_FILES if aggregator else TRAINER_TLS_FILES
        mounts.append(_mount("plato-sedna-tls", tls_secret, TLS_MOUNT, files))
    if he_secret:
        mounts.append(_mount("plato-sedna-he", he_secret, HE_MOUNT, {HE_CONTEXT_FILE_ENV: HE_KEY}))
    container = pod_spec["containers"][0]
    for env, volume, mount in mounts:
        container["env"] = [*container["env"], *env]
        container["volumeMounts"] = [*container.get("volumeMounts", []), mount]
        pod_spec["volumes"] = [*pod_spec.get("volumes", []), volume]


def secret_notes(
    job: str, namespace: str, token_secret: str | None, tls_secret: str | None, he_secret: str | None = None
) -> list[str]:
    """How to create the Secrets the manifests mount (they are not rendered: they hold secrets)."""
    notes = []
    if he_secret:
        notes.append(
            f"create the fedavg_he CKKS context Secret before applying (one context for the whole job):\n"
            f"  plato-sedna he-context he.ctx\n"
            f"  kubectl -n {namespace} create secret generic {he_secret} --from-file={HE_KEY}=he.ctx"
        )
    if token_secret:
        notes.append(
            f"create the trainer token Secret before applying:\n"
            f"  kubectl -n {namespace} create secret generic {token_secret} "
            f"--from-literal={TOKEN_KEY}=\"$(openssl rand -hex 32)\""
        )
    if tls_secret:
        service = f"{job}-aggregation.{namespace}"
        notes.append(
            f"create the TLS Secret before applying: a certificate for the aggregator's Service "
            f"({service}), its key, and the CA that signed it (trainers verify against ca.crt), e.g.\n"
            f"  openssl req -x509 -newkey rsa:3072 -nodes -days 365 -subj '/CN={job} CA' "
            f"-addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign "
            f"-keyout ca.key -out ca.crt\n"
            f"  openssl req -newkey rsa:3072 -nodes -subj '/CN={service}' -keyout tls.key -out tls.csr\n"
            f"  openssl x509 -req -in tls.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 365 -out tls.crt "
            f"-extfile <(printf 'subjectAltName=DNS:{service},DNS:{service}.svc\\nextendedKeyUsage=serverAuth')\n"
            f"  kubectl -n {namespace} create secret generic {tls_secret} --type=kubernetes.io/tls "
            f"--from-file=tls.crt --from-file=tls.key --from-file=ca.crt\n"
            f"  (a cert-manager Certificate with secretName: {tls_secret} writes the same three keys; "
            f"`kubectl create secret tls` alone has no ca.crt)"
        )
    return notes
