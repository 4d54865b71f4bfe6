"""SednaContext: the typed, validated view of the environment Sedna injects into a pod."""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType

from plato_sedna.errors import ConfigError

ROLES = ("aggregator", "trainer", "plain")
TRANSMITTERS = ("ws", "s3")
DEFAULT_AGG_PORT = 7363
DEFAULT_TRANSMITTER = "ws"
# Set by `plato-sedna run` (not by Sedna): the manifests the local job came from.
MANIFESTS_ENV = "PLATO_SEDNA_MANIFESTS"
DEFAULT_CONNECT_TIMEOUT = 300.0
# Where Kubernetes mounts a pod's service-account token, CA and namespace; the env
# variable (not set by Sedna or Kubernetes) points tests at another folder.
DEFAULT_SERVICEACCOUNT_DIR = Path("/var/run/secrets/kubernetes.io/serviceaccount")
SERVICEACCOUNT_DIR_ENV = "PLATO_SEDNA_SERVICEACCOUNT_DIR"
# The job's shared trainer token (not set by Sedna): the value itself, or a file that
# holds it (a mounted Secret). Without either, the aggregator accepts any peer.
TOKEN_ENV = "PLATO_SEDNA_TOKEN"
TOKEN_FILE_ENV = "PLATO_SEDNA_TOKEN_FILE"
# TLS on the aggregator link (not set by Sedna): the aggregator's certificate and key, the
# CA trainers verify it against, or a folder (a mounted kubernetes.io/tls Secret) holding
# tls.crt, tls.key and ca.crt; a variable naming a file wins over the folder.
TLS_CERT_FILE_ENV = "PLATO_SEDNA_TLS_CERT_FILE"
TLS_KEY_FILE_ENV = "PLATO_SEDNA_TLS_KEY_FILE"
TLS_CA_FILE_ENV = "PLATO_SEDNA_TLS_CA_FILE"
TLS_DIR_ENV = "PLATO_SEDNA_TLS_DIR"
TLS_DIR_FILES = {TLS_CERT_FILE_ENV: "tls.crt", TLS_KEY_FILE_ENV: "tls.key", TLS_CA_FILE_ENV: "ca.crt"}
# fedavg_he: the job's one CKKS context (keys included), a mounted Secret every worker reads.
HE_ALGORITHM = "fedavg_he"
HE_CONTEXT_FILE_ENV = "PLATO_SEDNA_HE_CONTEXT_FILE"
# fedavg_mpc_*: where the round store of secret shares lives (s3:// or a folder every pod mounts).
MPC_STORE_URL_ENV = "PLATO_SEDNA_MPC_STORE_URL"
MPC_ALGORITHMS = ("fedavg_mpc_additive", "fedavg_mpc_shamir")
# Variables naming files inside the pod (mounted Secrets): only the pod itself can read them.
POD_FILE_ENV = frozenset(
    {TOKEN_FILE_ENV, TLS_CERT_FILE_ENV, TLS_KEY_FILE_ENV, TLS_CA_FILE_ENV, TLS_DIR_ENV, HE_CONTEXT_FILE_ENV}
)


class _Rejected(ValueError):
    """A text that does not parse as the expected kind of value."""

    def __init__(self, expected: str, advice: str) -> None:
        super().__init__(expected)
        self.expected = expected
        self.advice = advice


def _positive_int(text: str) -> int:
    try:
        number = int(text)
    except ValueError:
        number = 0
    if number < 1:
        raise _Rejected("a valid positive integer", "a whole number")
    return number


def _non_negative_int(text: str) -> int:
    try:
        number = int(text)
    except ValueError:
        number = -1
    if number < 0:
        raise _Rejected("a valid whole number >= 0", "a whole number")
    return number


def _port(text: str) -> int:
    try:
        number = int(text)
    except ValueError:
        number = 0
    if not 1 <= number <= 65535:
        raise _Rejected("a valid port number", "a whole number from 1 to 65535")
    return number


def _finite_float(text: str, expected: str, advice: str) -> float:
    try:
        number = float(text)
    except ValueError:
        raise _Rejected(expected, advice) from None
    if not math.isfinite(number):
        raise _Rejected(expected, advice)
    return number


def _positive_float(text: str) -> float:
    number = _finite_float(text, "a valid positive number", "a number above 0")
    if number <= 0:
        raise _Rejected("a valid positive number", "a number above 0")
    return number


def _non_negative_float(text: str) -> float:
    number = _finite_float(text, "a valid non-negative number", "a number >= 0")
    if number < 0:
        raise _Rejected("a valid non-negative number", "a number >= 0")
    return number


