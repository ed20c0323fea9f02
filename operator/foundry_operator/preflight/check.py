"""The preflight decision, pure: manifests + what Azure offers -> one result per FoundryDeployment.

Placement is the operator's own `placement.place`, fed the way the operator feeds it, so `check`
and the running operator cannot disagree. On top of it, what only a view of all manifests at
once can see: quota shared by several deployments (same subscription + region + usage name,
reserved in manifest order), two objects claiming one Azure deployment, and one key published
twice into the same ConfigMap.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

from foundry_operator.access import DATA_PLANE_ROLES, GRANTED_ROLE, az_command, missing_consumers
from foundry_operator.api.models import AccessPolicy, split_account_ref
from foundry_operator.catalog import ModelOffer, QuotaUsage, RegionCatalog, normalize_region
from foundry_operator.placement import (
    Candidate,
    DeploymentRequest,
    Placement,
    Refusal,
    Verdict,
    place,
    resolve_version,
    retirement_warning,
)
from foundry_operator.preflight.facts import (
    AccountFacts,
    ExistingDeployment,
    OfferedQuery,
    RegionKey,
    World,
    region_key,
)
from foundry_operator.preflight.manifests import AccountManifest, DeploymentManifest, ManifestSet
from foundry_operator.preflight.report import (
    CONFLICT,
    CONSUMER_ACCESS_UNKNOWN,
    KEY_CONFLICT,
    RETIREMENT_SOON,
    ROLE_MISSING,
    AccountResult,
    CandidateResult,
    DeploymentResult,
    Finding,
    Report,
)
from foundry_operator.views import AccountView


@dataclass
class _Ledger:
    """What the deployments checked so far take, in manifest order (the operator's 'older one wins')."""

    reserved: defaultdict[RegionKey, defaultdict[str, int]] = field(
        default_factory=lambda: defaultdict(lambda: defaultdict(int))
    )
    claims: dict[tuple[str, str], DeploymentManifest] = field(default_factory=dict)
    keys: dict[tuple[str, str, str], DeploymentManifest] = field(default_factory=dict)


@dataclass(frozen=True)
class _Candidates:
    """A deployment's candidates as placement sees them, plus what check needs to interpret the verdicts."""

    candidates: tuple[Candidate, ...]
    accounts: Mapping[str, AccountManifest]  # ref -> manifest, for usable candidates
    region_subscription: Mapping[str, str]  # region -> subscription whose catalog and quota placement uses


def _view(account: AccountManifest, facts: AccountFacts) -> AccountView:
    """The operator's view of an account, so namespace rules and Azure coordinates are the operator's."""
    return AccountView(
        account.namespace, account.name, account.spec, True, "", facts.region, facts.kind, None
    )


def _facts(world: World, account: AccountManifest) -> AccountFacts:
    return world.accounts.get(account.azure_key) or AccountFacts(None, None, problem="not read from Azure")


def _candidate(
    ref: str, field_name: str, account: AccountManifest | None, namespace: str, world: World
) -> Candidate:
    if account is None:
        ref_namespace, ref_name = split_account_ref(ref, namespace)
        missing = (
            f"FoundryAccount {ref_namespace}/{ref_name} ({field_name}) is not among the manifests checked; "
            "add its file with -f"
        )
        return Candidate(ref, ref_name, None, None, missing)
    facts = _facts(world, account)
    problem = facts.problem
    if not _view(account, facts).allows(namespace):
        problem = (
            f"FoundryAccount {account.ref} ({field_name}) does not allow namespace {namespace}: "
            "add it to that account's spec.allowedNamespaces"
        )
    elif problem is None and facts.region:
        problem = world.missing_catalogs.get(region_key(account.spec.subscription_id, facts.region))
    return Candidate(ref, account.spec.account_name, facts.region, facts.kind, problem)


def _candidates(
    refs: Sequence[tuple[str, str, AccountManifest | None]], namespace: str, world: World
) -> _Candidates:
    candidates: list[Candidate] = []
    usable: dict[str, AccountManifest] = {}
    region_subscription: dict[str, str] = {}
    for ref, field_name, account in refs:
        candidate = _candidate(ref, field_name, account, namespace, world)
        candidates.append(candidate)
        if candidate.problem is None and account is not None and candidate.region:
            usable[ref] = account
            # Placement reads one catalog and one quota per region, as the operator does.
            region_subscription.setdefault(normalize_region(candidate.region), account.spec.subscription_id)
    return _Candidates(tuple(candidates), usable, region_subscription)


def _spec_candidates(deployment: DeploymentManifest, manifests: ManifestSet, world: World) -> _Candidates:
    refs = []
    for index, ref in enumerate(deployment.spec.accounts):
        namespace, name = split_account_ref(ref, deployment.namespace)
        refs.append((ref, f"spec.accounts[{index}]", manifests.account(namespace, name)))
    return _candidates(refs, deployment.namespace, world)


def _request(deployment: DeploymentManifest) -> DeploymentRequest:
    spec = deployment.spec
    return DeploymentRequest(
        spec.model.name, spec.model.format, spec.model.version, spec.sku.name.value, spec.sku.capacity
    )


def _inputs(
    chosen: _Candidates, world: World, ledger: _Ledger
) -> tuple[dict[str, RegionCatalog], dict[str, Mapping[str, QuotaUsage]], dict[str, Mapping[str, int]]]:
    catalogs: dict[str, RegionCatalog] = {}
    usages: dict[str, Mapping[str, QuotaUsage]] = {}
    reserved: dict[str, Mapping[str, int]] = {}
    for region, subscription in chosen.region_subscription.items():
        key = region_key(subscription, region)
        if key in world.catalogs:
            catalogs[region] = world.catalogs[key]
        if key in world.usages:
            usages[region] = world.usages[key]
        reserved[region] = dict(ledger.reserved[key])
    return catalogs, usages, reserved


def _existing(world: World, account: AccountManifest, deployment_name: str) -> ExistingDeployment | None:
    return _facts(world, account).deployments.get(deployment_name.lower())


def _owner_tag(deployment: DeploymentManifest) -> str:
    return deployment.ref.replace("/", ".")  # as the operator tags what it creates


def _adopted(
    deployment: DeploymentManifest, chosen: _Candidates, world: World
) -> tuple[str | None, dict[str, int]]:
    """Deployments already in Azure with this name and model: their capacity is in the usages already,
    and the one tagged as this object's is where the operator keeps it (placement is sticky)."""
    spec = deployment.spec
    current: str | None = None
    deployed: dict[str, int] = {}
    for ref, account in chosen.accounts.items():
        existing = _existing(world, account, spec.effective_deployment_name())
        if existing is None or not existing.serves(spec.model.format, spec.model.name):
            continue
        deployed[ref] = existing.capacity or 0
        if current is None and existing.owner == _owner_tag(deployment):
            current = ref
    return current, deployed


def offered_query(
    deployment: DeploymentManifest, manifests: ManifestSet, world: World
) -> OfferedQuery | None:
    """The model capacities question for a deployment; with no version asked, the catalogs' default."""
    spec = deployment.spec
    subscription = next(
        (
            account.spec.subscription_id
            for ref in spec.accounts
            if (account := manifests.account(*split_account_ref(ref, deployment.namespace))) is not None
        ),
        None,
    )
    if subscription is None:
        return None
    version = spec.model.version
    if version is None:
        offers: list[ModelOffer] = [
            offer
            for catalog in world.catalogs.values()
            for offer in catalog.offers_for(spec.model.name, spec.model.format)
        ]
        resolved = resolve_version(offers, None)
        version = resolved.version if resolved else None
    return OfferedQuery(subscription, spec.model.format, spec.model.name, version, spec.sku.name.value)


def _headroom(
    usages: Mapping[str, Mapping[str, QuotaUsage]],
    reserved: Mapping[str, Mapping[str, int]],
    verdict: Verdict,
    deployed: Mapping[str, int],
) -> int | None:
    region = normalize_region(verdict.candidate.region or "")
    usage_name = verdict.sku.usage_name if verdict.sku else None
    usage = usages.get(region, {}).get(usage_name) if usage_name else None
    if usage is None or usage_name is None:
        return None
    taken = reserved.get(region, {}).get(usage_name, 0)
    return max(int(usage.headroom) - taken, 0) + deployed.get(verdict.candidate.ref, 0)


def _display_ref(account: AccountManifest, namespace: str) -> str:
    return account.name if account.namespace == namespace else account.ref


def _other_accounts(
    deployment: DeploymentManifest,
    request: DeploymentRequest,
    spec_candidates: _Candidates,
    manifests: ManifestSet,
    world: World,
    ledger: _Ledger,
    now: datetime,
) -> list[Verdict]:
    """Verdicts on the other FoundryAccounts of the manifests that this namespace may use."""
    taken = {account.azure_key for account in spec_candidates.accounts.values()}
    taken |= {
        account.azure_key
        for ref in deployment.spec.accounts
        if (account := manifests.account(*split_account_ref(ref, deployment.namespace))) is not None
    }
    refs = [
        (_display_ref(account, deployment.namespace), "", account)
        for account in manifests.accounts
        if account.azure_key not in taken
    ]
    if not refs:
        return []
    others = _candidates(refs, deployment.namespace, world)
    catalogs, usages, reserved = _inputs(others, world, ledger)
    placement = place(request, others.candidates, catalogs, usages, now, reserved=reserved)
    return [verdict for verdict in placement.verdicts if verdict.candidate.problem is None]


# Refusals that another region can cure; a wrong version or a retired model is wrong everywhere.
_WHERE_HELPS = {
    Refusal.ACCOUNT_UNAVAILABLE,
    Refusal.MODEL_NOT_OFFERED,
    Refusal.SKU_NOT_OFFERED,
    Refusal.INSUFFICIENT_QUOTA,
}


def _not_placed(
    deployment: DeploymentManifest,
    request: DeploymentRequest,
    placement: Placement,
    spec_candidates: _Candidates,
    manifests: ManifestSet,
    world: World,
    ledger: _Ledger,
    now: datetime,
) -> Finding:
    verdicts = placement.verdicts
    refusal = placement.refusal or Refusal.ACCOUNT_UNAVAILABLE
    if len(verdicts) == 1:
        reason = verdicts[0].reason
    else:
        reason = "; ".join(f"{v.candidate.ref}: {v.reason}" for v in verdicts)
    where_helps = refusal in _WHERE_HELPS
    if placement.offered_regions and where_helps:
        reason += f"; {request.model_name} is offered in {', '.join(placement.offered_regions)}"
    fixes: list[str] = []
    for verdict in verdicts:
        if verdict.suggestion and verdict.suggestion not in fixes:
            fixes.append(verdict.suggestion)
    others = _other_accounts(deployment, request, spec_candidates, manifests, world, ledger, now)
    would_work = [verdict for verdict in others if verdict.eligible]
    for verdict in would_work:
        fixes.append(f"add {verdict.candidate.ref} ({verdict.candidate.region}) to spec.accounts")
    # A region where some account of the manifests was already tried is no news.
    tried = {normalize_region(v.candidate.region) for v in (*verdicts, *others) if v.candidate.region}
    elsewhere = [region for region in placement.offered_regions if normalize_region(region) not in tried]
    if elsewhere and where_helps:
        prefix = "or add" if fixes else "add"
        fixes.append(f"{prefix} a FoundryAccount in {', '.join(elsewhere)} to spec.accounts")
    return Finding(refusal.value, reason, tuple(fixes))


def _same_model(one: DeploymentManifest, other: DeploymentManifest) -> bool:
    a, b = one.spec.model, other.spec.model
    return (a.format.lower(), a.name.lower(), a.version) == (b.format.lower(), b.name.lower(), b.version)


def _share_fix(deployment: DeploymentManifest, holder: DeploymentManifest) -> str:
    return (
        f"or, if both are meant to be one deployment serving several roles, delete {deployment.ref} and add "
        f"its keys ({', '.join(deployment.keys)}) to the spec.keys of {holder.ref}"
    )


def _key_findings(deployment: DeploymentManifest, ledger: _Ledger) -> list[Finding]:
    findings = []
    spec = deployment.spec
    for key in deployment.keys:
        slot = (deployment.namespace, spec.config_map_name, key)
        holder = ledger.keys.get(slot)
        if holder is None:
            ledger.keys[slot] = deployment
            continue
        fixes = [f"choose another key than {key} in spec.keys"]
        if _same_model(deployment, holder):
            fixes.append(_share_fix(deployment, holder))
        findings.append(
            Finding(
                KEY_CONFLICT,
                f"key {key} in ConfigMap {deployment.namespace}/{spec.config_map_name} is already published by "
                f"FoundryDeployment {holder.ref} ({holder.origin})",
                tuple(fixes),
            )
        )
    return findings


def _claim_findings(
    deployment: DeploymentManifest, account: AccountManifest, world: World, ledger: _Ledger
) -> list[Finding]:
    spec = deployment.spec
    name = spec.effective_deployment_name()
    rename = "set spec.deploymentName to another name"
    existing = _existing(world, account, name)
    if existing is not None and not existing.serves(spec.model.format, spec.model.name):
        return [
            Finding(
                CONFLICT,
                f"Azure deployment {name} already exists on account {account.spec.account_name} with model "
                f"{existing.model_format} {existing.model_name}; the operator will not take it over",
                (rename,),
            )
        ]
    coords = _view(account, _facts(world, account)).coordinates(None)
    claim = (coords.arm_id.lower(), name.lower())
    rival = ledger.claims.get(claim)
    if rival is not None:
        fixes = [rename]
        if _same_model(deployment, rival):
            fixes.append(_share_fix(deployment, rival))
        return [
            Finding(
                CONFLICT,
                f"Azure deployment {name} on account {account.spec.account_name} is also claimed by "
                f"FoundryDeployment {rival.ref} ({rival.origin}); the operator leaves it to the first",
                tuple(fixes),
            )
        ]
    ledger.claims[claim] = deployment
    return []


# A catalog snapshot does not hold role assignments (they are not the catalog's, and change daily).
SNAPSHOT_HAS_NO_ROLES = (
    "consumer access not checked: this source holds no role assignments (a catalog snapshot never does); "
    "run check with AZURE_* credentials to check spec.consumers, or read the ConsumerAccess condition"
)


def _access_findings(
    deployment: DeploymentManifest, account: AccountManifest, world: World
) -> tuple[list[Finding], list[Finding]]:
    """(errors, warnings) for spec.consumers on the account the model would be placed on."""
    spec = deployment.spec
    if not spec.consumers:
        return [], []
    facts = _facts(world, account)
    name = account.spec.account_name
    if facts.planned:
        unknown = f"consumer access not checked: account {name} does not exist yet (the operator creates it)"
        return [], [Finding(CONSUMER_ACCESS_UNKNOWN, unknown, ("check again once the account exists",))]
    if facts.role_grants is None:
        reason = facts.role_grants_problem or SNAPSHOT_HAS_NO_ROLES
        return [], [Finding(CONSUMER_ACCESS_UNKNOWN, reason)]
    scope = _view(account, facts).coordinates(None).arm_id
    missing = missing_consumers(spec.consumers, facts.role_grants, scope)
    if not missing:
        return [], []
    roles = " or ".join(DATA_PLANE_ROLES.values())
    if spec.access_policy == AccessPolicy.GRANT:
        text = (
            f"{', '.join(c.label() for c in missing)} lack(s) {roles} on account {name}: the operator will "
            f"assign {DATA_PLANE_ROLES[GRANTED_ROLE]} (spec.accessPolicy Grant)"
        )
        fix = "the operator's identity needs Microsoft.Authorization/roleAssignments/write there (docs/install.md)"
        return [], [Finding(ROLE_MISSING, text, (fix,))]
    errors = [
        Finding(
            ROLE_MISSING,
            f"consumer {c.label()} lacks a data-plane role ({roles}) on account {name}: its calls to "
            f"{spec.effective_deployment_name()} would fail with 403 PermissionDenied",
            (az_command(c, scope), "or set spec.accessPolicy: Grant"),
        )
        for c in missing
    ]
    return errors, []


def _candidate_results(placement: Placement) -> tuple[CandidateResult, ...]:
    return tuple(
        CandidateResult(v.candidate.ref, v.candidate.region, v.eligible, v.reason, v.suggestion)
        for v in placement.verdicts
    )


@dataclass(frozen=True)
class _Attempt:
    """One deployment handed to placement, with the inputs its numbers are read from."""

    deployment: DeploymentManifest
    request: DeploymentRequest
    candidates: _Candidates
    usages: Mapping[str, Mapping[str, QuotaUsage]]
    reserved: Mapping[str, Mapping[str, int]]
    deployed: Mapping[str, int]
    placement: Placement


def _attempt(
    deployment: DeploymentManifest, manifests: ManifestSet, world: World, ledger: _Ledger, now: datetime
) -> _Attempt:
    request = _request(deployment)
    candidates = _spec_candidates(deployment, manifests, world)
    catalogs, usages, reserved = _inputs(candidates, world, ledger)
    current, deployed = _adopted(deployment, candidates, world)
    running = {
        ref: existing.model_version
        for ref, account in candidates.accounts.items()
        if (existing := _existing(world, account, deployment.spec.effective_deployment_name())) is not None
        and existing.serves(deployment.spec.model.format, deployment.spec.model.name)
        and existing.model_version
    }
    query = offered_query(deployment, manifests, world)
    placement = place(
        request,
        candidates.candidates,
        catalogs,
        usages,
        now,
        current_account=current,
        deployed_capacity=deployed,
        reserved=reserved,
        offered_regions=world.offered.get(query.key, ()) if query else (),
        running_versions=running,
    )
    return _Attempt(deployment, request, candidates, usages, reserved, deployed, placement)


def _unplaced(
    attempt: _Attempt,
    base: DeploymentResult,
    manifests: ManifestSet,
    world: World,
    ledger: _Ledger,
    now: datetime,
) -> DeploymentResult:
    placement = attempt.placement
    finding = _not_placed(
        attempt.deployment, attempt.request, placement, attempt.candidates, manifests, world, ledger, now
    )
    result = replace(base, errors=(finding,))
    # Show the numbers of the most telling refusal (the quota that is short, the retired version).
    telling = next((v for v in placement.verdicts if v.refusal == placement.refusal), None)
    if telling is None:
        return result
    if telling.candidate.region:
        result = replace(
            result,
            account=telling.candidate.ref,
            account_name=telling.candidate.account_name,
            region=telling.candidate.region,
        )
    if telling.offer is not None:
        result = replace(
            result,
            version=telling.version,
            capacity=telling.capacity or base.capacity,
            headroom=_headroom(attempt.usages, attempt.reserved, telling, attempt.deployed)
            if telling.sku
            else None,
            usage_name=telling.sku.usage_name if telling.sku else None,
        )
    return result


def _placed(
    attempt: _Attempt,
    chosen: Verdict,
    base: DeploymentResult,
    world: World,
    ledger: _Ledger,
    now: datetime,
    window: timedelta,
) -> DeploymentResult:
    assert chosen.offer is not None and chosen.sku is not None and chosen.capacity is not None
    account = attempt.candidates.accounts[chosen.candidate.ref]
    region = normalize_region(chosen.candidate.region or "")
    headroom = _headroom(attempt.usages, attempt.reserved, chosen, attempt.deployed)
    errors = _claim_findings(attempt.deployment, account, world, ledger)
    access_errors, warnings = _access_findings(attempt.deployment, account, world)
    if not errors and chosen.sku.usage_name:
        # Reserve what this deployment adds to the quota, for the deployments after it.
        needed = chosen.capacity - attempt.deployed.get(chosen.candidate.ref, 0)
        subscription = attempt.candidates.region_subscription.get(region, account.spec.subscription_id)
        if needed > 0:
            ledger.reserved[region_key(subscription, region)][chosen.sku.usage_name] += needed
    warning = retirement_warning(chosen.offer, now, window)
    if warning:
        replacement = chosen.offer.replacement
        fix = f"move to {replacement}" if replacement else "plan a replacement model"
        warnings.append(Finding(RETIREMENT_SOON, warning, (fix,)))
    retirement = chosen.offer.retirement_date
    return replace(
        base,
        placed=True,
        version=chosen.version,
        account=chosen.candidate.ref,
        account_name=chosen.candidate.account_name,
        region=region,
        capacity=chosen.capacity,
        headroom=headroom,
        usage_name=chosen.sku.usage_name,
        retirement_date=retirement.date().isoformat() if retirement else None,
        errors=(*errors, *access_errors),
        warnings=tuple(warnings),
    )


def _check_deployment(
    deployment: DeploymentManifest,
    manifests: ManifestSet,
    world: World,
    ledger: _Ledger,
    now: datetime,
    window: timedelta,
) -> DeploymentResult:
    spec = deployment.spec
    attempt = _attempt(deployment, manifests, world, ledger, now)
    base = DeploymentResult(
        name=deployment.name,
        namespace=deployment.namespace,
        origin=deployment.origin,
        model_name=spec.model.name,
        model_format=spec.model.format,
        requested_version=spec.model.version,
        version=spec.model.version,
        deployment_name=spec.effective_deployment_name(),
        keys=tuple(deployment.keys),
        config_map_name=spec.config_map_name,
        sku_name=spec.sku.name.value,
        capacity=spec.sku.capacity,
        candidates=_candidate_results(attempt.placement),
        offered_regions=attempt.placement.offered_regions,
    )
    chosen = attempt.placement.chosen
    if chosen is None:
        result = _unplaced(attempt, base, manifests, world, ledger, now)
    else:
        result = _placed(attempt, chosen, base, world, ledger, now, window)
    # Keys are claimed whether or not the model can be placed: the first object in order keeps them.
    return replace(result, errors=(*result.errors, *_key_findings(deployment, ledger)))


def _account_results(manifests: ManifestSet, world: World) -> tuple[AccountResult, ...]:
    results = []
    for account in manifests.accounts:
        facts = _facts(world, account)
        spec = account.spec
        problem = facts.problem
        if problem is None and facts.region:
            problem = world.missing_catalogs.get(region_key(spec.subscription_id, facts.region))
        results.append(
            AccountResult(
                account.name,
                account.namespace,
                account.origin,
                spec.account_name,
                spec.resource_group,
                spec.subscription_id,
                facts.region,
                facts.kind,
                problem,
                facts.planned,
            )
        )
    return tuple(results)


def check(
    manifests: ManifestSet,
    world: World,
    now: datetime,
    retirement_window: timedelta,
    source: str = "",
) -> Report:
    """Place every deployment in manifest order, reserving quota and names as it goes."""
    ledger = _Ledger()
    rows = tuple(
        _check_deployment(deployment, manifests, world, ledger, now, retirement_window)
        for deployment in manifests.deployments
    )
    return Report(
        deployments=rows,
        accounts=_account_results(manifests, world),
        source=source,
        checked_at=now,
        retirement_window_days=retirement_window.days,
    )


def offered_queries(manifests: ManifestSet, world: World, report: Report) -> list[OfferedQuery]:
    """What to ask the model capacities API: only for deployments no candidate could take."""
    queries = []
    for deployment, row in zip(manifests.deployments, report.deployments, strict=True):
        if not row.placed:
            query = offered_query(deployment, manifests, world)
            if query is not None:
                queries.append(query)
    return queries
