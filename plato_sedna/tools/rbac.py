"""The ServiceAccount, Role and RoleBinding with the least rights plato-sedna's workers use.

``deploy/rbac.yaml`` is the same objects, commented, for ``kubectl apply``.
"""

from __future__ import annotations

SERVICE_ACCOUNT = "plato-sedna"
ROLE = "plato-sedna-reader"
_LABELS = {"app.kubernetes.io/name": "plato-sedna"}

# What kube.py reads: the job, its Datasets and Models by name; the job's pods by label.
RULES = (
    {"apiGroups": ["sedna.io"], "resources": ["federatedlearningjobs", "datasets", "models"], "verbs": ["get"]},
    {"apiGroups": [""], "resources": ["pods"], "verbs": ["list"]},
)


def _metadata(name: str, namespace: str | None) -> dict:
    metadata = {"name": name, "labels": dict(_LABELS)}
    if namespace:
        metadata["namespace"] = namespace
    return metadata


def rbac_objects(namespace: str | None = None) -> list[dict]:
    """ServiceAccount, Role and RoleBinding, in ``namespace`` when given."""
    return [
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": _metadata(SERVICE_ACCOUNT, namespace)},
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "Role",
            "metadata": _metadata(ROLE, namespace),
            "rules": [dict(rule) for rule in RULES],
        },
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "RoleBinding",
            "metadata": _metadata(ROLE, namespace),
            "subjects": [{"kind": "ServiceAccount", "name": SERVICE_ACCOUNT}],
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": ROLE},
        },
    ]