def _open_fraction(text: str) -> float:
    expected, advice = "a valid fraction in (0, 1)", "a fraction above 0 and below 1"
    number = _finite_float(text, expected, advice)
    if not 0 < number < 1:
        raise _Rejected(expected, advice)
    return number


def _fraction(text: str) -> float:
    expected, advice = "a valid fraction in (0, 1]", "a fraction above 0 and at most 1"
    number = _finite_float(text, expected, advice)
    if not 0 < number <= 1:
        raise _Rejected(expected, advice)
    return number


def _text(text: str) -> str:
    stripped = text.strip()
    if not stripped:
        raise _Rejected("a non-blank name", "a name")
    return stripped


def _int_or_name(text: str) -> int | str:
    name = _text(text)
    try:
        return int(name)
    except ValueError:
        return name


def _choice(allowed: tuple[str, ...]) -> Callable[[str], str]:
    def parse(text: str) -> str:
        value = text.strip().lower()
        if value not in allowed:
            raise _Rejected(f"one of {', '.join(allowed)}", f"one of {', '.join(allowed)}")
        return value

    return parse


# Hyperparameter env name (lowercase) -> (parser, example value for the error message).
_HYPERPARAMETERS: Mapping[str, tuple[Callable[[str], object], str]] = MappingProxyType(
    {
        "batch_size": (_positive_int, "32"),
        "epochs": (_positive_int, "5"),
        "rounds": (_positive_int, "10"),
        "exit_round": (_positive_int, "3"),  # Sedna's surface-defect example: rounds
        "per_round": (_positive_int, "2"),
        "learning_rate": (_positive_float, "0.01"),
        "momentum": (_non_negative_float, "0.9"),
        "weight_decay": (_non_negative_float, "0.0001"),
        "target_accuracy": (_fraction, "0.95"),
        "delta_loss": (_non_negative_float, "0.001"),
        "stop_operator": (_choice(("or", "and")), "or"),
        "epsilon": (_positive_float, "1.0"),
        "optimizer": (_text, "SGD"),
        "aggregation_algorithm": (_text, "fedavg"),
        "cut_layer": (_int_or_name, "4"),
        "initial_sync_frequency": (_positive_int, "4"),
        "moving_average_alpha": (_non_negative_float, "0.9"),
        "stability_threshold": (_open_fraction, "0.1"),
        "tight_threshold": (_fraction, "0.8"),
        "bifurcation_window": (_positive_int, "5"),
        "warmup_rounds": (_non_negative_int, "10"),
        "total_silos": (_positive_int, "2"),
        "local_rounds": (_positive_int, "2"),
        "trainer_timeout": (_positive_float, "60"),
        "on_trainer_loss": (_choice(("continue", "wait")), "continue"),
    }
)
HYPERPARAMETER_NAMES: tuple[str, ...] = tuple(_HYPERPARAMETERS)


def _parse[T](name: str, text: str, parser: Callable[[str], T], example: str) -> T:
    """Parse one env value, turning a rejection into a ConfigError that names the variable."""
    try:
        return parser(text)
    except _Rejected as rejected:
        raise ConfigError(
            f"{name}={text!r} is not {rejected.expected}; set {name} to "
            f"{rejected.advice} such as {name}={example} in the pod template's env"
        ) from None


def _set(environ: Mapping[str, str], name: str) -> str | None:
    """The value of ``name``, with an empty string counted as unset (as Sedna's lib does)."""
    value = environ.get(name)
    return value if value else None


def _optional[T](
    environ: Mapping[str, str], name: str, parser: Callable[[str], T], example: str
) -> T | None:
    """The parsed value of ``name``, or None when it is unset."""
    text = _set(environ, name)
    return None if text is None else _parse(name, text, parser, example)


def _lookup_any_case(environ: Mapping[str, str], name: str) -> tuple[str, str] | None:
    """Find ``name`` as ``name``, then ``NAME``, then in any other casing: (spelling, value)."""
    for spelling in (name, name.upper()):
        if _set(environ, spelling) is not None:
            return spelling, environ[spelling]
    for spelling in sorted(environ):
        if spelling.lower() == name and environ[spelling]:
            return spelling, environ[spelling]
    return None


def valueless_hyperparameters(environ: Mapping[str, str]) -> list[str]:
    """Hyperparameter variables present with an empty value (a template env entry without one)."""
    names = set(HYPERPARAMETER_NAMES)
    return sorted(name for name, value in environ.items() if not value and name.lower() in names)


