"""The Helm chart in deploy/helm: `helm lint`, `helm template`, and every rendered Kubernetes manifest
validated against the Kubernetes API schemas (kubernetes-validate, strict: unknown fields fail).

The Strimzi (Kafka, KafkaNodePool, KafkaTopic) and Altinity (ClickHouseInstallation,
ClickHouseKeeperInstallation) resources are custom resources: no package registry reachable here ships
their CRD schemas, so they are checked for the fields the operators need, not against a schema.
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from core.config import Settings
from outagewatch.stack.packages import ensure_go_tool

# The first run builds Helm from source (go install): minutes on a 2-core machine.
pytestmark = pytest.mark.timeout(2400)

CHART = Path(__file__).resolve().parent.parent / "deploy" / "helm" / "outagewatch"
KUBERNETES_VERSION = "1.31.0"
VALUES = ["--set", "clickhouse.writerPassword=w", "--set", "clickhouse.readerPassword=r"]
CUSTOM_KINDS = {"Kafka", "KafkaNodePool", "KafkaTopic", "ClickHouseInstallation", "ClickHouseKeeperInstallation"}


@pytest.fixture(scope="module")
def helm(settings: Settings) -> str:
    return ensure_go_tool("helm", settings.stack.cache_dir)


@pytest.fixture(scope="module")
def manifests(helm: str) -> list[dict[str, Any]]:
    rendered = subprocess.run([helm, "template", "ow", str(CHART), *VALUES], capture_output=True, text=True,
                              check=False)
    assert rendered.returncode == 0, rendered.stderr
    return [doc for doc in yaml.safe_load_all(rendered.stdout) if doc]


def test_helm_lint_passes(helm: str) -> None:
    linted = subprocess.run([helm, "lint", "--strict", str(CHART), *VALUES], capture_output=True, text=True,
                            check=False)
    assert linted.returncode == 0, linted.stdout + linted.stderr


def test_a_missing_password_is_refused_with_what_to_set(helm: str) -> None:
    rendered = subprocess.run([helm, "template", "ow", str(CHART)], capture_output=True, text=True, check=False)
    assert rendered.returncode != 0
    assert "clickhouse.writerPassword (or clickhouse.existingSecret) is required" in rendered.stderr


def test_core_kinds_match_the_kubernetes_schemas(manifests: list[dict[str, Any]]) -> None:
    import kubernetes_validate

    validated = []
    for doc in manifests:
        if doc["kind"] in CUSTOM_KINDS:
            continue
        kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)
        validated.append(doc["kind"])
    assert sorted(set(validated)) == ["ConfigMap", "Deployment", "HorizontalPodAutoscaler",
                                      "PodDisruptionBudget", "Secret", "Service"]


def test_the_operators_resources_carry_the_topology(manifests: list[dict[str, Any]]) -> None:
    by_kind: dict[str, list[dict[str, Any]]] = {}
    for doc in manifests:
        by_kind.setdefault(doc["kind"], []).append(doc)
    kafka = by_kind["Kafka"][0]
    assert kafka["apiVersion"] == "kafka.strimzi.io/v1beta2"
    assert kafka["metadata"]["annotations"] == {"strimzi.io/node-pools": "enabled", "strimzi.io/kraft": "enabled"}
    assert kafka["spec"]["kafka"]["config"]["min.insync.replicas"] == 2
    pool = by_kind["KafkaNodePool"][0]
    assert pool["spec"]["replicas"] == 3 and set(pool["spec"]["roles"]) == {"controller", "broker"}
    assert pool["metadata"]["labels"]["strimzi.io/cluster"] == kafka["metadata"]["name"]
    topics = {t["metadata"]["name"]: t["spec"] for t in by_kind["KafkaTopic"]}
    assert set(topics) == set(Settings().topics.all())
    assert all(spec["replicas"] == 3 and spec["config"]["min.insync.replicas"] == 2 for spec in topics.values())
    chi = by_kind["ClickHouseInstallation"][0]
    assert chi["apiVersion"] == "clickhouse.altinity.com/v1"
    cluster = chi["spec"]["configuration"]["clusters"][0]
    assert cluster["name"] == "outagewatch" and cluster["layout"] == {"shardsCount": 2, "replicasCount": 2}
    keeper = by_kind["ClickHouseKeeperInstallation"][0]
    assert chi["spec"]["configuration"]["zookeeper"]["nodes"][0]["host"] == f"keeper-{keeper['metadata']['name']}"


def test_every_process_has_requests_and_the_collector_its_probes(manifests: list[dict[str, Any]]) -> None:
    deployments = {d["metadata"]["name"]: d for d in manifests if d["kind"] == "Deployment"}
    assert set(deployments) == {"ow-collector", "ow-worker", "ow-sink"}
    for name, deployment in deployments.items():
        pod = deployment["spec"]["template"]["spec"]
        for container in [*pod["containers"], *pod.get("initContainers", [])]:
            assert container["resources"]["requests"]["cpu"], f"{name}/{container['name']}: no CPU request"
            names = {e["name"] for e in container["env"]}
            assert {"OUTAGEWATCH_CLICKHOUSE_URL", "OUTAGEWATCH_COLLECTOR_API_KEYS"} <= names
    collector = deployments["ow-collector"]["spec"]["template"]["spec"]["containers"][0]
    assert collector["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert collector["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert collector["args"] == ["collect"]
    settings = next(d for d in manifests if d["kind"] == "ConfigMap")["data"]
    assert settings["OUTAGEWATCH_CLICKHOUSE_CLUSTER"] == "outagewatch"
    assert settings["OUTAGEWATCH_KAFKA_REPLICATION_FACTOR"] == "3"
