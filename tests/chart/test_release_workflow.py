"""Static checks of the release workflow (.github/workflows/release.yaml), which cannot run here (no
Docker, no registry, no PyPI): its trigger, least permissions per job, versions derived from the
tag, the chart pointed at the released image, keyless signing, trusted publishing to PyPI."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import helm_python
import pytest
import yaml
from chart_support import CHART_DIR, REPO_ROOT, operator_container

WORKFLOW = REPO_ROOT / ".github" / "workflows" / "release.yaml"


def workflow() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(WORKFLOW.read_text())
    return loaded


def jobs() -> dict[str, Any]:
    found: dict[str, Any] = workflow()["jobs"]
    return found


def steps(job: str) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = jobs()[job]["steps"]
    return found


def step_using(job: str, action: str) -> dict[str, Any]:
    matches = [s for s in steps(job) if s.get("uses", "").startswith(f"{action}@")]
    assert len(matches) == 1, f"job {job} should use {action} once"
    return matches[0]


def runs(job: str) -> str:
    return "\n".join(s.get("run", "") for s in steps(job))


def test_triggered_only_by_a_version_tag() -> None:
    # PyYAML reads the key `on` as True (YAML 1.1).
    triggers = workflow()[True]
    assert triggers == {"push": {"tags": ["v*"]}}


def test_no_default_permissions_and_least_per_job() -> None:
    assert workflow()["permissions"] == {}
    expected = {
        "version": {"contents": "read"},
        "image": {"contents": "read", "packages": "write", "id-token": "write"},
        "chart": {"contents": "read", "packages": "write", "id-token": "write"},
        "python-dist": {"contents": "read"},
        "pypi": {"id-token": "write"},
    }
    assert {name: job.get("permissions") for name, job in jobs().items()} == expected


def test_every_action_is_pinned_to_a_version() -> None:
    used = [s["uses"] for job in jobs().values() for s in job["steps"] if "uses" in s]
    assert used
    for ref in used:
        assert re.search(r"@(v\d+(\.\d+)*|[0-9a-f]{40})$", ref), f"{ref} is not pinned to a version"


def run_version_step(
    tmp_path: Path, tag: str, package_version: str
) -> tuple[subprocess.CompletedProcess[str], list[str]]:
    """The `version` job's script, on a copy of the files it reads."""
    (tmp_path / "operator" / "foundry_operator").mkdir(parents=True)
    pyproject = (REPO_ROOT / "pyproject.toml").read_text()
    (tmp_path / "pyproject.toml").write_text(
        re.sub(r'^version = ".*"$', f'version = "{package_version}"', pyproject, count=1, flags=re.M)
    )
    for dist in ("operator", "client"):
        text = (REPO_ROOT / dist / "pyproject.toml").read_text()
        (tmp_path / dist).mkdir(exist_ok=True)
        (tmp_path / dist / "pyproject.toml").write_text(
            re.sub(r'^version = ".*"$', f'version = "{package_version}"', text, count=1, flags=re.M)
        )
    (tmp_path / "operator" / "foundry_operator" / "__init__.py").write_text(
        f'"""x"""\n\n__version__ = "{package_version}"\n'
    )
    output = tmp_path / "output"
    env = {
        **os.environ,
        "GITHUB_REF_NAME": tag,
        "GITHUB_REPOSITORY_OWNER": "Foundry-Operator",
        "GITHUB_OUTPUT": str(output),
    }
    script = next(s["run"] for s in steps("version") if s.get("id") == "version")
    result = subprocess.run(
        ["bash", "-e", "-c", script], cwd=tmp_path, env=env, capture_output=True, text=True
    )
    return result, output.read_text().splitlines() if output.exists() else []


def test_version_and_owner_come_from_the_tag(tmp_path: Path) -> None:
    result, outputs = run_version_step(tmp_path, "v1.4.2", "1.4.2")
    assert result.returncode == 0, result.stdout + result.stderr
    assert outputs == ["version=1.4.2", "owner=foundry-operator"]
    assert jobs()["version"]["outputs"]["version"] == "${{ steps.version.outputs.version }}"


@pytest.mark.parametrize(("tag", "package"), [("v1.4.2", "1.4.1"), ("release-1", "0.1.0"), ("v1", "1")])
def test_a_tag_that_disagrees_with_the_package_fails(tmp_path: Path, tag: str, package: str) -> None:
    result, outputs = run_version_step(tmp_path, tag, package)
    assert result.returncode != 0 and result.stdout.startswith("::error::tag ")
    assert outputs == []