def _trainer_token_from_env(environ: Mapping[str, str]) -> str | None:
    """The shared trainer token from PLATO_SEDNA_TOKEN or the file PLATO_SEDNA_TOKEN_FILE names.

    Errors name the variables and the file, never the token.
    """
    value, path = _set(environ, TOKEN_ENV), _set(environ, TOKEN_FILE_ENV)
    if value is not None and path is not None:
        raise ConfigError(
            f"both {TOKEN_ENV} and {TOKEN_FILE_ENV} are set; set only one of them in the pod template's env"
        )
    if path is not None:
        try:
            value = Path(path).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as error:
            reason = getattr(error, "strerror", None) or "not UTF-8 text"
            raise ConfigError(
                f"{TOKEN_FILE_ENV}={path!r} cannot be read ({reason}); "
                "mount the job's token Secret there or fix the path"
            ) from None
        source = f"the file {TOKEN_FILE_ENV}={path!r}"
    else:
        source = TOKEN_ENV
    if value is None:
        return None
    token = value.strip()  # a Secret file often ends with a newline
    if not token:
        raise ConfigError(f"{source} holds a blank trainer token; put the job's token there or unset it")
    return token


def _tls_files_from_env(environ: Mapping[str, str]) -> dict[str, str | None]:
    """The TLS file paths by field name (``tls_cert_file``, ...); the files are checked at start."""
    folder = _set(environ, TLS_DIR_ENV)
    found = {}
    for name, file_name in TLS_DIR_FILES.items():
        in_folder = Path(folder) / file_name if folder else None
        found[name] = _set(environ, name) or (str(in_folder) if in_folder and in_folder.is_file() else None)
    if folder and not any((Path(folder) / file_name).is_file() for file_name in TLS_DIR_FILES.values()):
        raise ConfigError(
            f"{TLS_DIR_ENV}={folder!r} holds none of {', '.join(TLS_DIR_FILES.values())}; "
            "mount the job's TLS Secret there or fix the path"
        )
    if (found[TLS_CERT_FILE_ENV] is None) != (found[TLS_KEY_FILE_ENV] is None):
        missing = TLS_KEY_FILE_ENV if found[TLS_KEY_FILE_ENV] is None else TLS_CERT_FILE_ENV
        raise ConfigError(
            f"the aggregator's TLS certificate and key go together, but {missing} is not set; "
            f"set both {TLS_CERT_FILE_ENV} and {TLS_KEY_FILE_ENV} (or {TLS_DIR_ENV}), or neither"
        )
    return {f"tls_{name.removeprefix('PLATO_SEDNA_TLS_').lower()}": path for name, path in found.items()}


def _hyperparameters_from_env(environ: Mapping[str, str]) -> dict[str, object]:
    values: dict[str, object] = {}
    for name, (parser, example) in _HYPERPARAMETERS.items():
        found = _lookup_any_case(environ, name)
        if found is not None:
            spelling, text = found
            values[name] = _parse(spelling, text, parser, example)
    return values


def _role_from_env(environ: Mapping[str, str]) -> str:
    forced = _set(environ, "SEDNA_ROLE")
    if forced is not None:
        return _parse("SEDNA_ROLE", forced, _choice(ROLES), "trainer")
    if _set(environ, "AGG_IP") is not None:
        return "trainer"
    if _set(environ, "AGG_BIND_PORT") is not None:
        return "aggregator"
    return "plain"


