"""The emulated world: accounts, deployments, long-running operations, quotas and the catalog.

Every method is synchronous and the server runs on one event loop, so no locking is needed.
Long-running operations are driven by the clock, not by background tasks: an operation ends at
``started + lroSeconds`` and every public method first settles the operations whose time has come.
That keeps the behaviour deterministic (no task can lag behind under load) and makes the
"another write is in flight" window exactly the operation's duration.
"""

from __future__ import annotations

import copy
import datetime as dt
import secrets
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Literal

from . import errors
from .catalog import Catalog, Offering, localized_usage_name
from .errors import ArmError
from .roles import RoleAssignments
from .scenario import Account, CatalogModel, LifecycleStatus, Quota, Replacement, Scenario, SkuOffer

Action = Literal["create", "update", "delete"]
OperationStatus = Literal["InProgress", "Succeeded", "Failed"]

# The share of an operation spent in provisioningState "Accepted" before Creating/Updating/Deleting.
_ACCEPTED_SHARE = 0.2


@dataclass(frozen=True)
class Caller:
    """Who makes a request (from the access token); recorded in systemData."""

    client_id: str
    object_id: str


@dataclass
class DeploymentRecord:
    name: str
    model_format: str
    model_name: str
    model_version: str
    sku_name: str
    capacity: int
    usage_name: str | None  # None when the catalog did not know the SKU (an out-of-band deployment)
    rai_policy_name: str
    version_upgrade_option: str
    capabilities: dict[str, str]
    tags: dict[str, str]
    created_by: str
    created_at: dt.datetime
    modified_by: str
    modified_at: dt.datetime
    settled_state: str = "Succeeded"  # the provisioningState when no operation runs
    operation: Operation | None = None


@dataclass
class AccountRecord:
    subscription_id: str
    resource_group: str
    name: str
    location: str
    kind: str
    sku: str
    subdomain: str | None
    tags: dict[str, str]
    properties: dict[str, Any]  # client-set properties echoed back (publicNetworkAccess, ...)
    identity: dict[str, Any] | None
    internal_id: str
    created_by: str
    created_at: dt.datetime
    modified_by: str
    modified_at: dt.datetime
    keys: tuple[str, str]
    settled_state: str = "Succeeded"
    operation: Operation | None = None  # the write in flight on this account (its own or a deployment's)
    deployments: dict[str, DeploymentRecord] = field(default_factory=dict)

    @property
    def arm_id(self) -> str:
        return (
            f"/subscriptions/{self.subscription_id}/resourceGroups/{self.resource_group}"
            f"/providers/Microsoft.CognitiveServices/accounts/{self.name}"
        )


@dataclass
class Operation:
    id: str
    action: Action
    account_key: tuple[str, str]
    deployment_key: str | None
    region: str
    started: float  # clock seconds
    duration: float
    started_at: dt.datetime
    previous: DeploymentRecord | AccountRecord | None  # restored if an update fails
    fail_with: ArmError | None
    status: OperationStatus = "InProgress"

    @property
    def ended_at(self) -> dt.datetime:
        return self.started_at + dt.timedelta(seconds=self.duration)

    def phase(self, now: float, verb: str) -> str:
        return "Accepted" if now - self.started < self.duration * _ACCEPTED_SHARE else verb


@dataclass(frozen=True)
class QuotaView:
    region: str
    usage_name: str
    localized_name: str
    limit: int
    usage: int

    @property
    def available(self) -> int:
        return max(0, self.limit - self.usage)


