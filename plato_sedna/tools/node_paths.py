"""What each node must hold for a job's hostPath urls, for ``render``'s notes and ``validate``'s warnings.

Sedna's GlobalManager mounts a Dataset's or Model's hostPath url (one without a scheme)
by its *parent* folder, with ``type: Directory`` (``PrepareHostPath``): a pod whose node
lacks that folder never starts (``ContainerCreating``, hostPath type check failed). The
aggregation Model's url is mounted into the aggregator **and every trainer**, so its
parent must exist on all their nodes. The aggregator publishes into the Model's folder
(the url itself when it names a folder, else its parent) as the image's user, uid 1000
(``deploy/Dockerfile``): that folder must exist on the aggregator's node, writable by
uid 1000 (``sudo mkdir -p F && sudo chown 1000 F``, or an initContainer running as root
that does it).
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

IMAGE_UID = 1000  # deploy/Dockerfile: USER 1000
IMAGE_GID = 1000
ANY_NODE = "the node the aggregator is scheduled on"


@dataclass(frozen=True)
class NodeFolder:
    """A host folder some nodes must hold (and the aggregator's node may need to write)."""

    folder: str
    nodes: tuple[str, ...]
    what: str
    writable: bool = False  # by uid 1000

    def line(self) -> str:
        where = ", ".join(self.nodes) if self.nodes else ANY_NODE
        needs = f"must exist on node(s) {where}"
        if self.writable:
            needs += f", writable by uid {IMAGE_UID} (sudo mkdir -p {self.folder} && sudo chown {IMAGE_UID} {self.folder})"
        return f"{self.folder} ({self.what}) {needs}"


def is_host_path(url: str | None) -> bool:
    return bool(url) and "://" not in url


def mounted_folder(url: str) -> str:
    """The host folder the GM mounts for a hostPath url (Go's ``filepath.Split``): its parent
    (``/model`` mounts ``/``), or the url itself when it ends in ``/``."""
    if url.endswith("/"):
        return url.rstrip("/") or "/"
    return str(PurePosixPath(url).parent)


def node_folders(
    model_url: str | None,
    aggregator_node: str | None,
    trainers: list[tuple[str | None, str | None]],
    pretrained_url: str | None = None,
) -> list[NodeFolder]:
    """The folders the nodes must hold; ``trainers`` are (node, dataset url) pairs."""
    from plato_sedna.models.publish import model_folder

    trainer_nodes = tuple(dict.fromkeys(node for node, _ in trainers if node))
    every = tuple(dict.fromkeys([*([aggregator_node] if aggregator_node else []), *trainer_nodes]))
    folders: list[NodeFolder] = []
    if is_host_path(model_url):
        published = model_folder(model_url)
        mounted = mounted_folder(model_url)
        if mounted != published:
            folders.append(NodeFolder(mounted, every, "mounted for the Model's url in every worker"))
        folders.append(NodeFolder(
            published, (aggregator_node,) if aggregator_node else (),
            "the aggregator publishes the model there", writable=True,
        ))
        if published == mounted and trainer_nodes:
            folders.append(NodeFolder(published, trainer_nodes, "mounted for the Model's url in every trainer"))
    if is_host_path(pretrained_url):
        folders.append(NodeFolder(mounted_folder(pretrained_url), every, "the pretrained Model's folder"))
    for node, url in trainers:
        if is_host_path(url):
            folders.append(NodeFolder(mounted_folder(url), (node,) if node else (), "a Dataset's folder"))
    return folders


def hostpath_notes(request) -> list[str]:
    """``render``'s notes: what each node must hold before ``kubectl apply``."""
    folders = node_folders(request.model_url, request.aggregator_node, list(request.trainers), request.pretrained_model_url)
    if not folders:
        return []
    lines = ["note: Sedna mounts hostPath urls with type Directory (a pod whose node lacks one never starts):"]
    lines += [f"  {folder.line()}" for folder in folders]
    if not request.aggregator_node and any(folder.writable for folder in folders):
        lines.append("  (pin the aggregator with --aggregator-node to know which node writes the model)")
    return lines


def writable_by(path: Path, uid: int = IMAGE_UID, gid: int = IMAGE_GID) -> bool | None:
    """Whether ``path`` (a folder on this machine) is writable by ``uid``/``gid``; None when it cannot be told."""
    try:
        info = path.stat()
    except OSError:
        return None
    if not stat.S_ISDIR(info.st_mode):
        return False
    if uid == 0:
        return True
    wx = stat.S_IWUSR | stat.S_IXUSR
    if info.st_uid == uid:
        return info.st_mode & wx == wx
    if info.st_gid == gid:
        return info.st_mode & (stat.S_IWGRP | stat.S_IXGRP) == stat.S_IWGRP | stat.S_IXGRP
    return info.st_mode & (stat.S_IWOTH | stat.S_IXOTH) == stat.S_IWOTH | stat.S_IXOTH


def nearest_existing(path: Path) -> Path:
    """``path`` or its nearest ancestor that exists."""
    while not os.path.lexists(path) and path.parent != path:
        path = path.parent
    return path
