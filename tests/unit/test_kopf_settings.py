"""What the operator's settings turn into in kopf's settings."""

from __future__ import annotations

from foundry_operator.runner import kopf_settings
from foundry_operator.settings import OperatorSettings


def test_no_worker_limit_by_default() -> None:
    settings = kopf_settings(OperatorSettings())
    assert settings.queueing.worker_limit is None
    assert settings.queueing.idle_timeout == 5.0  # kopf's default, untouched


def test_worker_limit_bounds_kopf_workers_and_frees_slots_promptly() -> None:
    settings = kopf_settings(OperatorSettings(worker_limit=64))
    assert settings.queueing.worker_limit == 64
    assert settings.queueing.idle_timeout < 1.0