def test_image_is_multi_arch_with_sbom_and_provenance_and_signed_by_digest() -> None:
    for action in ("docker/setup-qemu-action", "docker/setup-buildx-action", "docker/login-action"):
        step_using("image", action)
    build = step_using("image", "docker/build-push-action")
    assert build["id"] == "build"
    settings = build["with"]
    assert set(settings["platforms"].split(",")) == {"linux/amd64", "linux/arm64"}
    assert settings["push"] is True and settings["sbom"] is True
    assert str(settings["provenance"]).startswith("mode=max")
    # The tag is the version derived from the release tag, on ghcr.io under the repository owner.
    assert settings["tags"] == "${{ env.IMAGE }}:${{ env.VERSION }}"
    env = jobs()["image"]["env"]
    assert env["IMAGE"] == "ghcr.io/${{ needs.version.outputs.owner }}/foundry-operator"
    assert env["VERSION"] == "${{ needs.version.outputs.version }}"
    installer = step_using("image", "sigstore/cosign-installer")
    assert steps("image").index(installer) > steps("image").index(build)
    sign = next(s for s in steps("image") if "cosign sign" in s.get("run", ""))
    assert sign["run"].strip() == 'cosign sign --yes "${IMAGE}@${DIGEST}"'  # by digest, keyless
    assert sign["env"]["DIGEST"] == "${{ steps.build.outputs.digest }}"
    assert "--key" not in runs("image")
    assert jobs()["image"]["outputs"]["digest"] == "${{ steps.build.outputs.digest }}"


def test_chart_follows_the_tag_and_is_pushed_as_oci() -> None:
    chart = jobs()["chart"]
    assert set(chart["needs"]) == {"version", "image"}
    assert chart["env"]["VERSION"] == "${{ needs.version.outputs.version }}"
    assert chart["env"]["DIGEST"] == "${{ needs.image.outputs.digest }}"
    script = runs("chart")
    assert 'helm package "$CHART_DIR" --version "$VERSION" --app-version "$VERSION"' in script
    assert 'helm push "dist/foundry-operator-${VERSION}.tgz" "oci://ghcr.io/${OWNER}/charts"' in script
    assert 'cosign sign --yes "ghcr.io/${OWNER}/charts/foundry-operator@${CHART_DIGEST}"' in script
    assert workflow()["env"]["CHART_DIR"] == "charts/foundry-operator"


def test_the_released_chart_runs_the_released_image(tmp_path: Path) -> None:
    """The chart job's edit of values.yaml, then what `helm package --version --app-version` does to
    Chart.yaml, then Helm's own rendering: the operator runs the image of this release, by digest."""
    chart_dir = tmp_path / "charts" / "foundry-operator"
    shutil.copytree(CHART_DIR, chart_dir)
    digest = "sha256:" + "ab" * 32
    env = {**os.environ, "OWNER": "acme", "DIGEST": digest, "CHART_DIR": "charts/foundry-operator"}
    script = next(
        s["run"] for s in steps("chart") if s.get("name") == "Point the chart at the released image"
    )
    subprocess.run(["bash", "-e", "-c", script], cwd=tmp_path, env=env, check=True, capture_output=True)
    values = yaml.safe_load((chart_dir / "values.yaml").read_text())
    assert values["image"] == {**values["image"], "repository": "ghcr.io/acme/foundry-operator", "tag": ""}
    assert values["image"]["digest"] == digest
    meta = yaml.safe_load((chart_dir / "Chart.yaml").read_text())
    meta.update(version="2.3.4", appVersion="2.3.4")
    (chart_dir / "Chart.yaml").write_text(yaml.safe_dump(meta, sort_keys=False))
    with helm_python.Chart.load(chart_dir) as chart:
        rendered = chart.render(json.loads("{}"), name="foundry-operator", namespace="foundry-system")
    docs = [
        d for path, text in rendered.items() if path.endswith(".yaml") for d in yaml.safe_load_all(text) if d
    ]
    assert operator_container(docs)["image"] == f"ghcr.io/acme/foundry-operator:2.3.4@{digest}"


def test_pypi_uses_trusted_publishing_and_no_secret() -> None:
    pypi = jobs()["pypi"]
    assert pypi["environment"]["name"] == "pypi"
    assert pypi["permissions"] == {"id-token": "write"}
    publish = step_using("pypi", "pypa/gh-action-pypi-publish")
    assert not publish.get("with"), "no password/user: the OIDC token is the credential"
    assert "secrets." not in yaml.safe_dump(pypi)
    # The only secret anywhere is the job's own GITHUB_TOKEN (for ghcr.io): no long-lived one.
    assert set(re.findall(r"secrets\.(\w+)", WORKFLOW.read_text())) == {"GITHUB_TOKEN"}
    assert not re.search(
        r"PYPI_(API_)?TOKEN|TWINE_PASSWORD|password:\s*\$\{\{\s*secrets\.PYPI", WORKFLOW.read_text()
    )


def test_wheel_and_sdist_are_built_once_and_handed_over() -> None:
    script = runs("python-dist")
    assert "python -m build --sdist --wheel --outdir dist/" in script
    upload = step_using("python-dist", "actions/upload-artifact")
    download = step_using("pypi", "actions/download-artifact")
    assert upload["with"]["name"] == download["with"]["name"] == "python-dist"
    assert download["with"]["path"] == "dist/"  # where gh-action-pypi-publish looks
    # PyPI last: a failed image or chart must not leave a published package without them.
    assert set(jobs()["pypi"]["needs"]) == {"python-dist", "image", "chart"}
