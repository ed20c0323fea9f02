"""Why a FoundryDeployment cannot go ahead, and the fix: one text for the operator and `check`.

The planner returns a `Blocker`; the operator writes `Blocker.text` into its Ready condition and
`check` prints the same message and fixes. Nothing here reads anything: the callers pass facts.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from foundry_operator.catalog import normalize_region
from foundry_operator.placement import DeploymentRequest, Placement, Refusal

CONFLICT = "Conflict"
KEY_CONFLICT = "KeyConflict"
RENAME = "set spec.deploymentName to another name"


@dataclass(frozen=True)
class Blocker:
    code: str  # the Ready reason (and check's finding code)
    message: str  # what stands in the way
    fixes: tuple[str, ...] = ()
    detail: str | None = None  # a finer reason, for the Conflict condition

    @property
    def text(self) -> str:
        return self.message + (f" (fix: {'; '.join(self.fixes)})" if self.fixes else "")


@dataclass(frozen=True)
class Elsewhere:
    """Where else the model could go, read only when placement failed (it costs extra reads)."""

    offered_regions: tuple[str, ...] = ()  # the model capacities API's answer
    fitting_accounts: tuple[tuple[str, str], ...] = ()  # (ref, region) of other accounts that could take it
    tried_regions: tuple[str, ...] = ()  # regions of other accounts that were looked at and cannot


# Refusals that another region can cure; a wrong version or a retired model is wrong everywhere.
_WHERE_HELPS = {
    Refusal.ACCOUNT_UNAVAILABLE,
    Refusal.MODEL_NOT_OFFERED,
    Refusal.SKU_NOT_OFFERED,
    Refusal.INSUFFICIENT_QUOTA,
}


def not_placed(request: DeploymentRequest, placement: Placement, elsewhere: Elsewhere) -> Blocker:
    """No candidate can take the model: each candidate's reason, each fix once, and where else it fits."""
    verdicts = placement.verdicts
    refusal = placement.refusal or Refusal.ACCOUNT_UNAVAILABLE
    if len(verdicts) == 1:
        message = verdicts[0].reason
    else:
        message = "; ".join(f"{v.candidate.ref}: {v.reason}" for v in verdicts)
    where_helps = refusal in _WHERE_HELPS
    if elsewhere.offered_regions and where_helps:
        message += f"; {request.model_name} is offered in {', '.join(elsewhere.offered_regions)}"
    fixes: list[str] = []
    for verdict in verdicts:
        if verdict.suggestion and verdict.suggestion not in fixes:
            fixes.append(verdict.suggestion)
    if where_helps:
        fixes += [f"add {ref} ({region}) to spec.accounts" for ref, region in elsewhere.fitting_accounts]
        # A region where some account was already tried is no news.
        tried = {normalize_region(v.candidate.region) for v in verdicts if v.candidate.region}
        tried |= {normalize_region(region) for region in elsewhere.tried_regions}
        tried |= {normalize_region(region) for _, region in elsewhere.fitting_accounts}
        regions = [r for r in elsewhere.offered_regions if normalize_region(r) not in tried]
        if regions:
            fixes.append(
                f"{'or add' if fixes else 'add'} a FoundryAccount in {', '.join(regions)} to spec.accounts"
            )
    if refusal == Refusal.MODEL_NOT_OFFERED and not fixes and not elsewhere.offered_regions:
        # Offered nowhere the operator can see, and no near miss: most likely a typo.
        fixes.append(
            f"check spec.model.name ({request.model_name}) and spec.model.format ({request.model_format}) "
            "against the catalog (foundry-operator catalog)"
        )
    return Blocker(refusal.value, message, tuple(fixes))


def share_fix(owner: str, keys: Sequence[str], holder: str) -> str:
    return (
        f"or, if both are meant to be one deployment serving several roles, delete {owner} and add "
        f"its keys ({', '.join(keys)}) to the spec.keys of {holder}"
    )


def name_claimed(
    name: str, account_name: str, rival: str, same_model: bool, owner: str, keys: Sequence[str]
) -> Blocker:
    """An older object holds the Azure deployment name on that account."""
    fixes = [RENAME]
    if same_model:
        fixes.append(share_fix(owner, keys, rival))
    message = (
        f"Azure deployment {name} on account {account_name} is also claimed by FoundryDeployment {rival}; "
        "the operator leaves it to the first"
    )
    return Blocker(CONFLICT, message, tuple(fixes), detail="DeploymentOwned")


def foreign_deployment(name: str, account_name: str, model_format: str, model_name: str) -> Blocker:
    """A deployment of that name with another model exists, and this object did not create it."""
    message = (
        f"Azure deployment {name} already exists on account {account_name} with model {model_format} "
        f"{model_name}; the operator will not take it over"
    )
    return Blocker(CONFLICT, message, (RENAME,), detail="ForeignDeployment")


def model_change_needs_new_name(
    name: str, account_name: str, model_format: str, model_name: str, wanted: str
) -> Blocker:
    """One name holds one deployment and Azure cannot change its model in place: replacing it under
    the same name would leave the name serving nothing for a whole create."""
    message = (
        f"Azure deployment {name} on account {account_name} runs {model_format}/{model_name}; a model change "
        "needs a new deployment name so the old one keeps serving until the new one is ready"
    )
    fix = f"set spec.deploymentName to a new name (or remove it: it defaults to the model name, {wanted})"
    return Blocker(CONFLICT, message, (fix,), detail="ModelChangeNeedsNewName")


def keys_taken(held: Mapping[str, str], namespace: str, config_map: str) -> Blocker:
    """Keys an older object publishes or asks for in the same ConfigMap (key -> its label)."""
    taken = "; ".join(
        f"key {key} in ConfigMap {namespace}/{config_map} is already published by FoundryDeployment {holder}"
        for key, holder in sorted(held.items())
    )
    fix = f"choose another key than {', '.join(sorted(held))} in spec.keys"
    return Blocker(KEY_CONFLICT, taken, (fix,))
