"""The scenario: a YAML file that describes the Azure world the emulator serves.

Every model is pydantic with ``extra="forbid"`` so that a typo in a scenario is an error, not a
silently ignored key. ``load_scenario`` maps each validation error back to the YAML line it came
from, because a scenario author reads "default.yaml:57: regions[0].offers[2].model: ..." far
faster than a pydantic traceback.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

Kind = Literal["AIServices", "OpenAI"]
LifecycleStatus = Literal["Preview", "GenerallyAvailable", "Stable", "Deprecating", "Deprecated", "Legacy"]
Loc = tuple[str | int, ...]

_REGION_NAME = re.compile(r"^[a-z0-9]+$")


class _Strict(BaseModel):
    # coerce_numbers_to_str: versions such as ``1`` or ``0613`` are often written unquoted.
    model_config = ConfigDict(extra="forbid", coerce_numbers_to_str=True)


class RoleGrant(_Strict):
    """A role assignment the principal holds from the start (see roles.py for the roles known)."""

    role: str  # "Cognitive Services User", "Cognitive Services OpenAI User", or the role's GUID
    scope: str  # an ARM id: /subscriptions/{sub}[/resourceGroups/{rg}[/providers/.../accounts/{name}]]


class Principal(_Strict):
    """An Entra ID application (service principal) that may obtain tokens."""

    displayName: str = "app"
    clientId: str
    clientSecret: str | None = None
    objectId: str | None = None  # defaults to clientId; real Entra ID has a separate object id
    federatedSubjects: list[str] = Field(default_factory=list)
    federatedAudiences: list[str] = Field(default_factory=lambda: ["api://AzureADTokenExchange"])
    # ARM scope prefixes the principal holds a role on; None means the whole subscription.
    scopes: list[str] | None = None
    # Data-plane role assignments (Microsoft.Authorization/roleAssignments) held from the start.
    roles: list[RoleGrant] = Field(default_factory=list)

    @model_validator(mode="after")
    def _has_a_credential(self) -> Principal:
        if self.clientSecret is None and not self.federatedSubjects:
            raise ValueError("a principal needs a clientSecret, federatedSubjects, or both")
        return self

    @property
    def object_id(self) -> str:
        return self.objectId or self.clientId


class Timing(_Strict):
    lroSeconds: float = Field(default=1.0, ge=0)
    # Sent as Retry-After on long-running operations. azure-core treats a Retry-After of 0 as
    # "absent" and falls back to its 30 s default, so it must be positive.
    pollSeconds: float = Field(default=0.2, gt=0)
    tokenLifetimeSeconds: int = Field(default=3600, ge=60)


class Bucket(_Strict):
    capacity: int = Field(ge=1)
    refillPerSecond: float = Field(gt=0)


class Throttling(_Strict):
    # ARM's published token-bucket limits (2024 regional throttling).
    enabled: bool = True
    reads: Bucket = Bucket(capacity=250, refillPerSecond=25)
    writes: Bucket = Bucket(capacity=200, refillPerSecond=10)
    deletes: Bucket = Bucket(capacity=200, refillPerSecond=10)


class CapacityRange(_Strict):
    minimum: int = Field(default=1, ge=0)
    maximum: int = Field(ge=1)
    step: int = Field(default=1, ge=1)
    default: int

    @model_validator(mode="after")
    def _consistent(self) -> CapacityRange:
        if not self.minimum <= self.default <= self.maximum:
            raise ValueError(f"default {self.default} is outside [{self.minimum}, {self.maximum}]")
        if self.default % self.step:
            raise ValueError(f"default {self.default} is not a multiple of step {self.step}")
        return self


class SkuOffer(_Strict):
    name: str
    usageName: str
    capacity: CapacityRange
    deprecationDate: dt.date | None = None


class Deprecation(_Strict):
    inference: dt.date | None = None
    fineTune: dt.date | None = None


class Replacement(_Strict):
    name: str
    version: str
    autoUpgradeStartDate: dt.date | None = None
    upgradeOnExpiryLeadTimeDays: int | None = None


class ModelVersion(_Strict):
    version: str
    isDefaultVersion: bool = False
    lifecycleStatus: LifecycleStatus | None = None  # None: the model's
    deprecation: Deprecation | None = None
    replacement: Replacement | None = None
    # Overrides of the model-level values, for a version that differs.
    kinds: list[Kind] | None = None
    skus: list[SkuOffer] | None = None
    capabilities: dict[str, str] | None = None
    maxCapacity: int = 10


def _ai_services_only() -> list[Kind]:
    return ["AIServices"]  # partner models are offered to AIServices (Foundry) accounts only


class CatalogModel(_Strict):
    """One model (all its versions) as the catalog describes it, independent of region."""

    format: str
    name: str
    kinds: list[Kind] = Field(default_factory=_ai_services_only)
    lifecycleStatus: LifecycleStatus = "GenerallyAvailable"
    capabilities: dict[str, str] = Field(default_factory=dict)
    skus: list[SkuOffer] = Field(default_factory=list)
    versions: list[ModelVersion] = Field(min_length=1)

    @model_validator(mode="after")
    def _versions(self) -> CatalogModel:
        names = [v.version for v in self.versions]
        if len(set(names)) != len(names):
            raise ValueError(f"duplicate versions in {names}")
        if sum(v.isDefaultVersion for v in self.versions) > 1:
            raise ValueError("at most one version may be isDefaultVersion")
        for v in self.versions:
            if not (v.skus if v.skus is not None else self.skus):
                raise ValueError(f"version {v.version} has no skus (set skus on the model or the version)")
        return self

    def version(self, version: str) -> ModelVersion | None:
        return next((v for v in self.versions if v.version == version), None)


class RegionOffer(_Strict):
    """A model rolled out to a region: all its versions and SKUs unless narrowed here."""

    model: str
    versions: list[str] | None = None
    skus: list[str] | None = None


class Region(_Strict):
    name: str
    offers: list[RegionOffer] = Field(default_factory=list)

    @field_validator("name")
    @classmethod
    def _lower(cls, value: str) -> str:
        if not _REGION_NAME.match(value):
            raise ValueError("region names are Azure's programmatic form: lower case, no spaces (westus)")
        return value


class Quota(_Strict):
    region: str
    usageName: str
    limit: int = Field(ge=0)
    localizedName: str | None = None  # default derived from usageName, see catalog.localized_usage_name


class Account(_Strict):
    resourceGroup: str
    name: str
    location: str
    kind: Kind = "AIServices"
    sku: str = "S0"
    customSubDomainName: str | None = None  # defaults to the account name
    tags: dict[str, str] = Field(default_factory=dict)


class DeploymentModelRef(_Strict):
    format: str = "OpenAI"
    name: str
    version: str


class DeploymentSku(_Strict):
    name: str = "GlobalStandard"
    capacity: int = Field(ge=1)


class Deployment(_Strict):
    """A deployment that already exists when the emulator starts."""

    account: str
    resourceGroup: str | None = None  # needed only when two accounts share a name
    name: str
    model: DeploymentModelRef
    sku: DeploymentSku
    raiPolicyName: str = "Microsoft.DefaultV2"
    versionUpgradeOption: str = "OnceNewDefaultVersionAvailable"


class Scenario(_Strict):
    tenantId: str
    subscriptionId: str
    resourceGroups: list[str] = Field(default_factory=list)  # besides those of the accounts
    principals: list[Principal] = Field(min_length=1)
    timing: Timing = Timing()
    throttling: Throttling = Throttling()
    # Entries per page of ARM list responses; longer lists carry a nextLink, which clients follow.
    pageSize: int = Field(default=100, ge=1)
    models: list[CatalogModel] = Field(default_factory=list)
    regions: list[Region] = Field(min_length=1)
    quotas: list[Quota] = Field(default_factory=list)
    accounts: list[Account] = Field(default_factory=list)
    deployments: list[Deployment] = Field(default_factory=list)

    @property
    def operator_principal(self) -> Principal:
        """The first principal with a client secret: the identity the emulator advertises."""
        return next(p for p in self.principals if p.clientSecret is not None)

    def all_resource_groups(self) -> list[str]:
        seen: dict[str, str] = {}
        for name in [*self.resourceGroups, *(a.resourceGroup for a in self.accounts)]:
            seen.setdefault(name.lower(), name)
        return list(seen.values())


@dataclass(frozen=True)
class ScenarioIssue:
    field: str
    line: int | None
    message: str


class ScenarioError(Exception):
    """A scenario that cannot be used; names the file, and each problem's field and line."""

    def __init__(self, source: str, issues: Sequence[ScenarioIssue]) -> None:
        self.source = source
        self.issues = list(issues)
        super().__init__(
            "\n".join(
                f"{source}:{i.line if i.line is not None else '?'}: {i.field or '<root>'}: {i.message}"
                for i in self.issues
            )
        )


