"""`foundry-operator demo`: the operator's main job on a local world, told in plain words.

Starts the Azure emulator (two accounts: aucert-ai in westus, the primary, and aucert-ai-east in
eastus2), a real Kubernetes API server (kube-apiserver + etcd), runs the operator, applies
examples/, and prints where each model went and why, one refusal with its fix, the resulting
llm-config, and a truthful last line. With `--keep` the world stays up for kubectl.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from foundry_emulator.sandbox import Sandbox, load_documents, sandbox
from foundry_operator.api.models import FoundryDeploymentStatus
from foundry_operator.azure.arm import classify_operation

NAMESPACE = "aucert"
DEFAULT_EXAMPLES = Path(__file__).resolve().parents[2] / "examples"

# The incident the demo replays: gpt-5.3-codex asked for at a version the catalog does not have.
WRONG_VERSION = {
    "apiVersion": "foundry.llmops.io/v1alpha1",
    "kind": "FoundryDeployment",
    "metadata": {"name": "codex-wrong-version"},
    "spec": {
        "model": {"name": "gpt-5.3-codex", "version": "2025-12-20"},
        "deploymentName": "gpt-5.3-codex-old",
        "accounts": ["aucert-ai"],
        "keys": ["CODING_OLD"],
    },
}


def _condition(obj: dict[str, Any], type_: str) -> dict[str, Any]:
    conditions = obj.get("status", {}).get("conditions", [])
    return next((c for c in conditions if c.get("type") == type_), {})


def _ready(obj: dict[str, Any]) -> bool:
    return _condition(obj, "Ready").get("status") == "True"


def _stalled(obj: dict[str, Any]) -> bool:
    return _condition(obj, "Stalled").get("status") == "True"


def _settled(objects: list[dict[str, Any]]) -> bool:
    """Every object is Ready or stalled with a reason: nothing more will happen without a change."""
    return bool(objects) and all(_ready(obj) or _stalled(obj) for obj in objects)


async def _wait_settled(box: Sandbox, timeout: float) -> list[dict[str, Any]]:
    async def settled() -> list[dict[str, Any]] | None:
        objects = await box.list("FoundryDeployment", NAMESPACE)
        return objects if _settled(objects) else None

    try:
        result: list[dict[str, Any]] = await box.wait_for(settled, timeout, interval=0.25, what="convergence")
        return result
    except TimeoutError:
        return await box.list("FoundryDeployment", NAMESPACE)


def _placements(console: Console, deployments: list[dict[str, Any]]) -> None:
    console.rule("Where each model went, and why")
    for obj in sorted(deployments, key=lambda o: o["metadata"]["name"]):
        status = FoundryDeploymentStatus.model_validate(obj.get("status") or {})
        model = obj["spec"]["model"]["name"]
        first = obj["spec"]["accounts"][0]
        if not _ready(obj):
            console.print(f"[yellow]{model}[/]: not deployed. {_condition(obj, 'Ready').get('message', '')}")
            continue
        line = f"[bold]{model}[/] {status.model_version or ''} -> {status.account} ({status.region})"
        if status.account == first:
            console.print(f"{line}: the first account listed offers it")
            continue
        refused = next((c for c in status.candidates if c.account == first), None)
        why = refused.reason if refused else "the first account could not take it"
        console.print(f"{line}, not {first}: {why}", highlight=False)


async def _refusal(console: Console, box: Sandbox, timeout: float) -> None:
    console.rule("A refusal, before anything is written to Azure")
    spec = WRONG_VERSION["spec"]
    console.print(
        f"Applying {WRONG_VERSION['metadata']['name']}: {spec['model']['name']} "  # type: ignore[index]
        f"version {spec['model']['version']} (the version the incident asked for)",  # type: ignore[index]
        highlight=False,
    )
    puts_before = _arm_writes(box)
    await box.apply([WRONG_VERSION], NAMESPACE)
    name = str(WRONG_VERSION["metadata"]["name"])  # type: ignore[index]

    async def refused() -> dict[str, Any] | None:
        obj = await box.get("FoundryDeployment", NAMESPACE, name)
        return obj if _stalled(obj) else None

    try:
        obj = await box.wait_for(refused, timeout, interval=0.25, what="the refusal")
    except TimeoutError:
        console.print("[red]the operator did not refuse it in time[/]")
        return
    ready = _condition(obj, "Ready")
    console.print(f"Ready=False, reason {ready.get('reason')}:", highlight=False)
    console.print(f"  {ready.get('message')}", highlight=False)
    console.print(
        f"Azure writes for it: {_arm_writes(box) - puts_before} (refused before writing)", highlight=False
    )
    await box.delete("FoundryDeployment", NAMESPACE, name)


def _arm_writes(box: Sandbox) -> int:
    return sum(
        1
        for e in box.azure.log.since(0)
        if e["service"] == "arm" and e["method"] in ("PUT", "PATCH", "DELETE")
    )


def _config(console: Console, config: dict[str, str]) -> None:
    console.rule(f"ConfigMap {NAMESPACE}/llm-config (what the inference pods read)")
    for key in sorted(k for k in config if k.startswith("FOUNDRY_")):
        console.print(f"{key}={config[key]}", highlight=False)
    for key in sorted(k for k in config if not k.startswith("FOUNDRY_")):
        console.print(f"{key}: {len(config[key])} bytes", highlight=False)


def _table(console: Console, deployments: list[dict[str, Any]], elapsed: float) -> None:
    table = Table(title=f"kubectl get fdep -n {NAMESPACE} (after {elapsed:.1f} s)", title_justify="left")
    for column in ("NAME", "READY", "ACCOUNT", "REGION", "MODEL", "VERSION", "KEYS"):
        table.add_column(column, overflow="fold")
    for obj in sorted(deployments, key=lambda o: o["metadata"]["name"]):
        status = FoundryDeploymentStatus.model_validate(obj.get("status") or {})
        table.add_row(
            obj["metadata"]["name"],
            _condition(obj, "Ready").get("status", "-"),
            status.account or "-",
            status.region or "-",
            obj["spec"]["model"]["name"],
            status.model_version or "-",
            ",".join(status.published_keys),
        )
    console.print(table)


def _arm_summary(console: Console, box: Sandbox) -> None:
    log = box.azure.log.since(0)
    arm = [entry for entry in log if entry["service"] == "arm"]
    counts = Counter(f"{e['method']:6} {classify_operation(e['path']):26} {e['status']}" for e in arm)
    conflicts = sum(1 for e in arm if e["status"] == 409)
    throttled = sum(1 for e in arm if e["status"] == 429)
    console.rule(f"{len(arm)} Azure Resource Manager requests ({conflicts} conflicts, {throttled} throttled)")
    for kind, count in sorted(counts.items()):
        console.print(f"{count:4d}  {kind}", highlight=False)


# The inference pods' identity of the default scenario: Cognitive Services User on aucert-ai only.
INFERENCE_PODS = ("5b4a3c2d-1e0f-4a9b-8c7d-6e5f4a3b2c1d", "emulator-inference-secret-not-a-real-secret")


async def _call_key(clients: Any, key: str, capabilities: dict[str, str]) -> str:
    target = clients.get_async(key)
    if target.target.api_flavor == "openai" and capabilities.get("responses", "").lower() == "true":
        answer = await target.client.responses.create(model=target.model, input="hello")
        return str(answer.output_text)
    chat = await target.client.chat.completions.create(
        model=target.model, messages=[{"role": "user", "content": "hello"}]
    )
    return str(chat.choices[0].message.content)


def _failure(exc: BaseException) -> str:
    """Azure's status, code and message (openai's APIStatusError), on one line, markup escaped."""
    body = getattr(exc, "body", None)
    status = getattr(exc, "status_code", None)
    code = body.get("code") if isinstance(body, dict) else None
    message = body.get("message") if isinstance(body, dict) else None
    text = " ".join(str(message or exc or type(exc).__name__).split())[:160]
    head = " ".join(str(part) for part in (f"HTTP {status}" if status else None, code) if part)
    return escape(f"{head}: {text}" if head else text)


async def _calls(console: Console, box: Sandbox, config: dict[str, str]) -> None:
    """One call per llm-config key through foundry_llm_client, as the inference pods make it."""
    console.rule("One call per llm-config key, as the inference pods (their Entra ID token)")
    try:
        await _call_each_key(console, box, config)
    except ImportError as exc:  # the client is its own distribution (pip install ./client)
        console.print(f"skipped: {exc}", highlight=False, markup=False)
    except Exception as exc:  # robust: one line, never a traceback
        console.print(f"[red]the calls could not be made[/]: {_failure(exc)}", highlight=False)


async def _call_each_key(console: Console, box: Sandbox, config: dict[str, str]) -> None:
    import ssl

    import httpx
    from azure.identity.aio import ClientSecretCredential
    from foundry_llm_client import FoundryClients, LlmConfig

    try:
        models = json.loads(config.get("models.json") or "{}")
    except ValueError:
        models = {}
    ca = str(box.azure.ca_file)
    async with (
        ClientSecretCredential(
            box.azure.tenant_id,
            *INFERENCE_PODS,
            authority=box.azure.url,
            disable_instance_discovery=True,
            connection_verify=ca,
        ) as credential,
        httpx.AsyncClient(proxy=box.azure.proxy_url, verify=ssl.create_default_context(cafile=ca)) as http,
    ):
        clients = FoundryClients(
            LlmConfig(config), async_credential=credential, async_http_client=http, max_retries=0
        )
        failed: list[str] = []
        for key in clients.config.keys():
            described = models.get(key) if isinstance(models.get(key), dict) else {}
            model = described.get("model") or config.get(f"FOUNDRY_MODEL_{key}", "?")
            try:
                answer = await asyncio.wait_for(
                    _call_key(clients, key, described.get("capabilities") or {}), 30
                )
            except Exception as exc:  # one line per failing key, never a traceback
                console.print(
                    f"{key} -> {model}: [red]FAILED[/] {_failure(exc)}",
                    highlight=False,
                    no_wrap=True,
                    overflow="ellipsis",
                )
                failed.append(key)
                continue
            console.print(f"{key} -> {model}: {' '.join(answer.split())[:90]}", highlight=False, markup=False)
        keys = clients.config.keys()
        console.print(
            f"{len(keys) - len(failed)} of {len(keys)} keys answered"
            + (f"; failing: {', '.join(failed)}" if failed else ""),
            highlight=False,
        )
        if failed:
            # The incident's second lesson: a model placed on the second account is unusable until
            # the calling identity holds a data-plane role there too.
            console.print(
                "A key on an account where the pods' identity holds no data-plane role fails. Name the "
                "identity in the FoundryDeployment's spec.consumers and the operator reports it before "
                "any call (condition ConsumerAccess, with the `az role assignment create` command); "
                "with spec.accessPolicy: Grant it assigns the role itself (docs/consumers.md).",
                highlight=False,
            )


def _last_line(console: Console, deployments: list[dict[str, Any]], elapsed: float) -> bool:
    waiting = [obj for obj in deployments if not _ready(obj)]
    if deployments and not waiting:
        console.print(
            f"[green]converged[/]: {len(deployments)} of {len(deployments)} Ready in {elapsed:.1f} s"
        )
        return True
    console.print(f"[red]not converged[/]: {len(waiting)} of {len(deployments)} not Ready")
    for obj in waiting:
        ready = _condition(obj, "Ready")
        console.print(
            f"  {obj['metadata']['name']}: {ready.get('reason', 'no status yet')}: {ready.get('message', '')}",
            highlight=False,
        )
    return False


def _keep_instructions(console: Console, box: Sandbox) -> None:
    kubeconfig = box.state_dir / "kubeconfig"
    kubectl_dir = box.kube.binaries
    console.rule("The world stays up (Ctrl-C to stop it). In another shell:")
    console.print(f"export KUBECONFIG={kubeconfig}", highlight=False)
    if kubectl_dir is not None and (kubectl_dir / "kubectl").exists():
        console.print(f"export PATH={kubectl_dir}:$PATH   # kubectl {box.kube.version}", highlight=False)
    console.print(f"kubectl get fdep -n {NAMESPACE}", highlight=False)
    console.print(f"kubectl describe fdep reasoning-pro -n {NAMESPACE}", highlight=False)
    console.print(f"kubectl get cm llm-config -n {NAMESPACE} -o yaml", highlight=False)
    console.print(f"kubectl apply -n {NAMESPACE} -f {DEFAULT_EXAMPLES}", highlight=False)


async def _demo(examples: Path, timeout: float, keep: bool, state_dir: Path, console: Console) -> int:
    documents = load_documents([examples])
    async with sandbox(state_dir) as box:
        console.print(
            f"Kubernetes API server {box.kube.version} at {box.kube.url}; Azure emulator at {box.azure.url}",
            highlight=False,
        )
        console.print(
            "Azure accounts: aucert-ai (westus, the primary) and aucert-ai-east (eastus2)", highlight=False
        )
        operator = await box.start_operator()
        started = time.monotonic()
        await box.apply(documents, NAMESPACE)
        kinds = Counter(doc["kind"] for doc in documents)
        console.print(
            f"applied {', '.join(f'{n} {k}' for k, n in kinds.items())} from {examples} to namespace {NAMESPACE}",
            highlight=False,
        )
        deployments = await _wait_settled(box, timeout)
        elapsed = time.monotonic() - started
        _placements(console, deployments)
        await _refusal(console, box, 30.0)
        _config(console, await box.config_map(NAMESPACE) or {})
        _table(console, deployments, elapsed)
        _arm_summary(console, box)
        await _calls(console, box, await box.config_map(NAMESPACE) or {})
        converged = _last_line(console, deployments, elapsed)
        if keep:
            _keep_instructions(console, box)
            # kopf stops the operator on Ctrl-C or SIGTERM; then the sandbox stops everything else.
            await asyncio.shield(operator.task)
            console.print("stopped the operator; stopping the Kubernetes API server and the Azure emulator")
        return 0 if converged else 1


def run_demo(examples: Path | None, timeout: float, keep: bool = False, state_dir: Path | None = None) -> int:
    logging.basicConfig(level=logging.WARNING)
    logging.getLogger("kopf").setLevel(logging.WARNING)
    console = Console(width=None if sys.stdout.isatty() else 150)
    with tempfile.TemporaryDirectory(prefix="foundry-demo-") as temporary:
        directory = state_dir or Path(temporary)
        return asyncio.run(_demo(examples or DEFAULT_EXAMPLES, timeout, keep, directory, console))
