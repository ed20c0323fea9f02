"""The chart against the operator's real code: every flag it passes is an option of
`foundry-operator run`, and every FOUNDRY_*/AZURE_* variable it sets is a setting the operator reads.
This catches a renamed flag or setting before a cluster does (as a CrashLoopBackOff)."""

from __future__ import annotations

import json

import click
import pytest
from chart_support import CHART_DIR, VALUE_SETS, env_of, operator_container, render

from foundry_operator.cli import main as cli
from foundry_operator.settings import AzureSettings, OperatorSettings


def run_options() -> dict[str, click.Parameter]:
    command = cli.commands["run"] if isinstance(cli, click.Group) else None
    assert command is not None, "foundry-operator has no `run` command"
    return {opt: param for param in command.params for opt in param.opts}


def settings_env_names() -> set[str]:
    """Every environment variable the operator's settings read (as `variables()` resolves them)."""
    names = set()
    for model in (OperatorSettings, AzureSettings):
        for field_name in model.model_fields:
            names.update(name.upper() for name in model.variables(field_name))
    return names


@pytest.mark.parametrize("name", sorted(VALUE_SETS))
def test_every_flag_the_chart_passes_exists(name: str) -> None:
    container = operator_container(render(VALUE_SETS[name]))
    options = run_options()
    flags = [arg.split("=", 1)[0] for arg in container["args"] if arg.startswith("-")]
    for flag in flags:
        assert flag in options, f"the chart passes {flag}, which `foundry-operator run` does not accept"
    # Values the chart passes must be among the ones the CLI accepts (click.Choice).
    for arg in container["args"]:
        flag, _, value = arg.partition("=")
        param_type = options[flag].type if flag in options else None
        if isinstance(param_type, click.Choice):
            assert value in param_type.choices, f"{arg}: the CLI accepts only {param_type.choices}"


@pytest.mark.parametrize("name", sorted(VALUE_SETS))
def test_every_setting_the_chart_sets_is_read_by_the_operator(name: str) -> None:
    env = env_of(operator_container(render(VALUE_SETS[name])))
    known = settings_env_names()
    for variable in env:
        if variable.startswith(("FOUNDRY_", "AZURE_")) or variable in ("SSL_CERT_FILE", "REQUESTS_CA_BUNDLE"):
            assert variable in known, f"the chart sets {variable}, which the operator's settings do not read"


def test_log_choices_agree_with_the_values_schema() -> None:
    schema = json.loads((CHART_DIR / "values.schema.json").read_text())["properties"]
    options = run_options()
    for value_key, flag in (("logLevel", "--log-level"), ("logFormat", "--log-format")):
        param_type = options[flag].type
        assert isinstance(param_type, click.Choice)
        assert sorted(schema[value_key]["enum"]) == sorted(param_type.choices)
