"""The chart renders, lints and validates for every supported value set, and says what it should."""

from __future__ import annotations

import helm_python
import jsonschema
import kubernetes_validate
import pytest
import yaml
from chart_support import (
    CHART_DIR,
    NAMESPACE,
    PEERING_CRDS,
    REPO_ROOT,
    VALUE_SETS,
    WI_CLIENT_ID,
    Manifest,
    env_of,
    load_yaml_documents,
    objects,
    one,
    operator_container,
    render,
    render_files,
)

# The chart's minimum (Chart.yaml kubeVersion) and the newest Kubernetes kubernetes-validate knows.
KUBE_VERSIONS = ("1.29.0", kubernetes_validate.utils.latest_version())

# Kinds whose schemas are not part of Kubernetes. ServiceMonitor belongs to prometheus-operator and
# kubernetes-validate has no schema for it: it is skipped, and only it. kopf's peering objects are
# validated against the CRD the chart ships instead (test_peering_objects_match_their_crd).
NOT_IN_KUBERNETES = {
    ("monitoring.coreos.com/v1", "ServiceMonitor"),
    ("kopf.dev/v1", "ClusterKopfPeering"),
    ("kopf.dev/v1", "KopfPeering"),
}

value_set_names = pytest.mark.parametrize("name", sorted(VALUE_SETS))


@value_set_names
def test_helm_lint_passes(name: str) -> None:
    report = helm_python.lint(
        CHART_DIR, VALUE_SETS[name], strict=True, namespace=NAMESPACE, kube_version="v1.29.0"
    )
    # Only "icon is recommended" (INFO) is tolerated: the project has no icon yet.
    findings = [m for m in report["messages"] if m["error"] != "icon is recommended"]
    assert report["errors"] == [] and findings == [], findings or report["errors"]


@value_set_names
@pytest.mark.parametrize("kube_version", KUBE_VERSIONS)
def test_every_manifest_validates_against_kubernetes(name: str, kube_version: str) -> None:
    docs = render(VALUE_SETS[name])
    assert docs, "the chart rendered nothing"
    for doc in docs:
        if (doc["apiVersion"], doc["kind"]) in NOT_IN_KUBERNETES:
            continue
        # strict: unknown fields are errors, so a misspelt or misplaced key cannot hide.
        try:
            kubernetes_validate.validate(doc, kube_version, strict=True)
        except kubernetes_validate.ValidationError as exc:
            path = ".".join(str(p) for p in exc.path)
            pytest.fail(
                f"{doc['kind']}/{doc['metadata']['name']} invalid for {kube_version}: {path}: {exc.message}"
            )


@pytest.mark.parametrize("kube_version", KUBE_VERSIONS)
def test_every_shipped_crd_validates(kube_version: str) -> None:
    with helm_python.Chart.load(CHART_DIR) as chart:
        crd_files = chart.crds
    assert {c["name"] for c in crd_files} >= {
        "crds/foundry.llmops.io_foundryaccounts.yaml",
        "crds/foundry.llmops.io_foundrydeployments.yaml",
        "crds/kopf-peering.yaml",
    }
    for crd_file in crd_files:
        for doc in yaml.safe_load_all(crd_file["data"]):
            if doc:
                kubernetes_validate.validate(doc, kube_version, strict=True)


