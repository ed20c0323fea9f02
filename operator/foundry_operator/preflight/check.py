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
from foundry_operator.api.models import AccessPolicy, FoundryDeploymentStatus, split_account_ref
from foundry_operator.azure.arm import OWNER_TAG, DeploymentSnapshot
from foundry_operator.catalog import ModelOffer, QuotaUsage, RegionCatalog, normalize_region
from foundry_operator.placement import (
    Candidate,
    DeploymentRequest,
    Placement,
    Verdict,
    place,
    resolve_version,
    retirement_warning,
)
from foundry_operator.planning import keys_held, plan, running_here
from foundry_operator.plans import AccountFacts as PlanAccount
from foundry_operator.plans import DeploymentFacts, LookElsewhere, Plan, owner_tag
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
    CONSUMER_ACCESS_UNKNOWN,
    RETIREMENT_SOON,
    ROLE_MISSING,
    AccountResult,
    CandidateResult,
    DeploymentResult,
    Finding,
    Report,
)
from foundry_operator.refusals import KEY_CONFLICT, Blocker, Elsewhere, keys_taken
from foundry_operator.views import AccountView, KeyClaim, NameClaim


@dataclass
class _Ledger:
    """What the deployments planned so far take, in manifest order (the operator's 'older one wins')."""

    reserved: defaultdict[RegionKey, defaultdict[str, int]] = field(
        default_factory=lambda: defaultdict(lambda: defaultdict(int))
    )
    names: defaultdict[str, list[NameClaim]] = field(default_factory=lambda: defaultdict(list))
    keys: defaultdict[tuple[str, str], list[KeyClaim]] = field(default_factory=lambda: defaultdict(list))


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


def _snapshot(arm_id: str, existing: ExistingDeployment) -> DeploymentSnapshot:
    """What the planner reads about an Azure deployment, from what the source listed."""
    return DeploymentSnapshot(
        name=existing.name,
        resource_id=f"{arm_id}/deployments/{existing.name}",
        model_format=existing.model_format,
        model_name=existing.model_name,
        model_version=existing.model_version,
        sku_name=existing.sku_name,
        capacity=existing.capacity,
        provisioning_state="Succeeded",
        version_upgrade_option=None,
        rai_policy_name=None,
        tags={OWNER_TAG: existing.owner} if existing.owner else {},
    )


def _arm_id(account: AccountManifest, world: World) -> str:
    return _view(account, _facts(world, account)).coordinates(None).arm_id


def _status(
    deployment: DeploymentManifest,
    accounts: Mapping[str, PlanAccount],
    held: Mapping[str, Mapping[str, DeploymentSnapshot]],
) -> FoundryDeploymentStatus:
    """What the operator's status would say: the Azure deployment tagged as this object's, if any
    (so a change of model or account is planned as the operator plans it: make before break)."""
    tag = owner_tag(deployment.ref)
    name = deployment.spec.effective_deployment_name().lower()
    found = [
        (ref, snapshot)
        for ref, account in accounts.items()
        for snapshot in held.get(account.arm_id.lower(), {}).values()
        if snapshot.tags.get(OWNER_TAG) == tag
    ]
    if not found:
        return FoundryDeploymentStatus()
    ref, snapshot = min(found, key=lambda item: item[1].name.lower() != name)  # its own name first
    account = accounts[ref]
    return FoundryDeploymentStatus(
        account_ref=ref,
        account=account.name,
        account_namespace=account.namespace,
        region=account.location,
        deployment_name=snapshot.name,
        resource_id=snapshot.resource_id,
        model_name=snapshot.model_name,
        model_format=snapshot.model_format,
        model_version=snapshot.model_version,
    )


def _plan_facts(
    deployment: DeploymentManifest,
    index: int,
    candidates: _Candidates,
    world: World,
    ledger: _Ledger,
    now: datetime,
) -> DeploymentFacts:
    catalogs, usages, reserved = _inputs(candidates, world, ledger)
    accounts: dict[str, PlanAccount] = {}
    held: dict[str, dict[str, DeploymentSnapshot]] = {}
    for ref, manifest in candidates.accounts.items():
        facts = _facts(world, manifest)
        arm_id = _arm_id(manifest, world)
        accounts[ref] = PlanAccount(
            ref,
            manifest.namespace,
            manifest.name,
            manifest.spec.account_name,
            facts.region,
            facts.kind,
            arm_id,
            None,
        )
        held[arm_id.lower()] = {name: _snapshot(arm_id, d) for name, d in facts.deployments.items()}
    spec = deployment.spec
    return DeploymentFacts(
        owner=deployment.ref,
        namespace=deployment.namespace,
        name=deployment.name,
        created=_order(index),
        keys=tuple(deployment.keys),
        spec=spec,
        status=_status(deployment, accounts, held),
        candidates=candidates.candidates,
        accounts=accounts,
        catalogs=catalogs,
        usages=usages,
        deployments=held,
        now=now,
        name_claims=tuple(ledger.names[spec.effective_deployment_name().lower()]),
        key_claims=tuple(ledger.keys[(deployment.namespace, spec.config_map_name)]),
        reserved=reserved,
    )


def _model(deployment: DeploymentManifest) -> tuple[str, str, str | None]:
    model = deployment.spec.model
    return (model.format.lower(), model.name.lower(), model.version)