def default_scenario_path() -> Path:
    return Path(str(resources.files("foundry_emulator") / "scenarios" / "default.yaml"))


def load_scenario(path: Path | str) -> Scenario:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as err:
        raise ScenarioError(str(path), [ScenarioIssue(field="", line=None, message=str(err))]) from err
    return parse_scenario(text, source=str(path))


def parse_scenario(text: str, source: str = "<scenario>") -> Scenario:
    """Parse YAML (or JSON, a subset of YAML) into a validated Scenario."""
    try:
        # One parse that keeps the node tree: its marks give error messages their line numbers.
        loader = _Loader(text)
        try:
            root = loader.get_single_node()
            data = loader.construct_document(root) if root is not None else None
        finally:
            loader.dispose()
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        raise ScenarioError(source, [ScenarioIssue(field="", line=line, message=str(err))]) from err
    try:
        scenario = Scenario.model_validate(data)
    except ValidationError as err:
        issues = [
            ScenarioIssue(field=_format_loc(e["loc"]), line=_line_of(root, e["loc"]), message=e["msg"])
            for e in err.errors()
        ]
        raise ScenarioError(source, issues) from err
    problems = list(cross_check(scenario))
    if problems:
        raise ScenarioError(
            source,
            [
                ScenarioIssue(field=_format_loc(loc), line=_line_of(root, loc), message=m)
                for loc, m in problems
            ],
        )
    return scenario


