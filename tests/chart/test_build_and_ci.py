"""Static checks of what cannot run here: the Dockerfile (no Docker engine), the CI workflow and
the e2e script (no cluster). They pin the properties the chart relies on."""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from chart_support import CHART_DIR, REPO_ROOT, VALUE_SETS, operator_container, render

DOCKERFILE = REPO_ROOT / "Dockerfile"
WORKFLOW = REPO_ROOT / ".github" / "workflows" / "ci.yaml"
RUN_SH = REPO_ROOT / "tests" / "e2e" / "run.sh"


def dockerfile_instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, with line continuations joined and comments dropped."""
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    instructions = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            keyword, _, rest = line.partition(" ")
            instructions.append((keyword.upper(), rest.strip()))
    return instructions


def stages() -> list[list[tuple[str, str]]]:
    result: list[list[tuple[str, str]]] = []
    for keyword, rest in dockerfile_instructions():
        if keyword == "FROM":
            result.append([])
        if result:
            result[-1].append((keyword, rest))
    return result


def build_args() -> dict[str, str]:
    args = {}
    for keyword, rest in dockerfile_instructions():
        if keyword == "ARG" and "=" in rest:
            name, _, default = rest.partition("=")
            args[name] = default
    return args


def test_dockerfile_is_multi_stage_with_a_pinned_base() -> None:
    froms = [rest for keyword, rest in dockerfile_instructions() if keyword == "FROM"]
    assert len(froms) >= 2, "the wheels must be built in a stage of their own"
    assert froms[0].endswith(" AS build")
    for image in froms:
        reference = image.split()[0]
        resolved = re.sub(r"\$\{(\w+)\}", lambda m: build_args()[m.group(1)], reference)
        name, _, tag = resolved.partition(":")
        assert tag and tag != "latest", f"FROM {resolved}: pin a tag (or digest), never latest"
        assert name.split("/")[-1] == "python" and tag.startswith("3.11-slim")


def test_build_stage_makes_wheels_and_final_stage_installs_only_them() -> None:
    build, final = stages()[0], stages()[-1]
    assert any(k == "RUN" and "pip wheel ." in r and "/wheels" in r for k, r in build)
    installs = [r for k, r in final if k == "RUN" and "pip install" in r]
    assert len(installs) == 1
    assert (
        "--no-index" in installs[0]
        and "--find-links=/wheels" in installs[0]
        and "--no-cache-dir" in installs[0]
    )
    assert "from=build" in installs[0]
    final_text = " ".join(r for _, r in final)
    for forbidden in ("build-essential", "gcc", "apt-get install", "COPY . "):
        assert forbidden not in final_text, f"final stage must not contain {forbidden!r}"


def test_final_stage_runs_as_numeric_non_root_user() -> None:
    final = stages()[-1]
    users = [r for k, r in final if k == "USER"]
    assert users, "no USER in the final stage: the image would run as root"
    user = users[-1]
    # Numeric, so Kubernetes can verify runAsNonRoot without a passwd lookup; and it is the chart's.
    assert re.fullmatch(r"\d+(:\d+)?", user), f"USER {user} is not numeric"
    uid = int(user.split(":")[0])
    assert uid != 0
    assert uid == operator_container(render())["securityContext"]["runAsUser"]


def test_entrypoint_env_and_labels() -> None:
    final = stages()[-1]
    entrypoints = [r for k, r in final if k == "ENTRYPOINT"]
    assert [json.loads(e) for e in entrypoints] == [["foundry-operator", "run"]]
    env = " ".join(r for k, r in final if k == "ENV")
    assert "PYTHONDONTWRITEBYTECODE=1" in env and "PYTHONUNBUFFERED=1" in env
    labels = " ".join(r for k, r in final if k == "LABEL")
    for key in ("title", "description", "version", "revision", "created", "source", "licenses"):
        assert f"org.opencontainers.image.{key}=" in labels
    # The chart's probes and metrics Service use these ports.
    exposed = {p for k, r in final if k == "EXPOSE" for p in r.split()}
    assert exposed == {"8080", "9090"}


def test_build_context_is_an_allow_list_of_what_the_wheel_needs() -> None:
    patterns = [
        p for p in (REPO_ROOT / ".dockerignore").read_text().splitlines() if p and not p.startswith("#")
    ]
    assert patterns[0] == "*", ".dockerignore must start by excluding everything"
    allowed = {p.lstrip("!").rstrip("/") for p in patterns if p.startswith("!")}
    copied: set[str] = set()
    for keyword, rest in dockerfile_instructions():
        if keyword == "COPY" and "--from" not in rest:
            copied.update(s.rstrip("/") for s in shlex.split(rest)[:-1])
    assert copied == allowed
    for source in sorted(copied):
        assert (REPO_ROOT / source).exists(), f"the Dockerfile copies {source}, which does not exist"
    pyproject = (REPO_ROOT / "pyproject.toml").read_text()
    assert 'readme = "README.md"' in pyproject  # why README.md is in the build context


def makefile_targets() -> set[str]:
    text = (REPO_ROOT / "Makefile").read_text()
    return {m.group(1) for m in re.finditer(r"^([A-Za-z0-9_.-]+):", text, re.MULTILINE)}


def workflow() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(WORKFLOW.read_text())
    return loaded


def test_workflow_runs_make_test_and_make_e2e() -> None:
    jobs = workflow()["jobs"]
    assert set(jobs) == {"test", "e2e"}
    runs = {name: [s.get("run", "") for s in job["steps"]] for name, job in jobs.items()}
    assert "make test" in runs["test"]
    assert "make e2e" in runs["e2e"]
    uses = {name: [s.get("uses", "") for s in job["steps"]] for name, job in jobs.items()}
    setup_python = next(
        s for s in jobs["test"]["steps"] if s.get("uses", "").startswith("actions/setup-python@")
    )
    assert setup_python["with"]["python-version"] == "3.11"
    # The real kube-apiserver and etcd the tests run against are built with Go (make control-plane).
    setup_go = next(s for s in jobs["test"]["steps"] if s.get("uses", "").startswith("actions/setup-go@"))
    assert setup_go["with"]["cache-dependency-path"] == "controlplane/go.sum"
    assert runs["test"].index("make control-plane") < runs["test"].index("make test")
    for action in ("helm/kind-action@", "azure/setup-kubectl@", "azure/setup-helm@"):
        assert any(u.startswith(action) for u in uses["e2e"]), f"e2e job does not install {action}"
    # Every action is pinned to a version, never a branch.
    for used in (u for job in uses.values() for u in job if u):
        assert re.search(r"@(v\d+(\.\d+)*|[0-9a-f]{40})$", used), f"{used} is not pinned"


def test_every_make_target_the_workflow_runs_exists() -> None:
    targets = makefile_targets()
    for job in workflow()["jobs"].values():
        for step in job["steps"]:
            for match in re.finditer(r"\bmake\s+([A-Za-z0-9_.-]+)", step.get("run", "")):
                assert match.group(1) in targets, (
                    f"workflow runs `make {match.group(1)}`, which the Makefile lacks"
                )
    assert "bash tests/e2e/run.sh" in (REPO_ROOT / "Makefile").read_text()


def test_e2e_script_is_valid_bash() -> None:
    subprocess.run(["bash", "-n", str(RUN_SH)], check=True)
    text = RUN_SH.read_text()
    assert text.startswith("#!/usr/bin/env bash\n")
    assert "set -euo pipefail" in text
    assert "trap cleanup EXIT" in text
    assert 'kubectl -n "$APP_NS" wait fdep --all --for=condition=Ready' in text
    assert "FOUNDRY_ENDPOINT_REASONING_PRO" in text
    # It installs the chart with the values file the chart tests render and validate (VALUE_SETS["e2e"]).
    assert "--values tests/e2e/values.yaml" in text and VALUE_SETS["e2e"]
    assert "charts/foundry-operator" in text and CHART_DIR.is_dir()


def test_e2e_skips_cleanly_without_a_docker_engine(tmp_path: Path) -> None:
    # A `docker` whose `info` fails, as on a machine with the CLI but no daemon; forced so that this
    # test never starts a real cluster on a machine that has Docker.
    fake = tmp_path / "docker"
    fake.write_text("#!/bin/sh\nexit 1\n")
    fake.chmod(0o755)
    env = {**os.environ, "PATH": f"{tmp_path}:{os.environ['PATH']}"}
    result = subprocess.run(["bash", str(RUN_SH)], env=env, capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "make e2e: no Docker engine here; skipped (runs in GitHub Actions)"


@pytest.mark.parametrize(
    "path", ["docs/install.md", "docs/gitops.md", "docs/rbac.md", "charts/foundry-operator/README.md"]
)
def test_docs_exist_and_link_to_existing_files(path: str) -> None:
    text = (REPO_ROOT / path).read_text()
    for target in re.findall(r"\]\(([^)#:]+)(?:#[^)]*)?\)", text):
        assert ((REPO_ROOT / path).parent / target).exists(), f"{path} links to missing {target}"