@dataclass(frozen=True, kw_only=True)
class SednaContext:
    """What Sedna (and the pod template's env) tells this process, typed and validated.

    Build it with :meth:`from_env`; a context built directly is range-checked too, so an
    instance always holds valid values. Each field is named after its env variable
    (``agg_bind_port`` is ``AGG_BIND_PORT``); ``None`` means the variable is unset.

    Attributes
    ----------
    role : str (default: "plain")
        "aggregator", "trainer" or "plain" (no Sedna env: Plato's own launcher).
    agg_port : int (default: 7363)
        The aggregator's port as trainers reach it.
    connect_timeout : float (default: 300.0)
        Seconds a trainer waits for the aggregator to accept it.
    hyperparameters : Mapping[str, object]
        The parsed hyperparameter env, read-only, keyed by lowercase name (``epochs``).
    s3_endpoint_url, access_key_id, secret_access_key : str | None
        The S3 transmitter's endpoint and credentials; left out of ``repr``.
    trainer_token : str | None
        The job's shared trainer token (``PLATO_SEDNA_TOKEN`` or the file
        ``PLATO_SEDNA_TOKEN_FILE`` names); left out of ``repr`` and of the ``[sedna]`` table.
    tls_cert_file, tls_key_file, tls_ca_file : str | None
        TLS on the aggregator link: the aggregator's certificate and key
        (``PLATO_SEDNA_TLS_CERT_FILE``/``_KEY_FILE``), the CA trainers verify it against
        (``PLATO_SEDNA_TLS_CA_FILE``); each may come from ``PLATO_SEDNA_TLS_DIR``.
    he_context_file : str | None
        The job's CKKS context for ``fedavg_he`` (``PLATO_SEDNA_HE_CONTEXT_FILE``); checked at start.
    """

    role: str = "plain"
    job_name: str | None = None
    namespace: str | None = None
    worker_name: str | None = None
    dataset_name: str | None = None
    model_name: str | None = None
    agg_bind_port: int | None = None
    agg_ip: str | None = None
    agg_port: int = DEFAULT_AGG_PORT
    participants_count: int | None = None
    train_dataset_url: str | None = None
    test_dataset_url: str | None = None
    model_url: str | None = None
    pretrained_model_url: str | None = None
    transmitter: str = DEFAULT_TRANSMITTER
    agg_data_path: str | None = None
    s3_endpoint_url: str | None = field(default=None, repr=False)
    access_key_id: str | None = field(default=None, repr=False)
    secret_access_key: str | None = field(default=None, repr=False)
    trainer_token: str | None = field(default=None, repr=False)
    tls_cert_file: str | None = None
    tls_key_file: str | None = None
    tls_ca_file: str | None = None
    he_context_file: str | None = None
    lc_server: str | None = None
    data_path_prefix: str | None = None
    connect_timeout: float = DEFAULT_CONNECT_TIMEOUT
    manifests: str | None = None
    # Not from the env: the `-i N` of a trainer whose Dataset other trainers share (partitioning.py).
    shared_dataset_id: int | None = None
    hyperparameters: Mapping[str, object] = field(
        default_factory=lambda: MappingProxyType({}), hash=False
    )

    def __post_init__(self) -> None:
        self._check_choices()
        self._check_numbers()
        unknown = sorted(set(self.hyperparameters) - set(HYPERPARAMETER_NAMES))
        if unknown:
            raise ConfigError(
                f"SednaContext.hyperparameters has unknown names {unknown}; "
                f"use only {', '.join(HYPERPARAMETER_NAMES)}"
            )
        object.__setattr__(self, "hyperparameters", MappingProxyType(dict(self.hyperparameters)))

    def _check_choices(self) -> None:
        if self.role not in ROLES:
            raise ConfigError(
                f"SednaContext.role={self.role!r} is not one of {', '.join(ROLES)}; "
                "pick one of them"
            )
        if self.transmitter not in TRANSMITTERS:
            raise ConfigError(
                f"SednaContext.transmitter={self.transmitter!r} is not one of "
                f"{', '.join(TRANSMITTERS)}; pick one of them"
            )

    def _check_numbers(self) -> None:
        for name in ("agg_bind_port", "agg_port"):
            port = getattr(self, name)
            if port is not None and not 1 <= port <= 65535:
                raise ConfigError(
                    f"SednaContext.{name}={port!r} is not a port number; use 1 to 65535"
                )
        if self.shared_dataset_id is not None and self.shared_dataset_id < 1:
            raise ConfigError(
                f"SednaContext.shared_dataset_id={self.shared_dataset_id!r} is below 1; "
                "client ids (-i N) start at 1"
            )
        if self.participants_count is not None and self.participants_count < 1:
            raise ConfigError(
                f"SednaContext.participants_count={self.participants_count!r} is below 1; "
                "a federated job needs at least one trainer"
            )
        if not self.connect_timeout > 0:
            raise ConfigError(
                f"SednaContext.connect_timeout={self.connect_timeout!r} is not positive; "
                "use a number of seconds above 0"
            )

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> SednaContext:
        """Read and validate the Sedna env from ``environ`` (e.g. ``os.environ``).

        Parameters
        ----------
        environ : Mapping[str, str]
            The process environment; empty values count as unset.

        Returns
        -------
        SednaContext
            The validated context.

        Raises
        ------
        ConfigError
            When a variable does not parse; the message names it and the fix.
        """

        def text(name: str) -> str | None:
            return _set(environ, name)

        return cls(
            role=_role_from_env(environ),
            job_name=text("JOB_NAME"),
            namespace=text("NAMESPACE"),
            worker_name=text("WORKER_NAME"),
            dataset_name=text("DATASET_NAME"),
            model_name=text("MODEL_NAME"),
            agg_bind_port=_optional(environ, "AGG_BIND_PORT", _port, "7363"),
            agg_ip=text("AGG_IP"),
            agg_port=_optional(environ, "AGG_PORT", _port, "7363") or DEFAULT_AGG_PORT,
            participants_count=_optional(environ, "PARTICIPANTS_COUNT", _positive_int, "2"),
            train_dataset_url=text("TRAIN_DATASET_URL"),
            test_dataset_url=text("TEST_DATASET_URL"),
            model_url=text("MODEL_URL"),
            pretrained_model_url=text("PRETRAINED_MODEL_URL"),
            transmitter=_optional(environ, "TRANSMITTER", _choice(TRANSMITTERS), "ws")
            or DEFAULT_TRANSMITTER,
            agg_data_path=text("AGG_DATA_PATH"),
            s3_endpoint_url=text("S3_ENDPOINT_URL"),
            access_key_id=text("ACCESS_KEY_ID"),
            secret_access_key=text("SECRET_ACCESS_KEY"),
            trainer_token=_trainer_token_from_env(environ),
            **_tls_files_from_env(environ),
            he_context_file=text(HE_CONTEXT_FILE_ENV),
            lc_server=text("LC_SERVER"),
            data_path_prefix=text("DATA_PATH_PREFIX"),
            connect_timeout=_optional(environ, "CONNECT_TIMEOUT", _positive_float, "300")
            or DEFAULT_CONNECT_TIMEOUT,
            manifests=text(MANIFESTS_ENV),
            hyperparameters=_hyperparameters_from_env(environ),
        )

    @property
    def trainer_identity(self) -> str | None:
        """The name a trainer keeps across pod restarts: DATASET_NAME, else WORKER_NAME.

        On a Dataset other trainers share, ``DATASET_NAME#N`` (N: ``shared_dataset_id``).
        """
        if self.dataset_name and self.shared_dataset_id is not None:
            from plato_sedna.partitioning import partition_identity

            return partition_identity(self.dataset_name, self.shared_dataset_id)
        return self.dataset_name or self.worker_name

    @property
    def aggregator_host(self) -> str | None:
        """Where trainers find the aggregator: AGG_IP, else ``<job>-aggregation.<namespace>``."""
        if self.agg_ip:
            return self.agg_ip
        if self.job_name and self.namespace:
            return f"{self.job_name}-aggregation.{self.namespace}"
        return None