def cross_check(s: Scenario) -> Iterator[tuple[Loc, str]]:
    """References between sections, which field validators cannot see."""
    from .roles import find_role, role_names  # roles.py imports this module's neighbours

    if not any(p.clientSecret for p in s.principals):
        yield (
            ("principals",),
            "at least one principal needs a clientSecret (the emulator's advertised identity)",
        )
    client_ids = [p.clientId.lower() for p in s.principals]
    for i, p in enumerate(s.principals):
        if client_ids.count(p.clientId.lower()) > 1:
            yield ("principals", i, "clientId"), f"duplicate clientId {p.clientId}"
        for gi, grant in enumerate(p.roles):
            if find_role(grant.role) is None:
                yield (
                    ("principals", i, "roles", gi, "role"),
                    f"unknown role {grant.role!r}: use one of {', '.join(role_names())} (or its GUID)",
                )
            if not grant.scope.lower().startswith(f"/subscriptions/{s.subscriptionId.lower()}"):
                yield (
                    ("principals", i, "roles", gi, "scope"),
                    f"scope {grant.scope!r} is not in subscription {s.subscriptionId} "
                    "(use /subscriptions/<id>[/resourceGroups/<rg>[/providers/Microsoft.CognitiveServices/accounts/<name>]])",
                )
    models = {m.name.lower(): m for m in s.models}
    if len(models) != len(s.models):
        yield ("models",), "model names must be unique (case-insensitively)"
    regions = {r.name for r in s.regions}
    if len(regions) != len(s.regions):
        yield ("regions",), "region names must be unique"
    for ri, region in enumerate(s.regions):
        for oi, offer in enumerate(region.offers):
            loc: Loc = ("regions", ri, "offers", oi)
            model = models.get(offer.model.lower())
            if model is None:
                yield (*loc, "model"), f"unknown model {offer.model!r} (define it under models)"
                continue
            for version in offer.versions or []:
                if model.version(version) is None:
                    yield (*loc, "versions"), f"model {model.name} has no version {version!r}"
            known_skus = {sku.name for v in model.versions for sku in (v.skus or model.skus)}
            for sku in offer.skus or []:
                if sku not in known_skus:
                    yield (*loc, "skus"), f"model {model.name} has no SKU {sku!r}"
    for qi, quota in enumerate(s.quotas):
        if quota.region not in regions:
            yield ("quotas", qi, "region"), f"unknown region {quota.region!r}"
    account_keys: list[tuple[str, str]] = []
    for ai, account in enumerate(s.accounts):
        if account.location not in regions:
            yield ("accounts", ai, "location"), f"unknown region {account.location!r} (use e.g. westus)"
        key = (account.resourceGroup.lower(), account.name.lower())
        if key in account_keys:
            yield ("accounts", ai, "name"), f"duplicate account {account.name}"
        account_keys.append(key)
    for di, dep in enumerate(s.deployments):
        matches = [
            a
            for a in s.accounts
            if a.name.lower() == dep.account.lower()
            and (dep.resourceGroup is None or dep.resourceGroup.lower() == a.resourceGroup.lower())
        ]
        if len(matches) != 1:
            problem = "unknown" if not matches else "ambiguous (set resourceGroup)"
            yield ("deployments", di, "account"), f"account {dep.account!r} is {problem}"


class _Loader(yaml.SafeLoader):
    """SafeLoader that keeps dates as strings: model versions such as 2026-02-24 are names, not dates."""


_Loader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def _format_loc(loc: Sequence[str | int]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _line_of(root: yaml.Node | None, loc: Sequence[str | int]) -> int | None:
    """The 1-based line of the deepest YAML node on the path ``loc`` (pydantic's error location)."""
    node = root
    line = node.start_mark.line + 1 if node is not None else None
    for part in loc:
        child: yaml.Node | None = None
        if isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                if isinstance(key, yaml.ScalarNode) and key.value == part:
                    # The key's line: the value of a nested mapping starts on the line below.
                    child, line = value, key.start_mark.line + 1
                    break
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value):
            child = node.value[part]
            line = child.start_mark.line + 1
        if child is None:
            break  # pydantic locations can go below the YAML (a missing field, a union member's name)
        node = child
    return line
