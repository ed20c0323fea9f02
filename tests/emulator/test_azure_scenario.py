"""Scenario files: the default world loads, and a bad file names the file, the field and the line."""

from __future__ import annotations

from pathlib import Path

import pytest

from foundry_emulator.azure import ScenarioError, default_scenario_path, load_scenario, parse_scenario
from foundry_emulator.azure.catalog import Catalog

MINIMAL = """\
tenantId: t1
subscriptionId: s1
principals:
  - clientId: app
    clientSecret: secret
models:
  - format: OpenAI
    name: gpt-x
    skus:
      - {name: GlobalStandard, usageName: OpenAI.GlobalStandard.gpt-x, capacity: {maximum: 10, default: 1}}
    versions:
      - {version: 2026-01-01, isDefaultVersion: true}
      - {version: 1}
regions:
  - name: westus
    offers: [{model: gpt-x}]
"""


def test_default_scenario_is_the_adr_world() -> None:
    scenario = load_scenario(default_scenario_path())
    accounts = {(a.resourceGroup, a.name): (a.location, a.kind) for a in scenario.accounts}
    assert accounts == {
        ("aucert-foundation-rg", "aucert-ai"): ("westus", "AIServices"),
        ("aucert-foundation-rg", "aucert-ai-east"): ("eastus2", "AIServices"),
    }
    assert scenario.deployments == []
    assert scenario.timing.lroSeconds == 1.0
    catalog = Catalog(scenario.models, scenario.regions)

    def offered(region: str) -> dict[str, list[str]]:
        out: dict[str, list[str]] = {}
        for o in catalog.offerings(region, "AIServices"):
            out.setdefault(o.model.name, []).append(o.version.version)
        return out

    westus = offered("westus")
    assert "gpt-5.4-pro" not in westus
    assert westus["gpt-5.3-codex"] == ["2026-02-24"]
    assert westus["Kimi-K2.6"] == ["2026-04-20"]
    for model in ("gpt-5.4", "gpt-5.1-codex", "DeepSeek-V3.2", "gpt-5.4-mini", "gpt-5-nano", "gpt-4o-mini"):
        assert model in westus
    assert [r.name for r in scenario.regions if "gpt-5.4-pro" in offered(r.name)] == [
        "eastus2",
        "southcentralus",
    ]
    kimi = catalog.find("westus", "AIServices", "Kimi-K2.6", "2026-04-20")
    assert kimi is not None and kimi.model.format == "MoonshotAI"
    mini = catalog.find("westus", "AIServices", "gpt-4o-mini", "2024-07-18")
    assert mini is not None and mini.version.deprecation is not None
    assert str(mini.version.deprecation.inference) == "2026-09-30"
    # Partner models are not offered to OpenAI-kind accounts.
    assert catalog.find("westus", "OpenAI", "Kimi-K2.6", "2026-04-20") is None


def test_versions_and_dates_stay_strings() -> None:
    scenario = parse_scenario(MINIMAL)
    versions = [v.version for v in scenario.models[0].versions]
    assert versions == ["2026-01-01", "1"]  # not a date, not an int


def test_json_is_accepted() -> None:
    import json

    import yaml

    assert parse_scenario(json.dumps(yaml.safe_load(MINIMAL), default=str)).tenantId == "t1"


def test_unknown_key_names_field_and_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(MINIMAL.replace("  - name: westus\n", "  - name: westus\n    colour: blue\n"))
    with pytest.raises(ScenarioError) as err:
        load_scenario(path)
    [issue] = err.value.issues
    assert issue.field == "regions[0].colour"
    assert issue.line == 16
    assert str(err.value).startswith(f"{path}:16: regions[0].colour: Extra inputs are not permitted")


def test_wrong_type_names_nested_field() -> None:
    text = MINIMAL.replace("capacity: {maximum: 10, default: 1}", "capacity: {maximum: ten, default: 1}")
    with pytest.raises(ScenarioError) as err:
        parse_scenario(text, source="s.yaml")
    [issue] = err.value.issues
    assert issue.field == "models[0].skus[0].capacity.maximum"
    assert issue.line == 10


def test_cross_reference_errors() -> None:
    text = MINIMAL.replace("offers: [{model: gpt-x}]", "offers: [{model: gpt-y}]") + (
        "accounts:\n  - {resourceGroup: rg, name: a, location: mars}\n"
    )
    with pytest.raises(ScenarioError) as err:
        parse_scenario(text)
    fields = {i.field: i for i in err.value.issues}
    assert "unknown model 'gpt-y'" in fields["regions[0].offers[0].model"].message
    assert fields["regions[0].offers[0].model"].line == 16
    assert "unknown region 'mars'" in fields["accounts[0].location"].message


def test_yaml_syntax_error_has_a_line() -> None:
    with pytest.raises(ScenarioError) as err:
        parse_scenario("tenantId: [unclosed\nsubscriptionId: s\n")
    assert err.value.issues[0].line is not None


def test_missing_file() -> None:
    with pytest.raises(ScenarioError, match=r"nope\.yaml"):
        load_scenario(Path("/nonexistent/nope.yaml"))


def test_capacity_default_must_fit_range() -> None:
    with pytest.raises(ScenarioError, match="outside"):
        parse_scenario(MINIMAL.replace("default: 1}", "default: 11}"))
