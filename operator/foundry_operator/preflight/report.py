"""What `check` reports: one result per FoundryDeployment and per FoundryAccount, and the overall verdict."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from foundry_operator.preflight.manifests import Origin
from foundry_operator.refusals import CONFLICT as CONFLICT  # the operator's codes, re-exported
from foundry_operator.refusals import KEY_CONFLICT as KEY_CONFLICT


class Result(StrEnum):
    OK = "OK"
    WARN = "WARN"
    FAIL = "FAIL"


# Finding codes beyond placement's Refusal values (which are used as they are).
RETIREMENT_SOON = "RetirementSoon"
ROLE_MISSING = "RoleMissing"  # a spec.consumers identity lacks a data-plane role where the model goes
CONSUMER_ACCESS_UNKNOWN = "ConsumerAccessUnknown"  # role assignments not known (a snapshot, a refusal)


@dataclass(frozen=True)
class Finding:
    """A reason a deployment fails (or a warning), and the changes that would fix it."""

    code: str
    message: str
    fixes: tuple[str, ...] = ()


@dataclass(frozen=True)
class CandidateResult:
    account: str
    region: str | None
    eligible: bool
    reason: str
    suggestion: str | None = None


@dataclass(frozen=True)
class DeploymentResult:
    name: str
    namespace: str
    origin: Origin
    model_name: str
    model_format: str
    requested_version: str | None
    version: str | None
    deployment_name: str
    keys: tuple[str, ...]
    config_map_name: str
    sku_name: str
    placed: bool = False
    # Placed: where. Not placed: the candidate whose refusal is reported (its quota, its version).
    account: str | None = None  # a spec.accounts entry
    account_name: str | None = None  # the Azure account behind it
    region: str | None = None
    capacity: int | None = None
    headroom: int | None = None  # free in the quota for this deployment (after those before it)
    usage_name: str | None = None
    retirement_date: str | None = None
    errors: tuple[Finding, ...] = ()
    warnings: tuple[Finding, ...] = ()
    candidates: tuple[CandidateResult, ...] = ()
    offered_regions: tuple[str, ...] = ()

    @property
    def result(self) -> Result:
        return Result.FAIL if self.errors else Result.WARN if self.warnings else Result.OK


@dataclass(frozen=True)
class AccountResult:
    name: str
    namespace: str
    origin: Origin
    account_name: str
    resource_group: str
    subscription_id: str
    region: str | None
    kind: str | None
    problem: str | None
    planned: bool


@dataclass(frozen=True)
class Report:
    deployments: tuple[DeploymentResult, ...]
    accounts: tuple[AccountResult, ...]
    source: str
    checked_at: datetime
    retirement_window_days: int

    @property
    def result(self) -> Result:
        results = {row.result for row in self.deployments}
        if Result.FAIL in results:
            return Result.FAIL
        warned = Result.WARN in results or any(a.problem for a in self.accounts)
        return Result.WARN if warned else Result.OK

    @property
    def exit_code(self) -> int:
        """1 when some deployment cannot be placed; warnings (retirement soon) still pass."""
        return 1 if self.result == Result.FAIL else 0
