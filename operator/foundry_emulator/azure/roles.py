"""Azure RBAC for the data plane: ``Microsoft.Authorization/roleAssignments`` and the two built-in
roles that let an identity call a Cognitive Services account's models.

Role assignments live at a scope (subscription, resource group or account) and apply to that scope
and everything below it, as in Azure. The store is seeded from the scenario's ``principals[].roles``
and changed through ARM's own REST API (``PUT/GET/DELETE {scope}/providers/Microsoft.Authorization/
roleAssignments/{guid}``), in ARM's wire shapes, so that ``azure-mgmt-authorization`` works unchanged.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from aiohttp import web

from . import errors
from .errors import ArmError
from .pipeline import arm_pipeline
from .throttling import Throttler

if TYPE_CHECKING:
    from .entra import Entra
    from .scenario import Principal
    from .state import Caller, EmulatorState


@dataclass(frozen=True)
class RoleDefinition:
    guid: str
    name: str
    description: str
    actions: tuple[str, ...]
    data_actions: tuple[str, ...]


# The built-in roles that grant the data plane, with Azure's ids (identical in every tenant).
COGNITIVE_SERVICES_USER = RoleDefinition(
    guid="a97b65f3-24c7-4388-baec-2e87a11ce68d",
    name="Cognitive Services User",
    description="Lets you read and list keys of Cognitive Services.",
    actions=(
        "Microsoft.CognitiveServices/*/read",
        "Microsoft.CognitiveServices/accounts/listkeys/action",
        "Microsoft.Insights/alertRules/read",
        "Microsoft.Insights/diagnosticSettings/read",
        "Microsoft.Insights/logDefinitions/read",
        "Microsoft.Insights/metricdefinitions/read",
        "Microsoft.Insights/metrics/read",
        "Microsoft.ResourceHealth/availabilityStatuses/read",
        "Microsoft.Resources/deployments/operations/read",
        "Microsoft.Resources/subscriptions/operationresults/read",
        "Microsoft.Resources/subscriptions/resourceGroups/read",
        "Microsoft.Support/*",
    ),
    data_actions=("Microsoft.CognitiveServices/*",),
)
COGNITIVE_SERVICES_OPENAI_USER = RoleDefinition(
    guid="5e0bd9bd-7b93-4f28-af87-19fc36ad61bd",
    name="Cognitive Services OpenAI User",
    description="Read access to view files, models, deployments. The ability to create completion and "
    "embedding calls.",
    actions=(
        "Microsoft.CognitiveServices/*/read",
        "Microsoft.Authorization/roleAssignments/read",
        "Microsoft.Authorization/roleDefinitions/read",
    ),
    data_actions=(
        "Microsoft.CognitiveServices/accounts/OpenAI/*/read",
        "Microsoft.CognitiveServices/accounts/OpenAI/engines/completions/action",
        "Microsoft.CognitiveServices/accounts/OpenAI/deployments/completions/action",
        "Microsoft.CognitiveServices/accounts/OpenAI/deployments/chat/completions/action",
        "Microsoft.CognitiveServices/accounts/OpenAI/deployments/embeddings/action",
        "Microsoft.CognitiveServices/accounts/OpenAI/responses/*",
    ),
)
BUILTIN_ROLES: dict[str, RoleDefinition] = {
    r.guid: r for r in (COGNITIVE_SERVICES_USER, COGNITIVE_SERVICES_OPENAI_USER)
}
# Holding one of these at the account's scope or above opens the account's data plane.
DATA_PLANE_ROLES = frozenset(BUILTIN_ROLES)


def find_role(name_or_id: str) -> RoleDefinition | None:
    """A built-in role by display name ("Cognitive Services User"), GUID or full definition id."""
    wanted = name_or_id.rstrip("/").rsplit("/", 1)[-1].lower()
    return next((r for r in BUILTIN_ROLES.values() if wanted in (r.guid, r.name.lower())), None)


def role_names() -> list[str]:
    return [r.name for r in BUILTIN_ROLES.values()]


@dataclass
class RoleAssignment:
    name: str  # a GUID
    scope: str
    role: RoleDefinition
    principal_id: str
    principal_type: str
    description: str | None
    created_by: str
    created_on: dt.datetime
    updated_by: str
    updated_on: dt.datetime


def _covers(assignment_scope: str, scope: str) -> bool:
    """An assignment at ``assignment_scope`` applies at ``scope``: same scope or an ancestor."""
    outer, inner = assignment_scope.rstrip("/").lower(), scope.rstrip("/").lower()
    return inner == outer or inner.startswith(outer + "/")


class RoleAssignments:
    """The tenant's role assignments (only the ones the emulator's scopes can hold)."""

    def __init__(self) -> None:
        self._by_name: dict[str, RoleAssignment] = {}

    @classmethod
    def from_principals(cls, principals: Iterable[Principal], now: dt.datetime) -> RoleAssignments:
        store = cls()
        for principal in principals:
            for grant in principal.roles:
                role = find_role(grant.role)
                assert role is not None  # the scenario's cross-check refuses unknown roles
                # A stable name, so that the same scenario always yields the same assignment ids.
                name = str(uuid.uuid5(uuid.NAMESPACE_URL, f"{principal.object_id}|{role.guid}|{grant.scope}"))
                store._by_name[name] = RoleAssignment(
                    name, grant.scope.rstrip("/"), role, principal.object_id, "ServicePrincipal", None,
                    "scenario", now, "scenario", now,
                )  # fmt: skip
        return store

    def get(self, name: str) -> RoleAssignment | None:
        return self._by_name.get(name.lower())

    def put(self, assignment: RoleAssignment) -> None:
        self._by_name[assignment.name.lower()] = assignment

    def delete(self, name: str) -> RoleAssignment | None:
        return self._by_name.pop(name.lower(), None)

    def all(self) -> list[RoleAssignment]:
        return list(self._by_name.values())

    def applying_at(self, scope: str) -> list[RoleAssignment]:
        return [a for a in self._by_name.values() if _covers(a.scope, scope)]

    def data_plane_allowed(self, principal_id: str, account_scope: str) -> bool:
        return any(
            a.principal_id.lower() == principal_id.lower() and a.role.guid in DATA_PLANE_ROLES
            for a in self.applying_at(account_scope)
        )


# -- ARM's REST surface ---------------------------------------------------------------------------

_AUTHZ = r"/providers/Microsoft\.Authorization"
_SCOPE = (
    r"(?P<scope>/subscriptions/(?P<sub>[^/]+)"
    r"(?:/resourceGroups/(?P<rg>[^/]+)"
    r"(?:/providers/Microsoft\.CognitiveServices/accounts/(?P<account>[^/]+))?)?)"
)
_ASSIGNMENTS = re.compile(_SCOPE + _AUTHZ + r"/roleAssignments(?:/(?P<name>[^/]+))?/?", re.IGNORECASE)
_DEFINITIONS = re.compile(_SCOPE + _AUTHZ + r"/roleDefinitions(?:/(?P<name>[^/]+))?/?", re.IGNORECASE)
_FILTER_PRINCIPAL = re.compile(r"(?:principalId\s+eq|assignedTo\()\s*'(?P<id>[^']+)'\)?", re.IGNORECASE)
_GUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$", re.IGNORECASE)


def matches(path: str) -> bool:
    """Whether ``path`` is one of this module's routes (checked before the CognitiveServices ones)."""
    return bool(_ASSIGNMENTS.fullmatch(path) or _DEFINITIONS.fullmatch(path))