@pytest.mark.parametrize("name", ["ha", "namespaced-ha"])
def test_peering_objects_match_their_crd(name: str) -> None:
    crds = {d["spec"]["names"]["kind"]: d for d in load_yaml_documents(PEERING_CRDS)}
    peering = [d for d in render(VALUE_SETS[name]) if d["apiVersion"] == "kopf.dev/v1"]
    assert peering
    for doc in peering:
        crd = crds[doc["kind"]]
        jsonschema.validate(doc, crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"])
        assert (
            "namespace" in doc["metadata"]
            if crd["spec"]["scope"] == "Namespaced"
            else "namespace" not in doc["metadata"]
        )


def test_only_servicemonitor_is_skipped_from_kubernetes_validation() -> None:
    rendered = {(d["apiVersion"], d["kind"]) for n in VALUE_SETS for d in render(VALUE_SETS[n])}
    assert rendered & NOT_IN_KUBERNETES == NOT_IN_KUBERNETES, "a skipped kind is never rendered: drop it"
    kubernetes_kinds = rendered - NOT_IN_KUBERNETES
    assert {k for _, k in kubernetes_kinds} >= {
        "Deployment",
        "ServiceAccount",
        "ClusterRole",
        "ClusterRoleBinding",
        "Role",
        "RoleBinding",
        "Service",
        "PodDisruptionBudget",
        "NetworkPolicy",
    }


def test_default_install_objects() -> None:
    kinds = sorted(d["kind"] for d in render())
    assert kinds == ["ClusterRole", "ClusterRoleBinding", "Deployment", "Service", "ServiceAccount"]
    for doc in render():
        labels = doc["metadata"]["labels"]
        assert labels["app.kubernetes.io/name"] == "foundry-operator"
        assert labels["app.kubernetes.io/instance"] == "foundry-operator"
        assert labels["app.kubernetes.io/managed-by"] == "Helm"
        assert labels["helm.sh/chart"] == "foundry-operator-0.1.0"
        assert labels["app.kubernetes.io/version"] == "0.1.0"
        if doc["kind"] not in ("ClusterRole", "ClusterRoleBinding"):
            assert doc["metadata"]["namespace"] == NAMESPACE


@pytest.mark.parametrize("name", sorted(VALUE_SETS))
def test_pod_and_container_are_locked_down(name: str) -> None:
    docs = render(VALUE_SETS[name])
    pod = one(docs, "Deployment")["spec"]["template"]["spec"]
    pod_sc = pod["securityContext"]
    assert pod_sc["runAsNonRoot"] is True
    assert isinstance(pod_sc["runAsUser"], int) and pod_sc["runAsUser"] > 0
    assert pod_sc["seccompProfile"] == {"type": "RuntimeDefault"}
    container = operator_container(docs)
    sc = container["securityContext"]
    assert sc["runAsNonRoot"] is True
    assert sc["runAsUser"] == 65532
    assert sc["readOnlyRootFilesystem"] is True
    assert sc["allowPrivilegeEscalation"] is False
    assert sc["capabilities"] == {"drop": ["ALL"]}
    assert sc["seccompProfile"] == {"type": "RuntimeDefault"}
    # The read-only root works because /tmp, the only path the process writes, is an emptyDir.
    tmp = next(v for v in pod["volumes"] if v["name"] == "tmp")
    assert "emptyDir" in tmp
    assert {"name": "tmp", "mountPath": "/tmp"} in container["volumeMounts"]
    assert container["resources"]["requests"] and container["resources"]["limits"]["memory"]


def test_probes_use_kopf_liveness_endpoint() -> None:
    container = operator_container(render())
    assert "--liveness=http://0.0.0.0:8080/healthz" in container["args"]
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert ports == {"health": 8080, "metrics": 9090}
    for probe in ("livenessProbe", "readinessProbe"):
        assert container[probe]["httpGet"] == {"path": "/healthz", "port": "health"}
    service = one(render(), "Service")
    assert service["spec"]["ports"] == [
        {"name": "metrics", "port": 9090, "targetPort": "metrics", "protocol": "TCP"}
    ]


def test_metrics_off_disables_port_and_service() -> None:
    docs = render({"metrics": {"enabled": False}})
    assert "--metrics-port=0" in operator_container(docs)["args"]
    assert not objects(docs, "Service")


def test_single_replica_runs_standalone_cluster_wide() -> None:
    docs = render()
    deployment = one(docs, "Deployment")
    container = operator_container(docs)
    assert deployment["spec"]["replicas"] == 1
    # The image's ENTRYPOINT (foundry-operator run) is kept; only arguments are passed.
    assert "command" not in container
    assert container["args"] == [
        "--all-namespaces",
        "--standalone",
        "--liveness=http://0.0.0.0:8080/healthz",
        "--metrics-port=9090",
        "--log-format=json",
        "--log-level=info",
    ]
    # Never two unpeered operators at once, not even during a rollout.
    assert deployment["spec"]["strategy"] == {"type": "Recreate"}
    assert not objects(docs, "PodDisruptionBudget")
    assert not [d for d in docs if d["apiVersion"] == "kopf.dev/v1"]


def test_ha_peers_replicas_with_distinct_priorities() -> None:
    docs = render(VALUE_SETS["ha"])
    deployment = one(docs, "Deployment")
    container = operator_container(docs)
    assert deployment["spec"]["replicas"] == 2
    assert "--peering=foundry-operator" in container["args"]
    assert "--standalone" not in container["args"]
    # Same-priority peers all pause (kopf), so each pod draws its own priority at start.
    assert "--priority=random" in container["args"]
    assert "command" not in container  # no shell wrapper: the image needs no /bin/sh for this
    assert {"name": "POD_ID", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}} in container["env"]
    assert deployment["spec"]["strategy"]["rollingUpdate"] == {"maxSurge": 1, "maxUnavailable": 0}
    anti = deployment["spec"]["template"]["spec"]["affinity"]["podAntiAffinity"]
    term = anti["preferredDuringSchedulingIgnoredDuringExecution"][0]["podAffinityTerm"]
    assert term["topologyKey"] == "kubernetes.io/hostname"
    assert term["labelSelector"]["matchLabels"] == deployment["spec"]["selector"]["matchLabels"]
    pdb = one(docs, "PodDisruptionBudget")
    assert pdb["spec"]["maxUnavailable"] == 1
    assert pdb["spec"]["selector"] == deployment["spec"]["selector"]
    peering = one(docs, "ClusterKopfPeering")
    assert peering["metadata"]["name"] == "foundry-operator"


