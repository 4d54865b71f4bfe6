"""What a worker's pod would see, reproduced with per-worker mount namespaces.

Sedna's GlobalManager mounts the parent folder of each hostPath Dataset/Model url
at ``/home/data/<folder>`` (``storage_initializer_injector.go``, ``MountURL.Parse``),
and a trainer reaches the aggregator by its Service name ``<job>-aggregation.<ns>``.
``plato-sedna run`` reproduces both with ``unshare --mount``: each worker gets its
own ``/etc/hosts`` naming the Service (always, where a mount namespace can be made),
and with ``--isolate-nodes`` its node's folders at ``/home/data`` and nothing of the
other nodes' data.

A node, locally, holds the folders of the Datasets whose ``nodeName`` is that node,
and the Models' folders (a Model's hostPath must exist on every node that runs a pod
using it). A worker runs on its template's ``spec.nodeName``, else (a trainer) on its
Dataset's node, else (the aggregator) on a node of its own.

With a node root (``plato-sedna run --nodes DIR``) each node has its own filesystem:
an absolute hostPath ``/x`` of a pod on node N is ``DIR/N/x`` on this machine (the
aggregator without a ``nodeName`` is on ``DIR/_aggregator``), bound where the GM mounts
``/x``'s folder; relative urls stay paths on this machine, as without it.
"""

import logging
import os
import posixpath
import shlex
import shutil
import subprocess
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from urllib.parse import urlsplit

logger = logging.getLogger(__name__)

HOST_PATH_PREFIX = "/home/data"  # hostPathPrefix
DATA_PATH_PREFIX_ENV = "DATA_PATH_PREFIX"  # hostPathPrefixEnvKey
DOWNLOAD_PREFIX = "/downloads"  # downloadInitalizerPrefix
INITIALIZER_SCHEMES = ("s3", "http", "https")  # supportStorageInitializerURLSchemes
AGGREGATOR_NODE = "(aggregator's node)"
# Under a node root, the folder of an aggregator whose template names no node.
AGGREGATOR_NODE_FOLDER = "_aggregator"


@dataclass(frozen=True)
class ContainerURL:
    """One url as the GM gives it to a pod: the env value and the hostPath mount, if any."""

    env_value: str
    host_dir: str | None = None  # the node's folder (HostPath), ends with /
    mount_path: str | None = None  # where the pod sees it (MountPath), ends with /


def container_url(url: str, *, download_by_initializer: bool = True) -> ContainerURL:
    """``MountURL.Parse`` for a FederatedLearningJob url (``IsDir`` and ``Indirect`` unset).

    - s3/http(s), downloaded by the storage-initializer: ``/downloads/<host><path>``
      (when ``download_by_initializer``; ``AGG_DATA_PATH`` is not);
    - another scheme: the url unchanged, no mount;
    - a path: its parent folder mounted at ``/home/data/<parent>``, the value
      ``/home/data/<path>``. A trailing ``/`` mounts the folder itself one level up
      (Go's ``filepath.Split`` and ``Join`` disagree), as in Sedna.
    """
    parts = urlsplit(url)
    if parts.scheme:
        if download_by_initializer and parts.scheme in INITIALIZER_SCHEMES:
            return ContainerURL(_join(DOWNLOAD_PREFIX, parts.netloc + parts.path))
        return ContainerURL(url)
    host_dir = url[: url.rfind("/") + 1]  # filepath.Split: the folder, with its /
    value = _join(HOST_PATH_PREFIX, parts.path)
    return ContainerURL(value, host_dir, value[: value.rfind("/") + 1])


def _join(*parts: str) -> str:
    """Go's filepath.Join: joined and cleaned."""
    return posixpath.normpath(posixpath.join(parts[0], *(p.lstrip("/") for p in parts[1:])))


@dataclass(frozen=True)
class NodeView:
    """A worker's pod, locally: the node it runs on and what its mount namespace holds."""

    node: str
    hosts_file: Path  # its /etc/hosts
    # (host folder, container folder, whether the node holds the host folder)
    mounts: tuple[tuple[str, str, bool], ...] = ()
    hidden: tuple[str, ...] = ()  # host folders of data this pod must not see at their own path
    isolate_nodes: bool = False


