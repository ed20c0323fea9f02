"""ARM JSON shapes of the emulator's records, field for field as Azure returns them
(see shared/azure-rest-examples and the azure-mgmt-cognitiveservices models)."""

from __future__ import annotations

import datetime as dt
import hashlib
from typing import Any

from .catalog import Offering
from .scenario import SkuOffer
from .state import AccountRecord, DeploymentRecord, EmulatorState, Operation, QuotaView

PROVIDER = "Microsoft.CognitiveServices"


def iso(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def iso_date(day: dt.date) -> str:
    return f"{day.isoformat()}T00:00:00Z"


def _system_data(
    created_by: str, created_at: dt.datetime, modified_by: str, modified_at: dt.datetime
) -> dict[str, Any]:
    return {
        "createdBy": created_by,
        "createdByType": "Application",
        "createdAt": iso(created_at),
        "lastModifiedBy": modified_by,
        "lastModifiedByType": "Application",
        "lastModifiedAt": iso(modified_at),
    }


def _etag(*parts: object) -> str:
    return '"' + hashlib.sha256("|".join(map(str, parts)).encode()).hexdigest()[:32] + '"'


def endpoints(account: AccountRecord) -> tuple[str, dict[str, str]]:
    """``properties.endpoint`` and ``properties.endpoints`` of an account, keyed by API name as Azure
    keys them. Without a custom subdomain Azure serves the shared regional host."""
    if account.subdomain is None:
        regional = f"https://{account.location}.api.cognitive.microsoft.com/"
        return regional, {"OpenAI Language Model Instance API": regional, "Token Service API": regional}
    sub = account.subdomain
    openai = f"https://{sub}.openai.azure.com/"
    cognitive = f"https://{sub}.cognitiveservices.azure.com/"
    if account.kind == "OpenAI":
        return openai, {
            "OpenAI Language Model Instance API": openai,
            "OpenAI Dall-E API": openai,
            "OpenAI Realtime API": openai,
            "OpenAI Sora API": openai,
            "Azure OpenAI Legacy API - Latest moderated": openai,
            "Token Service API": cognitive,
        }
    services = f"https://{sub}.services.ai.azure.com/"
    return cognitive, {
        "AI Foundry API": services,
        "Azure AI Model Inference API": services,
        "OpenAI Language Model Instance API": openai,
        "OpenAI Dall-E API": openai,
        "OpenAI Realtime API": openai,
        "Azure OpenAI Legacy API - Latest moderated": openai,
        "Content Safety": cognitive,
        "Token Service API": cognitive,
    }


def account(state: EmulatorState, a: AccountRecord) -> dict[str, Any]:
    endpoint, endpoint_map = endpoints(a)
    properties: dict[str, Any] = {
        "publicNetworkAccess": "Enabled",
        **a.properties,
        "endpoint": endpoint,
        "endpoints": endpoint_map,
        "provisioningState": state.provisioning_state(a),
        "internalId": a.internal_id,
        "dateCreated": iso(a.created_at),
        "capabilities": [
            {"name": "VirtualNetworks"},
            {"name": "CustomerManagedKey"},
            {"name": "RaiMonitor"},
        ],
    }
    if a.subdomain is not None:
        properties["customSubDomainName"] = a.subdomain
    body: dict[str, Any] = {
        "id": a.arm_id,
        "name": a.name,
        "type": f"{PROVIDER}/accounts",
        "etag": _etag(a.internal_id, a.modified_at),
        "location": a.location,
        "kind": a.kind,
        "sku": {"name": a.sku},
        "tags": a.tags,
        "systemData": _system_data(a.created_by, a.created_at, a.modified_by, a.modified_at),
        "properties": properties,
    }
    if a.identity is not None:
        body["identity"] = a.identity
    return body


def deployment(state: EmulatorState, a: AccountRecord, d: DeploymentRecord) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": f"{a.arm_id}/deployments/{d.name}",
        "name": d.name,
        "type": f"{PROVIDER}/accounts/deployments",
        "etag": _etag(a.internal_id, d.name, d.modified_at),
        "sku": {"name": d.sku_name, "capacity": d.capacity},
        "systemData": _system_data(d.created_by, d.created_at, d.modified_by, d.modified_at),
        "properties": {
            "model": {"format": d.model_format, "name": d.model_name, "version": d.model_version},
            "provisioningState": state.provisioning_state(d),
            "versionUpgradeOption": d.version_upgrade_option,
            "raiPolicyName": d.rai_policy_name,
            "capabilities": d.capabilities,
            "currentCapacity": d.capacity,
            # Standard-style SKUs grant, per 1000 TPM of capacity, 1 request per 10 s.
            "rateLimits": [
                {"key": "request", "renewalPeriod": 10, "count": d.capacity},
                {"key": "token", "renewalPeriod": 60, "count": d.capacity * 1000},
            ],
        },
    }
    if d.tags:
        body["tags"] = d.tags
    return body