class EmulatorState:
    """The in-memory Azure. Route handlers are thin: they parse, call one method here, render."""

    def __init__(
        self,
        scenario: Scenario,
        clock: Callable[[], float] = time.monotonic,
        utcnow: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
    ) -> None:
        self._clock = clock
        self._utcnow = utcnow
        self.load(scenario)

    # -- lifecycle --------------------------------------------------------------------------

    def load(self, scenario: Scenario) -> None:
        """Replace the loaded scenario and rebuild the world from it."""
        self.scenario = scenario
        self.reset()

    def reset(self) -> None:
        """Back to the loaded scenario: its accounts, deployments, catalog and quotas."""
        s = self.scenario
        self.catalog = Catalog(s.models, s.regions)
        self.resource_groups = {name.lower(): name for name in s.all_resource_groups()}
        # (region, usage name in lower case) -> the quota as the scenario spells it.
        self.quotas: dict[tuple[str, str], Quota] = {(q.region, q.usageName.lower()): q for q in s.quotas}
        self.accounts: dict[tuple[str, str], AccountRecord] = {}
        self.operations: dict[str, Operation] = {}
        self._in_flight: list[Operation] = []
        self.role_assignments = RoleAssignments.from_principals(s.principals, self._utcnow())
        seed = Caller(client_id="scenario", object_id="scenario")
        for account in s.accounts:
            # Scenario accounts have a custom subdomain, their name unless the scenario says otherwise.
            self._new_account(account, account.customSubDomainName or account.name, seed)
        for dep in s.deployments:
            acct = next(
                a
                for a in self.accounts.values()
                if a.name.lower() == dep.account.lower()
                and (dep.resourceGroup is None or a.resource_group.lower() == dep.resourceGroup.lower())
            )
            self._put_record(
                acct,
                dep.name,
                dep.model.format,
                dep.model.name,
                dep.model.version,
                dep.sku.name,
                dep.sku.capacity,
                dep.raiPolicyName,
                dep.versionUpgradeOption,
                {},
                seed,
            )

    @property
    def subscription_id(self) -> str:
        return self.scenario.subscriptionId

    @property
    def tenant_id(self) -> str:
        return self.scenario.tenantId

    def today(self) -> dt.date:
        return self._utcnow().date()

    def utcnow(self) -> dt.datetime:
        return self._utcnow()

    # -- accounts ---------------------------------------------------------------------------

    def list_accounts(self, resource_group: str | None = None) -> list[AccountRecord]:
        self.settle()
        if resource_group is not None:
            self._group(resource_group)
        return [
            a
            for a in self.accounts.values()
            if resource_group is None or a.resource_group.lower() == resource_group.lower()
        ]

    def get_account(self, resource_group: str, name: str) -> AccountRecord:
        self.settle()
        return self._account(resource_group, name)

    def put_account(
        self, resource_group: str, name: str, body: dict[str, Any], caller: Caller, fail_with: ArmError | None
    ) -> tuple[AccountRecord, Operation, bool]:
        """Create or update an account (a long-running operation). Returns (account, op, created)."""
        self.settle()
        group = self._group(resource_group)
        location = _normalize_location(_require_str(body, "location"))
        kind = _require_str(body, "kind")
        props = _dict(body, "properties")
        subdomain = props.get("customSubDomainName")
        existing = self.accounts.get((resource_group.lower(), name.lower()))
        if existing is not None:
            self._check_free(existing)
            for label, old, new in (("location", existing.location, location), ("kind", existing.kind, kind)):
                if old.lower() != new.lower():
                    raise errors.account_property_immutable(label)
            if subdomain is not None and (existing.subdomain or "").lower() != str(subdomain).lower():
                raise errors.account_property_immutable("customSubDomainName")
            previous = copy.copy(existing)
            existing.tags = _str_dict(body.get("tags"))
            existing.sku = str(_dict(body, "sku").get("name", existing.sku))
            existing.properties = _client_properties(props)
            existing.modified_by, existing.modified_at = caller.client_id, self._utcnow()
            op = self._start(existing, "update", None, previous, fail_with)
            return existing, op, False
        if location not in self.catalog.regions:
            raise errors.location_not_available(location, self.catalog.region_names())
        if kind not in ("AIServices", "OpenAI"):
            raise errors.invalid_properties(f"The account kind '{kind}' is not supported by the emulator.")
        if subdomain is not None and any(
            (a.subdomain or "").lower() == str(subdomain).lower() for a in self.accounts.values()
        ):
            raise errors.custom_domain_in_use(str(subdomain))
        spec = Account(
            resourceGroup=group,
            name=name,
            location=location,
            kind=kind,
            sku=str(_dict(body, "sku").get("name", "S0")),
            tags=_str_dict(body.get("tags")),
        )
        account = self._new_account(spec, str(subdomain) if subdomain is not None else None, caller)
        account.properties = _client_properties(props)
        if _dict(body, "identity").get("type", "None") != "None":
            account.identity = {
                "type": body["identity"]["type"],
                "principalId": str(uuid.uuid4()),
                "tenantId": self.tenant_id,
            }
        op = self._start(account, "create", None, None, fail_with)
        return account, op, True

    def patch_account(
        self, resource_group: str, name: str, body: dict[str, Any], caller: Caller
    ) -> AccountRecord:
        """Tags and client-settable properties; applied at once (no operation), like Azure's tag updates."""
        self.settle()
        account = self._account(resource_group, name)
        self._check_free(account)
        if "tags" in body:
            account.tags = _str_dict(body["tags"])
        if "properties" in body:
            account.properties.update(_client_properties(_dict(body, "properties")))
        account.modified_by, account.modified_at = caller.client_id, self._utcnow()
        return account

    def delete_account(self, resource_group: str, name: str, fail_with: ArmError | None) -> Operation | None:
        """Delete an account and its deployments. None when there was nothing to delete (ARM's 204)."""
        self.settle()
        self._group(resource_group)
        account = self.accounts.get((resource_group.lower(), name.lower()))
        if account is None:
            return None
        self._check_free(account)
        return self._start(account, "delete", None, None, fail_with)

    def list_keys(self, resource_group: str, name: str) -> tuple[str, str]:
        return self.get_account(resource_group, name).keys

    def account_models(self, resource_group: str, name: str) -> list[Offering]:
        account = self.get_account(resource_group, name)
        return self.catalog.offerings(account.location, account.kind)

    # -- deployments ------------------------------------------------------------------------

    def get_deployment(self, resource_group: str, account: str, name: str) -> DeploymentRecord:
        acct = self.get_account(resource_group, account)
        found = acct.deployments.get(name.lower())
        if found is None:
            raise errors.deployment_not_found(name)
        return found

    def put_deployment(
        self,
        resource_group: str,
        account: str,
        name: str,
        body: dict[str, Any],
        caller: Caller,
        fail_with: ArmError | None,
    ) -> tuple[DeploymentRecord, Operation, bool]:
        """Create or update a deployment (long-running). Returns (deployment, operation, created)."""
        self.settle()
        acct = self._account(resource_group, account)
        self._check_free(acct)
        props = _dict(body, "properties")
        model = props.get("model")
        if not isinstance(model, dict) or not model.get("name"):
            raise errors.invalid_properties("The model of account deployment is required.")
        sku = body.get("sku")
        if not isinstance(sku, dict) or not sku.get("name"):
            raise errors.invalid_properties("The sku of account deployment is required.")
        existing = acct.deployments.get(name.lower())
        fmt, model_name = str(model.get("format") or "OpenAI"), str(model["name"])
        if existing is not None and (
            existing.model_name.lower() != model_name.lower() or existing.model_format.lower() != fmt.lower()
        ):
            raise errors.cannot_change_model()
        requested_version = model.get("version")
        offering, sku_offer, capacity = self._validate(
            acct,
            fmt,
            model_name,
            str(requested_version) if requested_version else None,
            str(sku["name"]),
            sku.get("capacity"),
            current_version=existing.model_version if existing else None,
        )
        self._check_quota(acct, existing, sku_offer, capacity)
        previous = copy.copy(existing) if existing is not None else None
        record = self._put_record(
            acct,
            name,
            offering.model.format,
            offering.model.name,
            offering.version.version,
            sku_offer.name,
            capacity,
            str(
                props.get("raiPolicyName")
                or (existing.rai_policy_name if existing else "Microsoft.DefaultV2")
            ),
            str(props.get("versionUpgradeOption") or _default_upgrade_option(offering)),
            _str_dict(body.get("tags")),
            caller,
        )
        op = self._start(acct, "update" if existing else "create", record.name, previous, fail_with)
        return record, op, existing is None

    def update_deployment(
        self,
        resource_group: str,
        account: str,
        name: str,
        body: dict[str, Any],
        caller: Caller,
        fail_with: ArmError | None,
    ) -> tuple[DeploymentRecord, Operation]:
        """PATCH: sku (name, capacity) and tags of an existing deployment (long-running)."""
        self.settle()
        acct = self._account(resource_group, account)
        existing = acct.deployments.get(name.lower())
        if existing is None:
            raise errors.deployment_not_found(name)
        self._check_free(acct)
        sku = _dict(body, "sku")
        _, sku_offer, capacity = self._validate(
            acct,
            existing.model_format,
            existing.model_name,
            existing.model_version,
            str(sku.get("name") or existing.sku_name),
            sku.get("capacity", existing.capacity),
            current_version=existing.model_version,
        )
        self._check_quota(acct, existing, sku_offer, capacity)
        previous = copy.copy(existing)
        existing.sku_name, existing.capacity, existing.usage_name = (
            sku_offer.name,
            capacity,
            sku_offer.usageName,
        )
        if "tags" in body:
            existing.tags = _str_dict(body["tags"])
        existing.modified_by, existing.modified_at = caller.client_id, self._utcnow()
        op = self._start(acct, "update", existing.name, previous, fail_with)
        return existing, op

    def delete_deployment(
        self, resource_group: str, account: str, name: str, fail_with: ArmError | None
    ) -> Operation | None:
        """Delete a deployment (long-running). None when it did not exist (ARM's 204)."""
        self.settle()
        acct = self._account(resource_group, account)
        existing = acct.deployments.get(name.lower())
        if existing is None:
            return None
        self._check_free(acct)
        return self._start(acct, "delete", existing.name, None, fail_with)

    # -- operations -------------------------------------------------------------------------

    def get_operation(self, operation_id: str) -> Operation:
        self.settle()
        op = self.operations.get(operation_id)
        if op is None:
            raise errors.operation_not_found(operation_id)
        return op

    def operation_target(self, op: Operation) -> tuple[AccountRecord | None, DeploymentRecord | None]:
        """The resource an operation worked on, if it still exists."""
        account = self.accounts.get(op.account_key)
        if account is None or op.deployment_key is None:
            return account, None
        return account, account.deployments.get(op.deployment_key)

    def provisioning_state(self, record: AccountRecord | DeploymentRecord) -> str:
        op = record.operation
        if op is None or op.status != "InProgress":
            return record.settled_state
        if isinstance(record, AccountRecord):
            if op.deployment_key is not None:
                return record.settled_state  # a deployment's write does not change the account's state
            return {"create": "Creating", "update": "Accepted", "delete": "Deleting"}[op.action]
        verb = {"create": "Creating", "update": "Updating", "delete": "Deleting"}[op.action]
        return op.phase(self._clock(), verb)

    def settle(self) -> None:
        """Finish every operation whose time is up (see the module docstring)."""
        now = self._clock()
        due = [op for op in self._in_flight if op.started + op.duration <= now]
        for op in sorted(due, key=lambda o: o.started):
            self._in_flight.remove(op)
            self._finish(op)

    # -- catalog and quota reads ------------------------------------------------------------

    def location_models(self, location: str) -> list[Offering]:
        self.settle()
        return self.catalog.offerings(_normalize_location(location))

    def model_capacities(
        self, fmt: str, name: str, version: str, location: str | None = None
    ) -> list[tuple[Offering, SkuOffer, int]]:
        """(offering, sku, available capacity) per region offering the model version."""
        self.settle()
        region = _normalize_location(location) if location else None
        return [
            (o, sku, self.quota(o.region, sku.usageName).available)
            for o in self.catalog.everywhere(fmt, name, version)
            if region is None or o.region == region
            for sku in o.skus
        ]

    def usages(self, location: str) -> list[QuotaView]:
        self.settle()
        region = _normalize_location(location)
        names = {key: q.usageName for (r, key), q in self.quotas.items() if r == region}
        for d in self._deployments_in(region):
            if d.usage_name:
                names.setdefault(d.usage_name.lower(), d.usage_name)
        return [self.quota(region, names[key]) for key in sorted(names)]

    def account_count(self, location: str) -> int:
        region = _normalize_location(location)
        return sum(1 for a in self.accounts.values() if a.location == region)

    def quota(self, region: str, usage_name: str) -> QuotaView:
        entry = self.quotas.get((region, usage_name.lower()))
        limit = entry.limit if entry else 0  # no quota granted: Azure's default for new models
        localized = (entry.localizedName if entry else None) or localized_usage_name(usage_name)
        usage = sum(
            d.capacity
            for d in self._deployments_in(region)
            if d.usage_name and d.usage_name.lower() == usage_name.lower() and d.settled_state != "Failed"
        )
        return QuotaView(region, usage_name, localized, limit, usage)

    # -- admin: catalog, quota and drift ----------------------------------------------------

    def rollout(
        self,
        region: str,
        model: str,
        versions: list[str] | None,
        skus: list[str] | None,
        definition: CatalogModel | None,
    ) -> None:
        self.catalog.rollout(region, model, versions, skus, definition)

    def retire(
        self,
        model: str,
        versions: list[str] | None,
        inference: dt.date,
        lifecycle: LifecycleStatus | None,
        replacement: Replacement | None,
    ) -> None:
        self.catalog.retire(model, versions, inference, lifecycle, replacement, self.today())

    def withdraw(self, region: str, model: str, versions: list[str] | None) -> None:
        self.catalog.withdraw(region, model, versions)

    def set_quota(self, region: str, usage_name: str, limit: int) -> QuotaView:
        if region not in self.catalog.regions:
            raise ValueError(f"unknown region {region!r}")
        entry = self.quotas.get((region, usage_name.lower()))
        self.quotas[(region, usage_name.lower())] = Quota(
            region=region,
            usageName=entry.usageName if entry else usage_name,
            limit=limit,
            localizedName=entry.localizedName if entry else None,
        )
        return self.quota(region, usage_name)

    def drift_update(
        self,
        resource_group: str,
        account: str,
        name: str,
        capacity: int | None,
        version: str | None,
        sku: str | None,
    ) -> DeploymentRecord:
        """Change a deployment behind the operator's back: no validation, no operation, no quota check."""
        record = self.get_deployment(resource_group, account, name)
        if capacity is not None:
            record.capacity = capacity
        if version is not None:
            record.model_version = version
        if sku is not None:
            record.sku_name = sku
            acct = self._account(resource_group, account)
            record.usage_name = self._usage_name_for(acct, record)
        record.modified_by, record.modified_at = "portal", self._utcnow()
        return record

    def drift_delete(self, resource_group: str, account: str, name: str) -> None:
        """Delete a deployment instantly, as if someone used the portal."""
        acct = self.get_account(resource_group, account)
        if acct.deployments.pop(name.lower(), None) is None:
            raise errors.deployment_not_found(name)

    def drift_create(
        self,
        resource_group: str,
        account: str,
        name: str,
        fmt: str,
        model: str,
        version: str,
        sku: str,
        capacity: int,
    ) -> DeploymentRecord:
        """Create a deployment out of band: instantly Succeeded, no validation against the catalog."""
        acct = self.get_account(resource_group, account)
        portal = Caller(client_id="portal", object_id="portal")
        return self._put_record(
            acct,
            name,
            fmt,
            model,
            version,
            sku,
            capacity,
            "Microsoft.DefaultV2",
            "OnceNewDefaultVersionAvailable",
            {},
            portal,
        )

    # -- internals --------------------------------------------------------------------------

    def _group(self, name: str) -> str:
        found = self.resource_groups.get(name.lower())
        if found is None:
            raise errors.resource_group_not_found(name)
        return found

    def _account(self, resource_group: str, name: str) -> AccountRecord:
        self._group(resource_group)
        found = self.accounts.get((resource_group.lower(), name.lower()))
        if found is None:
            raise errors.account_not_found(name, resource_group)
        return found

    def _check_free(self, account: AccountRecord) -> None:
        if account.operation is not None and account.operation.status == "InProgress":
            raise errors.request_conflict(account.arm_id)

    def _deployments_in(self, region: str) -> Iterator[DeploymentRecord]:
        for account in self.accounts.values():
            if account.location == region:
                yield from account.deployments.values()

    def _new_account(self, spec: Account, subdomain: str | None, caller: Caller) -> AccountRecord:
        now = self._utcnow()
        account = AccountRecord(
            subscription_id=self.subscription_id,
            resource_group=self.resource_groups.get(spec.resourceGroup.lower(), spec.resourceGroup),
            name=spec.name,
            location=spec.location,
            kind=spec.kind,
            sku=spec.sku,
            subdomain=subdomain,
            tags=dict(spec.tags),
            properties={},
            identity=None,
            internal_id=uuid.uuid4().hex,
            created_by=caller.client_id,
            created_at=now,
            modified_by=caller.client_id,
            modified_at=now,
            keys=(secrets.token_hex(16), secrets.token_hex(16)),
        )
        self.accounts[(account.resource_group.lower(), account.name.lower())] = account
        return account

    def _put_record(
        self,
        acct: AccountRecord,
        name: str,
        fmt: str,
        model: str,
        version: str,
        sku: str,
        capacity: int,
        rai_policy: str,
        upgrade_option: str,
        tags: dict[str, str],
        caller: Caller,
    ) -> DeploymentRecord:
        now = self._utcnow()
        existing = acct.deployments.get(name.lower())
        offering = self.catalog.find(acct.location, acct.kind, model, version)
        record = DeploymentRecord(
            name=existing.name if existing else name,
            model_format=fmt,
            model_name=model,
            model_version=version,
            sku_name=sku,
            capacity=capacity,
            usage_name=None,
            rai_policy_name=rai_policy,
            version_upgrade_option=upgrade_option,
            capabilities=offering.capabilities if offering else {},
            tags=tags,
            created_by=existing.created_by if existing else caller.client_id,
            created_at=existing.created_at if existing else now,
            modified_by=caller.client_id,
            modified_at=now,
        )
        record.usage_name = self._usage_name_for(acct, record)
        acct.deployments[name.lower()] = record
        return record

    def _usage_name_for(self, acct: AccountRecord, record: DeploymentRecord) -> str | None:
        """The quota a deployment draws from: its SKU's usageName in any version of the model, so
        an out-of-band deployment of a version the region lacks still counts against quota."""
        model = self.catalog.models.get(record.model_name.lower())
        if model is None:
            return None
        for version in [model.version(record.model_version), *model.versions]:
            if version is None:
                continue
            for sku in version.skus if version.skus is not None else model.skus:
                if sku.name.lower() == record.sku_name.lower():
                    return sku.usageName
        return None

    def _validate(
        self,
        acct: AccountRecord,
        fmt: str,
        model: str,
        version: str | None,
        sku_name: str,
        capacity: object,
        current_version: str | None,
    ) -> tuple[Offering, SkuOffer, int]:
        """The resource provider's synchronous checks of a deployment write, in Azure's order:
        offered in the region for the account's kind, SKU offered, not retired, capacity in range.
        ``current_version`` is the version an existing deployment runs (None for a new one)."""
        region = acct.location
        if version is None:
            version = self.catalog.default_version(region, acct.kind, model)
            if version is None:
                raise errors.model_not_in_region(model, region)
        offering = self.catalog.find(region, acct.kind, model, version)
        if offering is not None and offering.model.format.lower() != fmt.lower():
            offering = None
        today = self.today()
        sku = offering.sku(sku_name) if offering else None
        if (
            offering is None
            or sku is None
            or (sku.deprecationDate is not None and sku.deprecationDate <= today)
        ):
            raise errors.sku_not_supported(sku_name, model, version, region)
        inference = offering.version.deprecation.inference if offering.version.deprecation else None
        if (inference is not None and inference <= today) or offering.lifecycle_status == "Deprecated":
            since = inference or today
            raise errors.model_deprecated(
                offering.model.format, offering.model.name, version, since.strftime("%m/%d/%Y 00:00:00")
            )
        # Deprecating versions serve existing deployments but accept no new ones.
        if current_version != version and offering.lifecycle_status == "Deprecating":
            raise errors.model_deprecating(offering.model.format, offering.model.name, version)
        if capacity is None:
            value = sku.capacity.default
        elif isinstance(capacity, int) and not isinstance(capacity, bool):
            value = capacity
        else:
            raise errors.invalid_properties(
                f"The capacity '{capacity}' of account deployment is not an integer."
            )
        cap = sku.capacity
        if not cap.minimum <= value <= cap.maximum or value % cap.step:
            raise errors.invalid_capacity(value, sku.name, model, version, cap.minimum, cap.maximum, cap.step)
        return offering, sku, value

    def _check_quota(
        self, acct: AccountRecord, existing: DeploymentRecord | None, sku: SkuOffer, capacity: int
    ) -> None:
        view = self.quota(acct.location, sku.usageName)
        same_pool = (
            existing is not None
            and existing.usage_name is not None
            and existing.usage_name.lower() == sku.usageName.lower()
            and existing.settled_state != "Failed"
        )
        required = capacity - existing.capacity if same_pool and existing is not None else capacity
        if required > 0 and required > view.available:
            raise errors.insufficient_quota(
                required, view.localized_name, view.available, view.usage, view.limit
            )

    def _start(
        self,
        acct: AccountRecord,
        action: Action,
        deployment: str | None,
        previous: DeploymentRecord | AccountRecord | None,
        fail_with: ArmError | None,
    ) -> Operation:
        op = Operation(
            id=str(uuid.uuid4()),
            action=action,
            account_key=(acct.resource_group.lower(), acct.name.lower()),
            deployment_key=deployment.lower() if deployment else None,
            region=acct.location,
            started=self._clock(),
            duration=self.scenario.timing.lroSeconds,
            started_at=self._utcnow(),
            previous=previous,
            fail_with=fail_with,
        )
        self.operations[op.id] = op
        acct.operation = op
        if deployment is not None:
            acct.deployments[deployment.lower()].operation = op
        self._in_flight.append(op)
        self.settle()  # a zero-length operation ends at once
        return op

    def _finish(self, op: Operation) -> None:
        op.status = "Succeeded" if op.fail_with is None else "Failed"
        account, deployment = self.operation_target(op)
        if account is None:
            return  # the account is gone (a reset)
        account.operation = None
        target: AccountRecord | DeploymentRecord | None = deployment if op.deployment_key else account
        if target is None:
            return  # the deployment was deleted out of band meanwhile
        target.operation = None
        if op.fail_with is not None:
            if op.action == "update" and op.previous is not None:
                # A failed update leaves the old configuration in place, marked Failed.
                for name in _REVERTED_ON_FAILURE:
                    if hasattr(op.previous, name):
                        setattr(target, name, getattr(op.previous, name))
            target.settled_state = "Failed"
            return
        target.settled_state = "Succeeded"
        if op.action == "delete":
            if isinstance(target, DeploymentRecord):
                del account.deployments[target.name.lower()]
            else:
                del self.accounts[op.account_key]