def test_namespaced_mode_watches_only_listed_namespaces() -> None:
    docs = render(VALUE_SETS["namespaced-ha"])
    args = operator_container(docs)["args"]
    assert args[:2] == ["--namespace=team-a", "--namespace=team-b"]
    assert "--all-namespaces" not in args
    peerings = objects(docs, "KopfPeering")
    assert sorted(p["metadata"]["namespace"] for p in peerings) == ["team-a", "team-b"]
    assert not objects(docs, "ClusterKopfPeering")


def test_workload_identity_labels_pod_and_annotates_service_account() -> None:
    docs = render(VALUE_SETS["workload-identity"])
    sa = one(docs, "ServiceAccount")
    assert sa["metadata"]["annotations"] == {
        "azure.workload.identity/client-id": WI_CLIENT_ID,
        "azure.workload.identity/tenant-id": VALUE_SETS["workload-identity"]["azure"]["tenantId"],
    }
    pod = one(docs, "Deployment")["spec"]["template"]
    assert pod["metadata"]["labels"]["azure.workload.identity/use"] == "true"
    assert pod["spec"]["serviceAccountName"] == sa["metadata"]["name"]
    env = env_of(operator_container(docs))
    # The webhook injects these; a value set by the chart would win over the webhook's.
    for injected in (
        "AZURE_CLIENT_ID",
        "AZURE_TENANT_ID",
        "AZURE_FEDERATED_TOKEN_FILE",
        "AZURE_AUTHORITY_HOST",
    ):
        assert injected not in env
    assert "envFrom" not in operator_container(docs)


def test_without_workload_identity_no_label() -> None:
    pod = one(render(), "Deployment")["spec"]["template"]
    assert "azure.workload.identity/use" not in pod["metadata"]["labels"]
    assert "annotations" not in one(render(), "ServiceAccount")["metadata"]


@pytest.mark.parametrize(
    ("name", "authority", "arm"),
    [
        ("default", None, "https://management.azure.com/"),
        ("us-government", "https://login.microsoftonline.us/", "https://management.usgovcloudapi.net/"),
        ("china", "https://login.chinacloudapi.cn/", "https://management.chinacloudapi.cn/"),
        ("e2e", "https://127.0.0.1:8443/", "https://127.0.0.1:8443/"),
    ],
)
def test_azure_cloud_endpoints(name: str, authority: str | None, arm: str) -> None:
    env = env_of(operator_container(render(VALUE_SETS[name])))
    assert env.get("AZURE_AUTHORITY_HOST") == authority
    assert env["AZURE_RESOURCE_MANAGER_ENDPOINT"] == arm
    expected_audience = VALUE_SETS[name].get("azure", {}).get("resourceManagerAudience", arm)
    assert env["AZURE_RESOURCE_MANAGER_AUDIENCE"] == expected_audience


def test_operator_settings_env() -> None:
    values = {
        "logLevel": "debug",
        "logFormat": "text",
        "settings": {"resyncIntervalSeconds": 120, "catalogTtlSeconds": 900, "retirementWindowDays": 60},
    }
    container = operator_container(render(values))
    env = env_of(container)
    assert env["FOUNDRY_RESYNC_INTERVAL_SECONDS"] == "120"
    assert env["FOUNDRY_CATALOG_TTL_SECONDS"] == "900"
    assert env["FOUNDRY_RETIREMENT_WINDOW_DAYS"] == "60"
    assert env["FOUNDRY_LOG_LEVEL"] == "debug" and "--log-level=debug" in container["args"]
    assert env["FOUNDRY_LOG_FORMAT"] == "text" and "--log-format=text" in container["args"]