@dataclass
class Namespaces:
    """Whether this machine lets ``plato-sedna run`` give workers their own mount namespace."""

    available: bool
    reason: str | None = None
    prefix: tuple[str, ...] = field(default_factory=tuple)


@cache
def mount_namespaces() -> Namespaces:
    """Probe once: ``unshare --mount`` as root, else in a user namespace; why not, if neither works."""
    if shutil.which("unshare") is None or shutil.which("mount") is None:
        return Namespaces(False, "util-linux unshare and mount are not on PATH")
    prefixes = [("unshare", "--mount", "--propagation", "private")]
    if os.geteuid() != 0:
        prefixes.append(("unshare", "--user", "--map-root-user", "--mount", "--propagation", "private"))
    errors = []
    with tempfile.TemporaryDirectory(prefix="plato-sedna-probe-") as folder:
        for prefix in prefixes:
            probe = [*prefix, "sh", "-c", 'mount -t tmpfs tmpfs "$1" && mount --bind /etc/hosts /etc/hosts', "sh", folder]
            try:
                result = subprocess.run(probe, capture_output=True, text=True, timeout=30)
            except (OSError, subprocess.TimeoutExpired) as error:
                errors.append(str(error))
                continue
            if result.returncode == 0:
                return Namespaces(True, None, prefix)
            errors.append(result.stderr.strip() or f"exit code {result.returncode}")
    return Namespaces(
        False,
        f"a mount namespace cannot be made here ({'; '.join(errors)}); run as root, or allow "
        "unprivileged user namespaces",
    )


def worker_node(worker, job) -> str:
    """The node a worker's pod runs on: its template's nodeName, its Dataset's, or the aggregator's own."""
    if worker.node_name:
        return worker.node_name
    if worker.dataset is not None:
        return worker.dataset.node_name
    return AGGREGATOR_NODE


def node_folders(job, host_url) -> tuple[dict[str, set[str]], set[str]]:
    """Each node's Dataset folders, and the Models' folders every node holds (host paths, with /).

    host_url maps a manifest url to a path on this machine, or to None for a url this
    split does not cover (under a node root, the absolute ones: each node has its own).
    """
    nodes: dict[str, set[str]] = {}
    for trainer in job.trainers:
        url = host_url(trainer.dataset.url, "dataset")
        mount = container_url(url) if url is not None else None
        if mount is not None and mount.host_dir:
            nodes.setdefault(trainer.dataset.node_name, set()).add(mount.host_dir)
    shared = set()
    models = [("model", job.model.url), *([("pretrained", job.pretrained_model.url)] if job.pretrained_model else [])]
    for what, url in models:
        url = host_url(url, what)
        mount = container_url(url) if url is not None else None
        if mount is not None and mount.host_dir:
            shared.add(mount.host_dir)
    return nodes, shared


def on_node_root(url: str) -> bool:
    """Whether a manifest's url is an absolute hostPath, which a node root places under its node."""
    return not urlsplit(url).scheme and url.startswith("/")


def node_folder(node_root: Path, node: str) -> Path:
    """A node's filesystem under the node root: ``DIR/<node>`` (``DIR/_aggregator`` for the aggregator's own)."""
    return Path(node_root) / (AGGREGATOR_NODE_FOLDER if node == AGGREGATOR_NODE else node)


def node_path(node_root: Path, node: str, host_path: str) -> str:
    """hostPath ``/x`` on a node, as a path on this machine: ``DIR/<node>/x`` (a trailing / kept)."""
    mapped = str(node_folder(node_root, node) / host_path.lstrip("/"))
    return mapped + "/" if host_path.endswith("/") and not mapped.endswith("/") else mapped


def on_node(folder: str, node_folders_: Iterable[str]) -> bool:
    """Whether folder is one of a node's folders or inside one."""
    return any(_inside(folder, held) for held in node_folders_)


def _inside(path: str, folder: str) -> bool:
    path, folder = path.rstrip("/") + "/", folder.rstrip("/") + "/"
    return path.startswith(folder)


