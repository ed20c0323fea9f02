"""`check` and the operator's placement agree: same inputs, same account and version for every example."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta
from pathlib import Path

from foundry_operator.catalog import normalize_region
from foundry_operator.placement import Candidate, DeploymentRequest, place
from foundry_operator.preflight.command import check_manifests
from foundry_operator.preflight.manifests import load_manifests
from foundry_operator.preflight.progress import Steps
from foundry_operator.preflight.snapshot import read_snapshot
from foundry_operator.preflight.sources import SnapshotSource
from tests.preflight.support import EXAMPLES


async def test_placement_and_check_choose_the_same_account_and_version(emulator_snapshot: Path) -> None:
    snapshot = read_snapshot(emulator_snapshot)
    manifests = load_manifests([str(EXAMPLES)], io.StringIO(""))
    now = datetime.now(UTC)
    report = await check_manifests(
        manifests, SnapshotSource(snapshot), Steps(enabled=False), now, timedelta(days=30)
    )

    # What the operator's reconciler hands to placement: candidates from the accounts' status
    # (region and kind as Azure reports them), one catalog and one usage list per region.
    catalogs = {region: snapshot.catalog(region) for region in snapshot.regions}
    usages = {region: snapshot.usages(region) or {} for region in snapshot.regions}
    for manifest, row in zip(manifests.deployments, report.deployments, strict=True):
        candidates = []
        for ref in manifest.spec.accounts:
            account = manifests.account(manifest.namespace, ref)
            assert account is not None
            entry = snapshot.find_account(account.spec.resource_group, account.spec.account_name)
            assert entry is not None
            candidates.append(Candidate(ref, entry.name, normalize_region(entry.location), entry.kind))
        spec = manifest.spec
        request = DeploymentRequest(
            spec.model.name, spec.model.format, spec.model.version, spec.sku.name.value, spec.sku.capacity
        )
        placement = place(
            request, candidates, {r: c for r, c in catalogs.items() if c is not None}, usages, now
        )
        assert placement.chosen is not None, placement.message
        assert (row.account, row.version, row.capacity) == (
            placement.chosen.candidate.ref,
            placement.chosen.version,
            placement.chosen.capacity,
        ), manifest.name
        assert [c.reason for c in row.candidates] == [v.reason for v in placement.verdicts]
