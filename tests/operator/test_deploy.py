"""The operator's deploy manifests: valid for Kubernetes, and least privilege."""

from __future__ import annotations

from pathlib import Path

import kubernetes_validate
import yaml

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"


def documents() -> list[dict[str, object]]:
    return [
        doc for path in sorted(DEPLOY.glob("*.yaml")) for doc in yaml.safe_load_all(path.read_text()) if doc
    ]


def test_deploy_manifests_are_valid_kubernetes_objects() -> None:
    for doc in documents():
        kubernetes_validate.validate(doc, "1.30", strict=True)


def test_operator_rbac_grants_no_wildcards_no_secrets_and_no_cluster_writes() -> None:
    for doc in documents():
        if doc["kind"] not in ("Role", "ClusterRole"):
            continue
        for rule in doc["rules"]:  # type: ignore[attr-defined]
            assert "*" not in rule["verbs"] and "*" not in rule["resources"], rule
            assert "secrets" not in rule["resources"]
            if doc["kind"] == "ClusterRole":
                assert set(rule["verbs"]) <= {"get", "list", "watch"}, rule