# What a failed update restores (deployment and account attributes).
_REVERTED_ON_FAILURE = ("capacity", "sku", "sku_name", "usage_name", "model_version", "tags", "properties")


def _normalize_location(location: str) -> str:
    """Azure accepts "West US" and "westus" alike and stores the programmatic name."""
    return location.replace(" ", "").lower()


def _default_upgrade_option(offering: Offering) -> str:
    return "OnceNewDefaultVersionAvailable" if offering.model.format == "OpenAI" else "NoAutoUpgrade"


# Properties the service owns; a client's copy of them (say, from a GET it PUTs back) is ignored.
_READ_ONLY_PROPERTIES = frozenset(
    {
        "provisioningState",
        "endpoint",
        "endpoints",
        "internalId",
        "dateCreated",
        "customSubDomainName",
        "capabilities",
    }
)


def _client_properties(props: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in props.items() if k not in _READ_ONLY_PROPERTIES and v is not None}


def _require_str(body: dict[str, Any], key: str) -> str:
    value = body.get(key)
    if not isinstance(value, str) or not value:
        raise errors.invalid_request_content(f"the property '{key}' is required")
    return value


def _dict(body: dict[str, Any], key: str) -> dict[str, Any]:
    value = body.get(key)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise errors.invalid_request_content(f"the property '{key}' must be an object")
    return value


def _str_dict(value: object) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise errors.invalid_request_content("tags must be an object of strings")
    return {str(k): str(v) for k, v in value.items()}