def _sku(s: SkuOffer) -> dict[str, Any]:
    out: dict[str, Any] = {
        "name": s.name,
        "usageName": s.usageName,
        "capacity": {
            "minimum": s.capacity.minimum,
            "maximum": s.capacity.maximum,
            "step": s.capacity.step,
            "default": s.capacity.default,
        },
    }
    if s.deprecationDate is not None:
        out["deprecationDate"] = iso_date(s.deprecationDate)
    return out


def catalog_model(o: Offering) -> dict[str, Any]:
    """An AccountModel: the shape of ``accounts/{a}/models`` entries and of ``model`` in location models."""
    v = o.version
    out: dict[str, Any] = {
        "format": o.model.format,
        "name": o.model.name,
        "version": v.version,
        "isDefaultVersion": o.is_default,
        "skus": [_sku(s) for s in o.skus],
        "maxCapacity": v.maxCapacity,
        "capabilities": o.capabilities,
        "lifecycleStatus": o.lifecycle_status,
        "modelCatalogAssetId": _asset_id(o),
        "systemData": {
            "createdBy": "Microsoft",
            "createdByType": "Application",
            "createdAt": _release(v.version),
            "lastModifiedBy": "Microsoft",
            "lastModifiedByType": "Application",
            "lastModifiedAt": _release(v.version),
        },
    }
    if v.deprecation is not None:
        deprecation: dict[str, Any] = {}
        if v.deprecation.inference is not None:
            deprecation["inference"] = iso_date(v.deprecation.inference)
        if v.deprecation.fineTune is not None:
            deprecation["fineTune"] = iso_date(v.deprecation.fineTune)
        out["deprecation"] = deprecation
    if v.replacement is not None:
        replacement: dict[str, Any] = {
            "targetModelName": v.replacement.name,
            "targetModelVersion": v.replacement.version,
        }
        if v.replacement.autoUpgradeStartDate is not None:
            replacement["autoUpgradeStartDate"] = iso_date(v.replacement.autoUpgradeStartDate)
        if v.replacement.upgradeOnExpiryLeadTimeDays is not None:
            replacement["upgradeOnExpiryLeadTimeDays"] = v.replacement.upgradeOnExpiryLeadTimeDays
        out["replacementConfig"] = replacement
    return out


def location_models(offerings: list[Offering]) -> list[dict[str, Any]]:
    """``locations/{loc}/models``: one entry per account kind that the version is offered for."""
    return [{"kind": kind, "skuName": "S0", "model": catalog_model(o)} for o in offerings for kind in o.kinds]


def model_capacity(subscription: str, o: Offering, sku: SkuOffer, available: int) -> dict[str, Any]:
    model_id = f"{o.model.format}.{o.model.name}.{o.version.version}"
    return {
        "id": f"/subscriptions/{subscription}/providers/{PROVIDER}/locations/{o.region}/models/{model_id}"
        f"/skuCapacities/{sku.name}",
        "type": f"{PROVIDER}/locations/models/skuCapacities",
        "name": sku.name,
        "location": o.region,
        "properties": {
            "model": {"format": o.model.format, "name": o.model.name, "version": o.version.version},
            "skuName": sku.name,
            "availableCapacity": available,
        },
    }


def usage(view: QuotaView) -> dict[str, Any]:
    return {
        "name": {"value": view.usage_name, "localizedValue": view.localized_name},
        "currentValue": view.usage,
        "limit": view.limit,
        "unit": "Count",
    }


def account_count_usage(count: int) -> dict[str, Any]:
    return {
        "name": {"value": "AccountCount", "localizedValue": "Cognitive Services total account limit"},
        "currentValue": count,
        "limit": 200,
        "unit": "Count",
    }


def operation_status(subscription: str, op: Operation) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": f"/subscriptions/{subscription}/providers/{PROVIDER}/locations/{op.region}/operationStatuses/{op.id}",
        "name": op.id,
        "status": op.status,
        "startTime": iso(op.started_at),
    }
    if op.status != "InProgress":
        body["endTime"] = iso(op.ended_at)
    if op.status == "Failed" and op.fail_with is not None:
        body["error"] = op.fail_with.body()["error"]
    return body


def _asset_id(o: Offering) -> str:
    registry = "azure-openai" if o.model.format == "OpenAI" else f"azureml-{o.model.format.lower()}"
    return f"azureml://registries/{registry}/models/{o.model.name}/versions/{o.version.version}"


def _release(version: str) -> str:
    """Catalog entries carry their release time; date-named versions are their own release date."""
    try:
        return iso_date(dt.date.fromisoformat(version))
    except ValueError:
        return "2025-01-01T00:00:00Z"
