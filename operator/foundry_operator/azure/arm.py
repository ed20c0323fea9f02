"""Microsoft.CognitiveServices through azure-mgmt-cognitiveservices (aio): reads cached, writes gated.

Everything the operator asks of Azure goes through `AzureGateway`: one management client per
(identity, subscription), the SDK's own retry policy and long-running-operation pollers, shared
TTL caches for the catalog, usages and deployment listings, and the per-account write gate.
"""

from __future__ import annotations

import asyncio
import re
import ssl
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import aiohttp
from azure.core.credentials_async import AsyncTokenCredential
from azure.core.exceptions import HttpResponseError, ResourceNotFoundError
from azure.core.pipeline import PipelineRequest, PipelineResponse
from azure.core.pipeline.policies import SansIOHTTPPolicy
from azure.core.pipeline.transport import AioHttpTransport
from azure.mgmt.cognitiveservices import models as sdk
from azure.mgmt.cognitiveservices.aio import CognitiveServicesManagementClient

from foundry_operator.azure.cache import TtlCache
from foundry_operator.azure.credentials import ServicePrincipal, operator_credential, principal_credential
from foundry_operator.azure.pacing import ArmPacing, ArmPacingPolicy
from foundry_operator.azure.writes import AccountWriteGate, error_code
from foundry_operator.catalog import (
    QuotaUsage,
    RegionCatalog,
    catalog_from_sdk,
    normalize_region,
    usages_from_sdk,
)
from foundry_operator.metrics import Metrics
from foundry_operator.settings import AzureSettings, OperatorSettings

if TYPE_CHECKING:
    # Imported when an access policy first needs them: most installations never grant roles, and
    # the management client and its models cost about 1.3 MiB of resident memory at start-up.
    from azure.mgmt.authorization.aio import AuthorizationManagementClient
    from azure.mgmt.authorization.v2022_04_01.models import RoleAssignment

TERMINAL_STATES = {"succeeded", "failed", "canceled"}
OWNER_TAG = "foundry.llmops.io-owner"

_OPERATION_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"/providers/Microsoft\.Authorization/roleAssignments$", re.I), "roleAssignments.list"),
    (re.compile(r"/providers/Microsoft\.Authorization/roleAssignments/[^/]+$", re.I), "roleAssignment"),
    (re.compile(r"/operation(Result|Status)(es)?s?/", re.I), "operation.status"),
    (re.compile(r"/accounts/[^/]+/deployments/[^/]+$", re.I), "deployment"),
    (re.compile(r"/accounts/[^/]+/deployments$", re.I), "deployments.list"),
    (re.compile(r"/accounts/[^/]+/models$", re.I), "account.models"),
    (re.compile(r"/accounts/[^/]+/listKeys$", re.I), "account.listKeys"),
    (re.compile(r"/accounts/[^/]+$", re.I), "account"),
    (re.compile(r"/locations/[^/]+/models$", re.I), "location.models"),
    (re.compile(r"/locations/[^/]+/usages$", re.I), "location.usages"),
    (re.compile(r"/locations/[^/]+/modelCapacities$", re.I), "location.modelCapacities"),
    (re.compile(r"/modelCapacities$", re.I), "modelCapacities"),
)


def classify_operation(path: str) -> str:
    for pattern, name in _OPERATION_PATTERNS:
        if pattern.search(path):
            return name
    return "other"


class ArmMetricsPolicy(SansIOHTTPPolicy[Any, Any]):
    """Counts every ARM request (each retry too) by operation and status."""

    def __init__(self, metrics: Metrics) -> None:
        self._metrics = metrics

    def on_response(self, request: PipelineRequest[Any], response: PipelineResponse[Any, Any]) -> None:
        http_request = request.http_request
        path = http_request.url.split("?", 1)[0]
        operation = classify_operation(path)
        self._metrics.arm_requests.labels(
            operation, http_request.method, str(response.http_response.status_code)
        ).inc()