def _order(index: int) -> str:
    """Manifest order stands for age: the earlier manifest is the older object."""
    return f"{index:08d}"


def _elsewhere(
    deployment: DeploymentManifest,
    facts: DeploymentFacts,
    candidates: _Candidates,
    manifests: ManifestSet,
    world: World,
    ledger: _Ledger,
    now: datetime,
) -> Elsewhere:
    """What the operator reads when placement fails: where the model is offered, which other
    FoundryAccounts (of the manifests here) could take it."""
    request = DeploymentRequest(
        facts.spec.model.name,
        facts.spec.model.format,
        facts.spec.model.version,
        facts.spec.sku.name.value,
        facts.spec.sku.capacity,
    )
    others = _other_accounts(deployment, request, candidates, manifests, world, ledger, now)
    query = offered_query(deployment, manifests, world)
    return Elsewhere(
        world.offered.get(query.key, ()) if query else (),
        tuple((v.candidate.ref, str(v.candidate.region)) for v in others if v.eligible),
        tuple(str(v.candidate.region) for v in others if not v.eligible and v.candidate.region),
    )


def _finding(blocker: Blocker) -> Finding:
    return Finding(blocker.code, blocker.message, blocker.fixes)


def _check_deployment(
    deployment: DeploymentManifest,
    index: int,
    manifests: ManifestSet,
    world: World,
    ledger: _Ledger,
    now: datetime,
    window: timedelta,
) -> DeploymentResult:
    spec = deployment.spec
    candidates = _spec_candidates(deployment, manifests, world)
    facts = _plan_facts(deployment, index, candidates, world, ledger, now)
    decided = plan(facts)
    if any(isinstance(step, LookElsewhere) for step in decided.steps):
        facts = replace(
            facts, elsewhere=_elsewhere(deployment, facts, candidates, manifests, world, ledger, now)
        )
        decided = plan(facts)
    placement = decided.placement
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
        candidates=_candidate_results(placement, candidates),
        offered_regions=facts.elsewhere.offered_regions if facts.elsewhere else (),
    )
    errors = [_finding(decided.blocker)] if decided.blocker else []
    # Keys are claimed by the spec whether or not the model can be placed: reported either way.
    held = keys_held(facts)
    if held and (decided.blocker is None or decided.blocker.code != KEY_CONFLICT):
        errors.append(_finding(keys_taken(held, deployment.namespace, spec.config_map_name)))
    ledger.keys[(deployment.namespace, spec.config_map_name)].append(
        KeyClaim(deployment.ref, facts.created, tuple(deployment.keys), _model(deployment))
    )
    chosen = placement.chosen if placement else None
    if chosen is None or placement is None:
        return _unplaced(replace(base, errors=tuple(errors)), placement, facts)
    return _placed(deployment, facts, decided, chosen, base, errors, candidates, world, ledger, now, window)


def _candidate_results(placement: Placement | None, candidates: _Candidates) -> tuple[CandidateResult, ...]:
    if placement is None:
        return tuple(CandidateResult(c.ref, c.region, False, c.problem or "") for c in candidates.candidates)
    return tuple(
        CandidateResult(v.candidate.ref, v.candidate.region, v.eligible, v.reason, v.suggestion)
        for v in placement.verdicts
    )


def _unplaced(
    result: DeploymentResult, placement: Placement | None, facts: DeploymentFacts
) -> DeploymentResult:
    """Show the numbers of the most telling refusal (the quota that is short, the retired version)."""
    if placement is None:
        return result
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
            capacity=telling.capacity or result.capacity,
            headroom=_headroom(facts.usages, facts.reserved, telling, _deployed(facts))
            if telling.sku
            else None,
            usage_name=telling.sku.usage_name if telling.sku else None,
        )
    return result


def _deployed(facts: DeploymentFacts) -> dict[str, int]:
    """Capacity already deployed under this name with this model, per candidate (it is in the usages)."""
    return {ref: found.capacity or 0 for ref, found in running_here(facts).items()}


def _placed(
    deployment: DeploymentManifest,
    facts: DeploymentFacts,
    decided: Plan,
    chosen: Verdict,
    base: DeploymentResult,
    errors: list[Finding],
    candidates: _Candidates,
    world: World,
    ledger: _Ledger,
    now: datetime,
    window: timedelta,
) -> DeploymentResult:
    assert chosen.offer is not None and chosen.sku is not None and chosen.capacity is not None
    account = candidates.accounts[chosen.candidate.ref]
    region = normalize_region(chosen.candidate.region or "")
    deployed = _deployed(facts)
    headroom = _headroom(facts.usages, facts.reserved, chosen, deployed)
    access_errors, warnings = _access_findings(deployment, account, world)
    if decided.blocker is None:
        # The operator would write it: its Azure name and its quota are taken for the manifests after it.
        arm_id = _arm_id(account, world).lower()
        name = deployment.spec.effective_deployment_name().lower()
        model = _model(deployment)
        ledger.names[name].append(NameClaim(deployment.ref, facts.created, model, held_on=arm_id))
        needed = chosen.capacity - deployed.get(chosen.candidate.ref, 0)
        subscription = candidates.region_subscription.get(region, account.spec.subscription_id)
        if needed > 0 and chosen.sku.usage_name:
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
        _check_deployment(deployment, index, manifests, world, ledger, now, retirement_window)
        for index, deployment in enumerate(manifests.deployments)
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