def test_service_principal_and_ca_bundle() -> None:
    docs = render(VALUE_SETS["service-principal-ca-bundle"])
    container = operator_container(docs)
    assert container["envFrom"] == [{"secretRef": {"name": "foundry-sp"}}]
    env = env_of(container)
    assert env["AZURE_TENANT_ID"] == VALUE_SETS["service-principal-ca-bundle"]["azure"]["tenantId"]
    assert env["SSL_CERT_FILE"] == env["REQUESTS_CA_BUNDLE"] == "/etc/foundry-operator/ca/ca.crt"
    assert {"name": "ca-bundle", "mountPath": "/etc/foundry-operator/ca", "readOnly": True} in container[
        "volumeMounts"
    ]
    volumes = one(docs, "Deployment")["spec"]["template"]["spec"]["volumes"]
    assert {"name": "ca-bundle", "configMap": {"name": "corp-ca"}} in volumes
    assert container["image"] == "ghcr.io/foundry-operator/foundry-operator:0.1.0@sha256:" + "ab" * 32


def test_image_defaults_to_app_version_never_latest() -> None:
    container = operator_container(render())
    assert container["image"] == "ghcr.io/foundry-operator/foundry-operator:0.1.0"
    assert container["imagePullPolicy"] == "IfNotPresent"


def test_servicemonitor_and_networkpolicy() -> None:
    docs = render(VALUE_SETS["monitoring-networkpolicy"])
    monitor = one(docs, "ServiceMonitor")
    assert monitor["metadata"]["labels"]["release"] == "kube-prometheus-stack"
    assert monitor["spec"]["endpoints"][0]["port"] == "metrics"
    assert monitor["spec"]["selector"]["matchLabels"] == one(docs, "Service")["spec"]["selector"]
    policy = one(docs, "NetworkPolicy")["spec"]
    assert policy["policyTypes"] == ["Ingress", "Egress"]
    ingress_ports = [[p["port"] for p in rule["ports"]] for rule in policy["ingress"]]
    assert ingress_ports == [[8080], [9090]]
    assert (
        policy["ingress"][1]["from"] == VALUE_SETS["monitoring-networkpolicy"]["networkPolicy"]["metricsFrom"]
    )
    egress = policy["egress"]
    assert [p["port"] for p in egress[0]["ports"]] == [53, 53]
    assert [p["port"] for p in egress[1]["ports"]] == [443, 6443]
    assert egress[1]["to"] == [{"ipBlock": {"cidr": "20.10.0.4/32"}}]
    assert egress[2] == {
        "ports": [{"port": 443, "protocol": "TCP"}],
        "to": [{"ipBlock": {"cidr": "0.0.0.0/0"}}],
    }


def test_e2e_values_run_emulator_as_native_sidecar() -> None:
    docs = render(VALUE_SETS["e2e"])
    pod = one(docs, "Deployment")["spec"]["template"]["spec"]
    sidecar = pod["initContainers"][0]
    assert sidecar["restartPolicy"] == "Always"
    assert sidecar["command"] == ["foundry-operator", "emulator"]
    args = sidecar["args"]
    option = {name: args[args.index(name) + 1] for name in ("--host", "--port", "--state-dir")}
    # Loopback only: the operator shares the pod's network, nothing else needs the emulator; so the
    # startup probe dials loopback from inside (a tcpSocket probe would dial the pod IP).
    assert option["--host"] == "127.0.0.1"
    assert "exec" in sidecar["startupProbe"]
    # run.sh, the values and the emulator must agree on where it listens and where its CA is.
    run_sh = (REPO_ROOT / "tests" / "e2e" / "run.sh").read_text()
    url = f"https://{option['--host']}:{option['--port']}"
    assert f'EMULATOR_URL="{url}"' in run_sh
    assert f'STATE_DIR="{option["--state-dir"]}"' in run_sh
    container = operator_container(docs)
    env = env_of(container)
    assert env["SSL_CERT_FILE"] == env["REQUESTS_CA_BUNDLE"] == f"{option['--state-dir']}/ca.pem"
    assert (
        env["AZURE_AUTHORITY_HOST"].rstrip("/") == env["AZURE_RESOURCE_MANAGER_ENDPOINT"].rstrip("/") == url
    )
    # The emulator, like ARM, accepts tokens only for the public ARM audiences.
    assert env["AZURE_RESOURCE_MANAGER_AUDIENCE"] == "https://management.azure.com/"
    assert container["envFrom"] == [{"secretRef": {"name": "foundry-e2e-azure"}}]
    assert "create secret generic foundry-e2e-azure" in run_sh


