"""Settings come from the environment under the documented names; keywords win; errors name the variable."""

from __future__ import annotations

import pytest

from foundry_operator.runner import StartupError, load_settings
from foundry_operator.settings import AzureSettings, OperatorSettings


def test_defaults_without_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("FOUNDRY_RESYNC_INTERVAL_SECONDS", "AZURE_RESOURCE_MANAGER_AUDIENCE"):
        monkeypatch.delenv(name, raising=False)
    assert OperatorSettings().resync_interval_seconds == 300.0
    assert AzureSettings().resource_manager_audience == AzureSettings().resource_manager_endpoint


def test_prefixed_variables_in_any_case(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FOUNDRY_RESYNC_INTERVAL_SECONDS", "10")
    monkeypatch.setenv("foundry_worker_limit", "64")
    monkeypatch.setenv("AZURE_TENANT_ID", "tenant")
    settings = OperatorSettings()
    assert settings.resync_interval_seconds == 10.0
    assert settings.worker_limit == 64
    assert AzureSettings().tenant_id == "tenant"


def test_keywords_win_over_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FOUNDRY_RESYNC_INTERVAL_SECONDS", "10")
    assert OperatorSettings(resync_interval_seconds=3).resync_interval_seconds == 3.0
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", "/env/ca.pem")
    assert AzureSettings(ca_bundle="/given/ca.pem").ca_bundle == "/given/ca.pem"


def test_ca_bundle_from_requests_then_ssl_cert_file(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("REQUESTS_CA_BUNDLE", raising=False)
    monkeypatch.setenv("SSL_CERT_FILE", "/ssl.pem")
    assert AzureSettings().ca_bundle == "/ssl.pem"
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", "/requests.pem")
    assert AzureSettings().ca_bundle == "/requests.pem"
    monkeypatch.setenv("AZURE_CA_BUNDLE", "/ignored.pem")
    assert AzureSettings().ca_bundle == "/requests.pem"


def test_client_secret_is_not_in_repr(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AZURE_CLIENT_SECRET", "s3cret")
    assert "s3cret" not in repr(AzureSettings())


@pytest.mark.parametrize(
    ("variable", "value"),
    [("FOUNDRY_METRICS_PORT", "70000"), ("FOUNDRY_LOG_FORMAT", "xml"), ("FOUNDRY_WORKER_LIMIT", "many")],
)
def test_invalid_value_names_the_variable(monkeypatch: pytest.MonkeyPatch, variable: str, value: str) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(StartupError, match=f"invalid setting: {variable}: "):
        load_settings()