@dataclass(frozen=True)
class AccountCoordinates:
    """Where an Azure account is and which identity speaks for it."""

    subscription_id: str
    resource_group: str
    account_name: str
    principal: ServicePrincipal | None = field(default=None, compare=False, repr=False)

    @property
    def arm_id(self) -> str:
        return (
            f"/subscriptions/{self.subscription_id}/resourceGroups/{self.resource_group}"
            f"/providers/Microsoft.CognitiveServices/accounts/{self.account_name}"
        )

    @property
    def identity_key(self) -> str:
        return self.principal.fingerprint if self.principal else "operator"


@dataclass(frozen=True)
class AccountSnapshot:
    resource_id: str
    location: str
    kind: str
    endpoint: str | None
    endpoints: Mapping[str, str]
    provisioning_state: str | None


@dataclass(frozen=True)
class DeploymentSnapshot:
    name: str
    resource_id: str
    model_format: str
    model_name: str
    model_version: str | None
    sku_name: str | None
    capacity: int | None
    provisioning_state: str | None
    version_upgrade_option: str | None
    rai_policy_name: str | None
    tags: Mapping[str, str]

    @property
    def in_progress(self) -> bool:
        return (self.provisioning_state or "succeeded").lower() not in TERMINAL_STATES


@dataclass(frozen=True)
class DesiredDeployment:
    name: str
    model_format: str
    model_name: str
    model_version: str
    sku_name: str
    capacity: int
    version_upgrade_option: str
    rai_policy_name: str | None
    owner: str

    def differs_from(self, actual: DeploymentSnapshot) -> list[str]:
        """What would change; an empty list means nothing to write."""
        changes = []
        if (actual.model_version or "") != self.model_version:
            changes.append(f"version {actual.model_version} -> {self.model_version}")
        if (actual.sku_name or "").lower() != self.sku_name.lower():
            changes.append(f"sku {actual.sku_name} -> {self.sku_name}")
        if actual.capacity != self.capacity:
            changes.append(f"capacity {actual.capacity} -> {self.capacity}")
        if (actual.version_upgrade_option or self.version_upgrade_option) != self.version_upgrade_option:
            changes.append(
                f"versionUpgradeOption {actual.version_upgrade_option} -> {self.version_upgrade_option}"
            )
        if self.rai_policy_name and actual.rai_policy_name != self.rai_policy_name:
            changes.append(f"raiPolicyName {actual.rai_policy_name} -> {self.rai_policy_name}")
        return changes

    def to_sdk(self) -> sdk.Deployment:
        return sdk.Deployment(
            sku=sdk.Sku(name=self.sku_name, capacity=self.capacity),
            tags={OWNER_TAG: self.owner.replace("/", ".")},
            properties=sdk.DeploymentProperties(
                model=sdk.DeploymentModel(
                    format=self.model_format, name=self.model_name, version=self.model_version
                ),
                version_upgrade_option=self.version_upgrade_option,
                rai_policy_name=self.rai_policy_name,
            ),
        )


# Microsoft.Authorization's api-version for role assignments (the one azure-mgmt-authorization 4 defaults to).
AUTHORIZATION_API_VERSION = "2022-04-01"


@dataclass(frozen=True)
class RoleGrant:
    """One role assignment as the access check needs it: who, which role (its GUID), where."""

    principal_id: str
    role_id: str  # the role definition's GUID, lower case
    scope: str


@dataclass(frozen=True)
class RoleListing:
    """The role assignments that apply at an account (its scope and above), or why they are unknown."""

    grants: tuple[RoleGrant, ...] = ()
    refused: str | None = None  # Azure refused the read (the identity lacks roleAssignments/read)


def role_definition_id(subscription_id: str, role_id: str) -> str:
    return f"/subscriptions/{subscription_id}/providers/Microsoft.Authorization/roleDefinitions/{role_id}"


