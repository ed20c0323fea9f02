"""What the preflight knows about Azure before it decides: plain values, filled by `gather`, read by `check`.

Catalogs and usages are keyed by (subscription, region): quota is per subscription + region +
usage name, and the catalog is read per subscription too (gated models differ between them).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from foundry_operator.azure.arm import RoleGrant
from foundry_operator.catalog import QuotaUsage, RegionCatalog, normalize_region

AzureAccountKey = tuple[str, str, str]  # (subscription, resource group, account name), lower case
RegionKey = tuple[str, str]  # (subscription lower case, canonical region)


def region_key(subscription_id: str, region: str) -> RegionKey:
    return (subscription_id.lower(), normalize_region(region))


@dataclass(frozen=True)
class ExistingDeployment:
    """A deployment already in the Azure account: adopted when it serves the same model, else a conflict."""

    name: str
    model_format: str
    model_name: str
    model_version: str | None
    sku_name: str | None
    capacity: int | None
    owner: str | None = None

    def serves(self, model_format: str, model_name: str) -> bool:
        return (
            self.model_format.lower() == model_format.lower()
            and self.model_name.lower() == model_name.lower()
        )


@dataclass(frozen=True)
class AccountFacts:
    """The Azure account a FoundryAccount names: its region and kind, or why it cannot be used."""

    region: str | None
    kind: str | None
    problem: str | None = None
    deployments: Mapping[str, ExistingDeployment] = field(default_factory=dict)  # by lower-case name
    planned: bool = False  # a Managed account the operator would create: region and kind from its spec
    # Role assignments that apply at the account; None: unknown (a snapshot, or Azure refused the read).
    role_grants: tuple[RoleGrant, ...] | None = None
    role_grants_problem: str | None = None  # why they are unknown


@dataclass(frozen=True)
class OfferedQuery:
    """Where is this model version + SKU offered to the subscription? (the model capacities API)."""

    subscription_id: str
    model_format: str
    model_name: str
    model_version: str | None
    sku_name: str

    @property
    def key(self) -> tuple[str, str, str, str, str]:
        return (
            self.subscription_id.lower(),
            self.model_format.lower(),
            self.model_name.lower(),
            (self.model_version or "").lower(),
            self.sku_name.lower(),
        )


@dataclass
class World:
    accounts: dict[AzureAccountKey, AccountFacts] = field(default_factory=dict)
    catalogs: dict[RegionKey, RegionCatalog] = field(default_factory=dict)
    usages: dict[RegionKey, Mapping[str, QuotaUsage]] = field(default_factory=dict)
    missing_catalogs: dict[RegionKey, str] = field(default_factory=dict)  # why a region's catalog is unknown
    offered: dict[tuple[str, str, str, str, str], tuple[str, ...]] = field(default_factory=dict)