def test_cross_field_mistakes_fail_with_a_clear_message() -> None:
    with pytest.raises(helm_python.HelmRenderError, match="mutually exclusive"):
        render(
            {
                "azure": {
                    "credentialsSecret": "sp",
                    "workloadIdentity": {"enabled": True, "clientId": WI_CLIENT_ID},
                }
            }
        )
    with pytest.raises(helm_python.HelmRenderError, match=r"caBundle: set configMap or secret, not both"):
        render({"azure": {"caBundle": {"configMap": "a", "secret": "b"}}})
    with pytest.raises(helm_python.HelmRenderError, match=r"serviceAccount\.name is required"):
        render({"serviceAccount": {"create": False}})


def test_notes_tell_what_to_apply_next() -> None:
    notes = render_files()["foundry-operator/templates/NOTES.txt"]
    assert notes.index("FoundryAccount") < notes.index("kubectl get fdep")
    assert "llm-config" in notes
    assert "kubectl apply --server-side -f charts/foundry-operator/crds/" in notes
    notes = render_files(VALUE_SETS["workload-identity"])["foundry-operator/templates/NOTES.txt"]
    assert "system:serviceaccount:foundry-system:foundry-operator" in notes


def test_chart_crds_are_identical_to_the_generated_crds() -> None:
    """charts/foundry-operator/crds/ holds exactly the files of crds/, byte for byte (`make crds`)."""
    generated = REPO_ROOT / "crds"
    in_chart = CHART_DIR / "crds"
    expected = {
        "foundry.llmops.io_foundryaccounts.yaml",
        "foundry.llmops.io_foundrydeployments.yaml",
    }
    generated_files = {p.name for p in generated.glob("*.yaml")}
    assert generated_files >= expected, f"crds/ lacks {sorted(expected - generated_files)}: run `make crds`"
    chart_files = {p.name for p in in_chart.iterdir()}
    assert chart_files == generated_files, "charts/foundry-operator/crds/ differs from crds/: run `make crds`"
    for name in sorted(generated_files):
        assert (in_chart / name).read_bytes() == (generated / name).read_bytes(), (
            f"{name} drifted: run `make crds`"
        )


def test_operator_crds_match_the_api_contract() -> None:
    expected = {
        "FoundryAccount": ("foundryaccounts", ["fa"]),
        "FoundryDeployment": ("foundrydeployments", ["fdep"]),
    }
    for path in sorted((CHART_DIR / "crds").glob("*.yaml")):
        crd = load_yaml_documents(path)[0]
        names = crd["spec"]["names"]
        plural, short = expected[names["kind"]]
        assert crd["spec"]["group"] == "foundry.llmops.io"
        assert crd["spec"]["scope"] == "Namespaced"
        assert names["plural"] == plural and names["shortNames"] == short
        assert [v["name"] for v in crd["spec"]["versions"]] == ["v1alpha1"]
        # The RBAC grants */status: the CRDs must really have the status subresource.
        assert crd["spec"]["versions"][0]["subresources"]["status"] == {}


def test_peering_crds_are_kopfs_and_outside_the_chart_crds_folder() -> None:
    crds: list[Manifest] = load_yaml_documents(PEERING_CRDS)
    by_name = {c["metadata"]["name"]: c["spec"] for c in crds}
    assert by_name["clusterkopfpeerings.kopf.dev"]["scope"] == "Cluster"
    assert by_name["kopfpeerings.kopf.dev"]["scope"] == "Namespaced"
    for spec in by_name.values():
        assert spec["group"] == "kopf.dev"
        version = spec["versions"][0]
        assert version["name"] == "v1" and version["served"] and version["storage"]
        assert version["schema"]["openAPIV3Schema"]["properties"]["status"][
            "x-kubernetes-preserve-unknown-fields"
        ]
    # Installed by Helm from the subchart's crds/ (so before the peering objects), never templated:
    # a templated CRD would be deleted on uninstall, together with other kopf operators' peerings.
    assert not [
        d for n in VALUE_SETS for d in render(VALUE_SETS[n]) if d["kind"] == "CustomResourceDefinition"
    ]
    chart = yaml.safe_load((CHART_DIR / "Chart.yaml").read_text())
    assert chart["dependencies"] == [{"name": "kopf-peering", "version": "1.0.0"}]