def role_assignment_name(scope: str, principal_id: str, role_id: str) -> str:
    """Deterministic: the same grant always has the same name, so a retry cannot create a duplicate."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"{scope.lower()}|{principal_id.lower()}|{role_id.lower()}"))


def _role_grant(assignment: RoleAssignment) -> RoleGrant:
    return RoleGrant(
        principal_id=(assignment.principal_id or "").lower(),
        role_id=(assignment.role_definition_id or "").rstrip("/").rsplit("/", 1)[-1].lower(),
        scope=(assignment.scope or "").rstrip("/"),
    )


def _account_snapshot(account: sdk.Account) -> AccountSnapshot:
    properties = account.properties or sdk.AccountProperties()
    return AccountSnapshot(
        resource_id=account.id or "",
        location=normalize_region(account.location or ""),
        kind=account.kind or "",
        endpoint=properties.endpoint,
        endpoints=dict(properties.endpoints or {}),
        provisioning_state=str(properties.provisioning_state) if properties.provisioning_state else None,
    )


def _deployment_snapshot(deployment: sdk.Deployment) -> DeploymentSnapshot:
    properties = deployment.properties or sdk.DeploymentProperties()
    model = properties.model or sdk.DeploymentModel()
    return DeploymentSnapshot(
        name=deployment.name or "",
        resource_id=deployment.id or "",
        model_format=model.format or "",
        model_name=model.name or "",
        model_version=model.version,
        sku_name=deployment.sku.name if deployment.sku else None,
        capacity=deployment.sku.capacity if deployment.sku else None,
        provisioning_state=str(properties.provisioning_state) if properties.provisioning_state else None,
        version_upgrade_option=str(properties.version_upgrade_option)
        if properties.version_upgrade_option
        else None,
        rai_policy_name=properties.rai_policy_name,
        tags=dict(deployment.tags or {}),
    )


# Connections per management client. Paced at ARM's 25 reads/s, a handful are busy at a time;
# aiohttp's default of 100 let a start-up burst open dozens, each with a 256 KiB TLS buffer.
ARM_CONNECTIONS = 16


def arm_transport(ca_bundle: str | None) -> AioHttpTransport:
    """The HTTP transport of a management client: one TLS context and a bounded connection pool.

    Given `connection_verify=<CA file>`, azure-core builds a new SSLContext for every request, and
    aiohttp keys its connection pool by that context: each request then opens a new connection
    with a full TLS handshake (the benchmark measured a new connection per LRO poll, and 300 MiB
    RSS at 60 deployments). Built once on the session's connector, the context (the CA file's,
    or the system's) lets connections be kept alive and reused.
    """
    context = ssl.create_default_context(cafile=ca_bundle) if ca_bundle else ssl.create_default_context()
    session = aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(ssl=context, limit=ARM_CONNECTIONS),
        # What azure-core's own session would use: proxies from the environment, no cookies,
        # bodies left compressed for the pipeline's content decoding.
        trust_env=True,
        cookie_jar=aiohttp.DummyCookieJar(),
        auto_decompress=False,
    )
    return AioHttpTransport(session=session, session_owner=True)


class AzureGateway:
    def __init__(self, azure: AzureSettings, settings: OperatorSettings, metrics: Metrics) -> None:
        self.azure = azure
        self.settings = settings
        self.metrics = metrics
        self.gate = AccountWriteGate(
            metrics, settings.conflict_retry_seconds, settings.conflict_retry_attempts
        )
        self.catalogs: TtlCache[RegionCatalog] = TtlCache("catalog", settings.catalog_ttl_seconds, metrics)
        self.usages: TtlCache[dict[str, QuotaUsage]] = TtlCache("usages", settings.usage_ttl_seconds, metrics)
        self.offered: TtlCache[tuple[str, ...]] = TtlCache(
            "modelCapacities", settings.catalog_ttl_seconds, metrics
        )
        # A listing serves every FoundryDeployment of the account during one resync round.
        self.listings: TtlCache[dict[str, DeploymentSnapshot]] = TtlCache(
            "deployments", settings.resync_interval_seconds * 0.5, metrics
        )
        # Role assignments at an account: one listing per account per resync round serves the
        # access check of every FoundryDeployment placed there.
        self.role_listings: TtlCache[RoleListing] = TtlCache(
            "roleAssignments", settings.resync_interval_seconds * 0.5, metrics
        )
        self._credentials: dict[str, AsyncTokenCredential] = {}
        self._clients: dict[tuple[str, str], CognitiveServicesManagementClient] = {}
        self._authorization: dict[tuple[str, str], AuthorizationManagementClient] = {}

    # -- clients -------------------------------------------------------------------------------

    def _credential(self, principal: ServicePrincipal | None) -> AsyncTokenCredential:
        key = principal.fingerprint if principal else "operator"
        if key not in self._credentials:
            self._credentials[key] = (
                principal_credential(self.azure, principal) if principal else operator_credential(self.azure)
            )
        return self._credentials[key]

    def _options(self) -> dict[str, Any]:
        return {
            "base_url": self.azure.resource_manager_endpoint,
            "credential_scopes": [self.azure.scope],
            "retry_total": self.settings.arm_retry_total,
            "retry_backoff_max": self.settings.arm_retry_backoff_max_seconds,
            # Pacing first: every attempt (retries included) waits for an ARM token.
            "per_retry_policies": [ArmPacingPolicy(ArmPacing()), ArmMetricsPolicy(self.metrics)],
            "polling_interval": self.settings.lro_poll_seconds,
            "transport": arm_transport(self.azure.ca_bundle),
        }

    def client(self, coords: AccountCoordinates) -> CognitiveServicesManagementClient:
        key = (coords.identity_key, coords.subscription_id)
        if key not in self._clients:
            self._clients[key] = CognitiveServicesManagementClient(
                self._credential(coords.principal), coords.subscription_id, **self._options()
            )
        return self._clients[key]

    def authorization(self, coords: AccountCoordinates) -> AuthorizationManagementClient:
        """Microsoft.Authorization (role assignments), as the identity that speaks for the account."""
        key = (coords.identity_key, coords.subscription_id)
        if key not in self._authorization:
            from azure.mgmt.authorization.aio import AuthorizationManagementClient

            self._authorization[key] = AuthorizationManagementClient(
                self._credential(coords.principal),
                coords.subscription_id,
                api_version=AUTHORIZATION_API_VERSION,
                **self._options(),
            )
        return self._authorization[key]

    async def close(self) -> None:
        for client in self._clients.values():
            await client.close()
        for authorization in self._authorization.values():
            await authorization.close()
        self._authorization.clear()
        for credential in self._credentials.values():
            await credential.close()
        self._clients.clear()
        self._credentials.clear()

    # -- reads -------------------------------------------------------------------------------------

    async def get_account(self, coords: AccountCoordinates) -> AccountSnapshot | None:
        try:
            account = await self.client(coords).accounts.get(coords.resource_group, coords.account_name)
        except ResourceNotFoundError:
            return None
        return _account_snapshot(account)

    async def catalog(self, coords: AccountCoordinates, region: str) -> RegionCatalog:
        region = normalize_region(region)

        async def load() -> RegionCatalog:
            client = self.client(coords)
            items = [item async for item in client.models.list(region)]
            return catalog_from_sdk(region, items)

        return await self.catalogs.get((coords.subscription_id, region), load)

    async def quota(self, coords: AccountCoordinates, region: str) -> dict[str, QuotaUsage]:
        region = normalize_region(region)

        async def load() -> dict[str, QuotaUsage]:
            client = self.client(coords)
            usages = usages_from_sdk([item async for item in client.usages.list(region)])
            for usage in usages.values():
                self.metrics.quota_headroom.labels(coords.subscription_id, region, usage.usage_name).set(
                    usage.headroom
                )
            return usages

        return await self.usages.get((coords.subscription_id, region), load)

    async def offered_regions(
        self, coords: AccountCoordinates, model_format: str, name: str, version: str, sku_name: str
    ) -> tuple[str, ...]:
        """Regions where the model (and SKU) is offered to this subscription: the model capacities API."""

        async def load() -> tuple[str, ...]:
            client = self.client(coords)
            regions: set[str] = set()
            async for item in client.model_capacities.list(
                model_format=model_format, model_name=name, model_version=version
            ):
                properties = item.properties
                if item.location and properties and (properties.sku_name or "").lower() == sku_name.lower():
                    regions.add(normalize_region(item.location))
            return tuple(sorted(regions))

        return await self.offered.get((coords.subscription_id, model_format, name, version, sku_name), load)

    async def list_deployments(
        self, coords: AccountCoordinates, *, fresh: bool = False
    ) -> dict[str, DeploymentSnapshot]:
        async def load() -> dict[str, DeploymentSnapshot]:
            client = self.client(coords)
            result: dict[str, DeploymentSnapshot] = {}
            async for deployment in client.deployments.list(coords.resource_group, coords.account_name):
                snapshot = _deployment_snapshot(deployment)
                result[snapshot.name.lower()] = snapshot
            return result

        if fresh:
            self.listings.invalidate(coords.arm_id.lower())
        return await self.listings.get(coords.arm_id.lower(), load)

    async def get_deployment(self, coords: AccountCoordinates, name: str) -> DeploymentSnapshot | None:
        try:
            deployment = await self.client(coords).deployments.get(
                coords.resource_group, coords.account_name, name
            )
        except ResourceNotFoundError:
            return None
        return _deployment_snapshot(deployment)

    async def wait_until_settled(self, coords: AccountCoordinates, name: str) -> DeploymentSnapshot | None:
        """Wait out an operation started earlier (by us before a restart, or by someone else)."""
        while True:
            snapshot = await self.get_deployment(coords, name)
            if snapshot is None or not snapshot.in_progress:
                return snapshot
            await asyncio.sleep(self.settings.lro_poll_seconds)

    async def role_assignments(self, coords: AccountCoordinates) -> RoleListing:
        """Role assignments that apply at the account (atScope(): its scope and every scope above)."""

        async def load() -> RoleListing:
            client = self.authorization(coords)
            try:
                grants = [
                    _role_grant(item)
                    async for item in client.role_assignments.list_for_scope(
                        coords.arm_id, filter="atScope()"
                    )
                ]
            except HttpResponseError as exc:
                if exc.status_code not in (401, 403):
                    raise
                # Kept for the TTL like a listing: asking again at once would be refused again.
                return RoleListing(refused=str(exc.message or exc).strip().splitlines()[0][:500])
            return RoleListing(tuple(grants))

        return await self.role_listings.get(coords.arm_id.lower(), load)

    # -- writes (one at a time per account) --------------------------------------------------------

    async def assign_role(
        self,
        coords: AccountCoordinates,
        principal_id: str,
        principal_type: str,
        role_id: str,
        description: str,
    ) -> RoleGrant:
        """PUT a role assignment at the account's scope, under a deterministic name."""
        scope = coords.arm_id
        name = role_assignment_name(scope, principal_id, role_id)
        from azure.mgmt.authorization.v2022_04_01.models import RoleAssignmentCreateParameters

        parameters = RoleAssignmentCreateParameters(
            role_definition_id=role_definition_id(coords.subscription_id, role_id),
            principal_id=principal_id,
            principal_type=principal_type,
            description=description,
        )
        grant = RoleGrant(principal_id.lower(), role_id.lower(), scope)

        async def operation() -> RoleGrant:
            try:
                return _role_grant(
                    await self.authorization(coords).role_assignments.create(scope, name, parameters)
                )
            except HttpResponseError as exc:
                if exc.status_code == 409 and error_code(exc) == "RoleAssignmentExists":
                    return grant  # someone assigned the same role there under another name: the goal holds
                raise

        try:
            created = await self.gate.write(coords.arm_id, operation)
        finally:
            # The listing is stale either way; the next access check reads the account again.
            self.role_listings.invalidate(coords.arm_id.lower())
        return created

    def _after_write(
        self,
        coords: AccountCoordinates,
        region: str | None,
        name: str | None = None,
        result: DeploymentSnapshot | None = None,
        deleted: bool = False,
    ) -> None:
        """Keep the caches true after a write. A write that succeeded updates the account's cached
        listing in place (its expiry unchanged): forgetting the listing instead made every drift
        check during a rollout list the whole account again, once per write, each listing
        decoded on the event loop while the long-running operations waited for their polls."""
        key = coords.arm_id.lower()
        listing = self.listings.peek(key)
        if listing is not None and name is not None and (deleted or result is not None):
            if deleted:
                listing.pop(name.lower(), None)
            elif result is not None:
                listing[name.lower()] = result
        else:
            self.listings.invalidate(key)  # the outcome is unknown: read the account again
        if region:
            self.usages.invalidate((coords.subscription_id, normalize_region(region)))

    async def put_deployment(
        self,
        coords: AccountCoordinates,
        desired: DesiredDeployment,
        region: str | None,
    ) -> DeploymentSnapshot:
        """Create or update, unless the deployment is already as desired when our turn comes."""

        async def operation() -> DeploymentSnapshot:
            # Read again now that the account's slot is ours: what the caller read may be stale.
            # Another replica (a rolling update overlaps two), a pipeline or our own process before
            # a restart may have written it meanwhile, or still be writing it. Wait any operation
            # out, and write only if the result is not already what we want (no duplicate writes).
            settled = await self.wait_until_settled(coords, desired.name)
            if (
                settled is not None
                and (settled.provisioning_state or "").lower() == "succeeded"
                and not desired.differs_from(settled)
                and (settled.model_name or "").lower() == desired.model_name.lower()
                and (settled.model_format or "").lower() == desired.model_format.lower()
            ):
                return settled
            poller = await self.client(coords).deployments.begin_create_or_update(
                coords.resource_group, coords.account_name, desired.name, desired.to_sdk()
            )
            return _deployment_snapshot(await poller.result())

        try:
            snapshot = await self.gate.write(coords.arm_id, operation)
        except BaseException:
            self._after_write(coords, region)
            raise
        self._after_write(coords, region, desired.name, snapshot)
        return snapshot

    async def delete_deployment(self, coords: AccountCoordinates, name: str, region: str | None) -> None:
        async def operation() -> None:
            # An operation may still run on it (ours, started before a restart, or someone
            # else's): Azure would refuse the DELETE with RequestConflict, so wait it out first.
            if await self.wait_until_settled(coords, name) is None:
                return  # already gone: the goal is reached
            try:
                poller = await self.client(coords).deployments.begin_delete(
                    coords.resource_group, coords.account_name, name
                )
                await poller.result()
            except ResourceNotFoundError:
                return  # already gone: the goal is reached

        try:
            await self.gate.write(coords.arm_id, operation)
        except BaseException:
            self._after_write(coords, region)
            raise
        self._after_write(coords, region, name, deleted=True)

    async def create_account(
        self, coords: AccountCoordinates, location: str, kind: str, sku_name: str, subdomain: str
    ) -> AccountSnapshot:
        async def operation() -> AccountSnapshot:
            account = sdk.Account(
                location=location,
                kind=kind,
                sku=sdk.Sku(name=sku_name),
                identity=sdk.Identity(type="SystemAssigned"),
                properties=sdk.AccountProperties(
                    custom_sub_domain_name=subdomain, public_network_access="Enabled"
                ),
            )
            poller = await self.client(coords).accounts.begin_create(
                coords.resource_group, coords.account_name, account
            )
            return _account_snapshot(await poller.result())

        return await self.gate.write(coords.arm_id, operation)

    async def delete_account(self, coords: AccountCoordinates) -> None:
        async def operation() -> None:
            try:
                poller = await self.client(coords).accounts.begin_delete(
                    coords.resource_group, coords.account_name
                )
                await poller.result()
            except ResourceNotFoundError:
                return

        await self.gate.write(coords.arm_id, operation)


def is_validation_error(exc: HttpResponseError) -> bool:
    """4xx other than throttling, conflicts and auth: Azure refused the request as such."""
    status = exc.status_code or 0
    return 400 <= status < 500 and status not in (401, 403, 404, 408, 409, 429)