class RoleApi:
    """``Microsoft.Authorization`` roleAssignments and roleDefinitions, behind ARM's pipeline
    (token, throttling, api-version, subscription, the caller's own scopes), as in arm.py."""

    def __init__(self, state: EmulatorState, entra: Entra, throttler: Throttler) -> None:
        self._state = state
        self._entra = entra
        self._throttler = throttler

    async def handle(self, request: web.Request) -> web.Response:
        def challenge(err: ArmError) -> str:
            return f'Bearer error="invalid_token", error_description="{err.message}"'

        async def route(caller: Caller) -> web.Response:
            return await self._route(request, caller)

        return await arm_pipeline(
            request, self._entra, self._throttler, self._state.subscription_id, challenge, route
        )

    async def _route(self, request: web.Request, caller: Caller) -> web.Response:
        path = request.path
        found = _ASSIGNMENTS.fullmatch(path)
        definitions = found is None
        found = found or _DEFINITIONS.fullmatch(path)
        assert found is not None  # server.py routes only matching paths here
        params = {k: v for k, v in found.groupdict().items() if v is not None}
        scope = self._existing_scope(params)
        name = params.get("name")
        resource = "roleDefinitions" if definitions else "roleAssignments"
        verb = {"GET": "read", "PUT": "write", "DELETE": "delete"}.get(request.method)
        if verb is None or (definitions and verb != "read") or (name is None and verb != "read"):
            raise errors.method_not_allowed(request.method)
        self._authorize(caller, f"Microsoft.Authorization/{resource}/{verb}", scope)
        if definitions:
            return self._definitions(scope, name)
        if name is None:
            return self._list(scope, request.query.get("$filter"))
        if request.method == "GET":
            found_assignment = self._state.role_assignments.get(name)
            if found_assignment is None or found_assignment.scope.lower() != scope.lower():
                raise _assignment_not_found(name)
            return web.json_response(self._wire(found_assignment))
        if request.method == "DELETE":
            existing = self._state.role_assignments.get(name)
            if existing is None or existing.scope.lower() != scope.lower():
                return web.Response(status=204)
            self._state.role_assignments.delete(name)
            return web.json_response(self._wire(existing))
        return await self._put(request, caller, scope, name)

    # -- handlers ------------------------------------------------------------------------------

    def _list(self, scope: str, query_filter: str | None) -> web.Response:
        store = self._state.role_assignments
        at_scope = False
        principal: str | None = None
        if query_filter:
            text = query_filter.strip()
            if re.search(r"atScope\(\)", text, re.IGNORECASE):
                at_scope = True
                text = re.sub(r"atScope\(\)\s*(and\s*)?", "", text, flags=re.IGNORECASE).strip()
            if text:
                found = _FILTER_PRINCIPAL.fullmatch(text)
                if found is None:
                    raise ArmError(
                        400,
                        "UnsupportedQuery",
                        f"The filter '{query_filter}' is not supported. Supported filters are atScope(), "
                        "principalId eq '{id}' and assignedTo('{id}').",
                    )
                principal = found.group("id").lower()
        # Without atScope(), ARM also lists the assignments below the scope.
        items = [
            a
            for a in store.all()
            if (_covers(a.scope, scope) or (not at_scope and _covers(scope, a.scope)))
            and (principal is None or a.principal_id.lower() == principal)
        ]
        items.sort(key=lambda a: (a.scope.lower(), a.name))
        return web.json_response({"value": [self._wire(a) for a in items]})

    async def _put(self, request: web.Request, caller: Caller, scope: str, name: str) -> web.Response:
        if not _GUID.match(name):
            raise ArmError(
                400,
                "InvalidRoleAssignmentId",
                f"The role assignment ID '{name}' is not valid. The role assignment ID must be a GUID.",
            )
        props = _properties(await request.read())
        role_id, principal_id = props.get("roleDefinitionId"), props.get("principalId")
        if not isinstance(role_id, str) or not isinstance(principal_id, str):
            raise errors.invalid_request_content(
                "properties.roleDefinitionId and properties.principalId are required strings"
            )
        role = find_role(role_id)
        if role is None or not _GUID.match(role_id.rsplit("/", 1)[-1]):
            raise ArmError(
                400,
                "RoleDefinitionDoesNotExist",
                f"The specified role definition with ID '{role_id.rsplit('/', 1)[-1]}' does not exist.",
            )
        principal = self._principal(principal_id)
        store = self._state.role_assignments
        existing = store.get(name)
        if existing is not None:
            if (
                existing.scope.lower() != scope.lower()
                or existing.principal_id.lower() != principal_id.lower()
                or existing.role.guid != role.guid
            ):
                raise ArmError(
                    400,
                    "RoleAssignmentUpdateNotPermitted",
                    "Tenant ID, application ID, principal ID, and scope are not allowed to be updated.",
                )
            existing.description = _optional_str(props.get("description"), existing.description)
            existing.updated_by, existing.updated_on = caller.object_id, self._state.utcnow()
            return web.json_response(self._wire(existing), status=201)
        duplicate = next(
            (
                a
                for a in store.all()
                if a.scope.lower() == scope.lower()
                and a.principal_id.lower() == principal_id.lower()
                and a.role.guid == role.guid
            ),
            None,
        )
        if duplicate is not None:
            raise ArmError(409, "RoleAssignmentExists", "The role assignment already exists.")
        now = self._state.utcnow()
        assignment = RoleAssignment(
            name=name.lower(),
            scope=scope,
            role=role,
            principal_id=principal.object_id,
            principal_type=str(props.get("principalType") or "ServicePrincipal"),
            description=_optional_str(props.get("description"), None),
            created_by=caller.object_id,
            created_on=now,
            updated_by=caller.object_id,
            updated_on=now,
        )
        store.put(assignment)
        return web.json_response(self._wire(assignment), status=201)

    def _definitions(self, scope: str, name: str | None) -> web.Response:
        if name is None:
            return web.json_response({"value": [self._definition(r) for r in BUILTIN_ROLES.values()]})
        role = BUILTIN_ROLES.get(name.lower())
        if role is None:
            raise ArmError(
                404, "RoleDefinitionDoesNotExist", f"The role definition '{name}' could not be found."
            )
        return web.json_response(self._definition(role))

    # -- helpers ---------------------------------------------------------------------------------

    def _existing_scope(self, params: dict[str, str]) -> str:
        """The scope as Azure spells it; its resource group and account must exist."""
        sub = params["sub"]
        if sub.lower() != self._state.subscription_id.lower():
            raise errors.subscription_not_found(sub)
        scope = f"/subscriptions/{self._state.subscription_id}"
        if "rg" in params:
            self._state.list_accounts(params["rg"])  # raises ResourceGroupNotFound
            group = self._state.resource_groups[params["rg"].lower()]
            scope += f"/resourceGroups/{group}"
            if "account" in params:
                account = self._state.get_account(group, params["account"])
                scope = account.arm_id
        return scope

    def _authorize(self, caller: Caller, action: str, scope: str) -> None:
        principal = next(
            (p for p in self._state.scenario.principals if p.clientId.lower() == caller.client_id.lower()),
            None,
        )
        if principal is None or (
            principal.scopes is not None and not any(_covers(s, scope) for s in principal.scopes)
        ):
            raise errors.authorization_failed(caller.client_id, caller.object_id, action, scope)

    def _principal(self, principal_id: str) -> Principal:
        found = next(
            (p for p in self._state.scenario.principals if p.object_id.lower() == principal_id.lower()), None
        )
        if found is None:
            raise ArmError(
                400,
                "PrincipalNotFound",
                f"Principal {principal_id.replace('-', '')} does not exist in the directory "
                f"{self._state.tenant_id}. Check that you have the correct principal ID. If you are creating "
                "this principal and then immediately assigning a role, this error might be related to a "
                "replication delay. In this case, set the role assignment principalType property to a value, "
                "such as ServicePrincipal, User, or Group. See https://aka.ms/docs-principaltype",
            )
        return found

    def _definition_id(self, role: RoleDefinition) -> str:
        return (
            f"/subscriptions/{self._state.subscription_id}/providers/Microsoft.Authorization/"
            f"roleDefinitions/{role.guid}"
        )

    def _wire(self, a: RoleAssignment) -> dict[str, Any]:
        return {
            "properties": {
                "roleDefinitionId": self._definition_id(a.role),
                "principalId": a.principal_id,
                "principalType": a.principal_type,
                "scope": a.scope,
                "condition": None,
                "conditionVersion": None,
                "createdOn": _iso(a.created_on),
                "updatedOn": _iso(a.updated_on),
                "createdBy": a.created_by,
                "updatedBy": a.updated_by,
                "delegatedManagedIdentityResourceId": None,
                "description": a.description,
            },
            "id": f"{a.scope}/providers/Microsoft.Authorization/roleAssignments/{a.name}",
            "type": "Microsoft.Authorization/roleAssignments",
            "name": a.name,
        }

    def _definition(self, role: RoleDefinition) -> dict[str, Any]:
        return {
            "id": self._definition_id(role),
            "name": role.guid,
            "type": "Microsoft.Authorization/roleDefinitions",
            "properties": {
                "roleName": role.name,
                "type": "BuiltInRole",
                "description": role.description,
                "assignableScopes": ["/"],
                "permissions": [
                    {
                        "actions": list(role.actions),
                        "notActions": [],
                        "dataActions": list(role.data_actions),
                        "notDataActions": [],
                    }
                ],
                "createdOn": "2018-08-01T00:00:00.0000000Z",
                "updatedOn": "2024-01-01T00:00:00.0000000Z",
                "createdBy": None,
                "updatedBy": None,
            },
        }


def _properties(raw: bytes) -> dict[str, Any]:
    try:
        body = json.loads(raw or b"{}")
    except ValueError as err:
        raise errors.invalid_request_content(str(err)) from err
    props = body.get("properties") if isinstance(body, dict) else None
    if not isinstance(props, dict):
        raise errors.invalid_request_content("the property 'properties' is required")
    return props


def _optional_str(value: object, default: str | None) -> str | None:
    return value if isinstance(value, str) else default


def _assignment_not_found(name: str) -> ArmError:
    return ArmError(404, "RoleAssignmentNotFound", f"The role assignment '{name}' is not found.")


def _iso(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