@dataclass(frozen=True, kw_only=True)
class KubeSettings:
    """Where this process may find the Kubernetes API: in-cluster env and files, or a kubeconfig.

    Attributes
    ----------
    service_host, service_port : str | None, int | None
        ``KUBERNETES_SERVICE_HOST``/``KUBERNETES_SERVICE_PORT``, which Kubernetes sets in pods.
    serviceaccount_dir : Path (default: /var/run/secrets/kubernetes.io/serviceaccount)
        The folder with ``token``, ``ca.crt`` and ``namespace``; ``PLATO_SEDNA_SERVICEACCOUNT_DIR``
        overrides it.
    kubeconfig : str | None
        ``KUBECONFIG`` (one path or several joined by ``os.pathsep``), else ``~/.kube/config``.
    """

    service_host: str | None = None
    service_port: int | None = None
    serviceaccount_dir: Path = DEFAULT_SERVICEACCOUNT_DIR
    kubeconfig: str | None = None

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> KubeSettings:
        """Read the settings from ``environ``; empty values count as unset.

        Raises
        ------
        ConfigError
            When ``KUBERNETES_SERVICE_PORT`` is not a port number.
        """
        home = _set(environ, "HOME")
        return cls(
            service_host=_set(environ, "KUBERNETES_SERVICE_HOST"),
            service_port=_optional(environ, "KUBERNETES_SERVICE_PORT", _port, "443"),
            serviceaccount_dir=Path(
                _set(environ, SERVICEACCOUNT_DIR_ENV) or DEFAULT_SERVICEACCOUNT_DIR
            ),
            kubeconfig=_set(environ, "KUBECONFIG")
            or (str(Path(home) / ".kube" / "config") if home else None),
        )


def current_kube_settings() -> KubeSettings:
    """The :class:`KubeSettings` of this process's environment."""
    return KubeSettings.from_env(os.environ)