def hidden_folders(every: Iterable[str], needed: Iterable[object]) -> tuple[str, ...]:
    """Data folders of the job a pod must not read at their host path.

    Every Dataset folder of every node: a pod reaches its own node's only under
    /home/data (bound before these are hidden). A folder that holds something the
    worker needs to start (its folder, the manifests, its config, the interpreter)
    stays visible.
    """
    needed = [str(Path(str(p))) for p in needed]
    hidden = []
    for folder in sorted(set(every)):
        blocking = next((p for p in needed if _inside(p, folder)), None)
        if blocking is not None:
            logger.info("%s stays visible at its own path: it holds %s", folder, blocking)
            continue
        hidden.append(folder)
    return tuple(hidden)


def write_hosts_file(path: Path, names: Sequence[str]) -> Path:
    """This machine's /etc/hosts plus the aggregation Service's name on loopback."""
    try:
        base = Path("/etc/hosts").read_text(encoding="utf-8")
    except OSError:
        base = "127.0.0.1 localhost\n"
    path.parent.mkdir(parents=True, exist_ok=True)
    entry = "127.0.0.1 " + " ".join(names) + "  # the FederatedLearningJob's aggregation Service\n"
    path.write_text(base.rstrip("\n") + "\n" + entry, encoding="utf-8")
    return path


def wrap(argv: Sequence[str], view: NodeView, prefix: Sequence[str], pid_prefix: Sequence[str] = ()) -> tuple[str, ...]:
    """argv run in its own mount namespace set up as view says (and a PID namespace with pid_prefix)."""
    namespace = list(prefix)
    if pid_prefix:  # unshare --pid --fork --mount-proc --kill-child, in the same unshare
        namespace += [arg for arg in pid_prefix[1:] if arg not in namespace]
    return (*namespace, "sh", "-c", _setup_script(view) + '\nexec "$@"', "sh", *argv)


def _setup_script(view: NodeView) -> str:
    q = shlex.quote
    lines = ["set -e", f"mount --bind {q(str(view.hosts_file))} /etc/hosts"]
    if view.isolate_nodes:
        lines += _home_data_lines()
        for host_dir, mount_path, held in sorted(set(view.mounts), key=lambda m: m[1]):
            lines.append(f"mkdir -p {q(mount_path)}")
            if held:
                lines.append(f"mount --bind {q(host_dir)} {q(mount_path)}")
        for folder in view.hidden:
            lines.append(f"[ -d {q(folder)} ] && mount -t tmpfs -o ro,size=4k,mode=555 tmpfs {q(folder)} || true")
    return "\n".join(lines)


def _home_data_lines() -> list[str]:
    """An empty /home/data (a tmpfs); where the machine has none, /home is shadowed to hold one.

    The shadow is a tmpfs on /home with each real entry bound back, so nothing is
    written to the machine's /home and everything under it stays as it was.
    """
    if Path(HOST_PATH_PREFIX).is_dir():
        return [f"mount -t tmpfs -o mode=755 tmpfs {HOST_PATH_PREFIX}"]
    if not Path("/home").is_dir():
        raise NodeIsolationError("this machine has no /home folder to hold /home/data")
    return [
        "real=$(mktemp -d /tmp/plato-sedna-home.XXXXXX)",
        'mount --rbind /home "$real"',
        "mount -t tmpfs -o mode=755 tmpfs /home",
        'for entry in "$real"/* "$real"/.[!.]* "$real"/..?*; do',
        '  [ -e "$entry" ] || [ -L "$entry" ] || continue',
        '  name=${entry##*/}',
        '  if [ -L "$entry" ]; then cp -P "$entry" "/home/$name"',
        '  elif [ -d "$entry" ]; then mkdir "/home/$name" && mount --rbind "$entry" "/home/$name"',
        '  else : > "/home/$name" && mount --bind "$entry" "/home/$name"; fi',
        "done",
        'umount -l "$real" && rmdir "$real"',
        f"mkdir -p {HOST_PATH_PREFIX}",
        f"mount -t tmpfs -o mode=755 tmpfs {HOST_PATH_PREFIX}",
    ]


class NodeIsolationError(RuntimeError):
    """Node isolation cannot be set up on this machine."""
