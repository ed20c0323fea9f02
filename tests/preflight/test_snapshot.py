"""The catalog snapshot file: JSON or YAML, versioned, validated, faithful to the catalog values."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from foundry_operator.preflight.snapshot import (
    SnapshotError,
    catalog_from_entries,
    entries_from_catalog,
    read_snapshot,
    write_snapshot,
)
from tests.preflight.world import NOW, adr_snapshot


@pytest.mark.parametrize("suffix", [".json", ".yaml", ".yml"])
def test_round_trip(tmp_path: Path, suffix: str) -> None:
    snapshot = adr_snapshot()
    path = tmp_path / f"catalog{suffix}"
    write_snapshot(path, snapshot)
    text = path.read_text()
    data = json.loads(text) if suffix == ".json" else yaml.safe_load(text)
    assert (data["apiVersion"], data["kind"]) == ("foundry.llmops.io/v1alpha1", "CatalogSnapshot")
    assert read_snapshot(path) == snapshot


def test_catalog_values_survive_the_snapshot() -> None:
    snapshot = adr_snapshot()
    westus = snapshot.catalog("West US")  # ARM spells regions both ways
    assert westus is not None and westus.region == "westus"
    assert catalog_from_entries("westus", entries_from_catalog(westus), NOW) == westus
    retired = westus.offers_for("gpt-4o-mini", "OpenAI", "AIServices")[0]
    assert retired.retirement_date is not None and retired.retirement_date.tzinfo is not None
    usages = snapshot.usages("westus")
    assert usages is not None and usages["OpenAI.GlobalStandard.gpt-5.4"].headroom == 900


def test_dates_without_a_zone_are_utc(tmp_path: Path) -> None:
    data = adr_snapshot().dump()
    data["takenAt"] = "2026-11-21"
    data["regions"]["westus"]["models"][0]["retirementDate"] = "2027-09-05"
    path = tmp_path / "hand-written.yaml"
    path.write_text(yaml.safe_dump(data))
    snapshot = read_snapshot(path)
    assert snapshot.taken_at.tzinfo is not None
    assert snapshot.regions["westus"].models[0].retirement_date is not None
    assert snapshot.regions["westus"].models[0].retirement_date.utcoffset() is not None


def test_another_version_or_kind_is_refused_with_the_way_out(tmp_path: Path) -> None:
    data = adr_snapshot().dump()
    data["apiVersion"] = "foundry.llmops.io/v2"
    path = tmp_path / "future.json"
    path.write_text(json.dumps(data))
    with pytest.raises(
        SnapshotError, match=r"not a foundry.llmops.io/v1alpha1 CatalogSnapshot .*catalog --snapshot"
    ):
        read_snapshot(path)


def test_invalid_fields_are_named(tmp_path: Path) -> None:
    data = adr_snapshot().dump()
    data["regions"]["westus"]["usages"][0]["limit"] = "lots"
    del data["subscriptionId"]
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(data))
    with pytest.raises(SnapshotError) as caught:
        read_snapshot(path)
    assert "regions.westus.usages[0].limit" in str(caught.value) and "subscriptionId" in str(caught.value)


def test_unreadable_files(tmp_path: Path) -> None:
    with pytest.raises(SnapshotError, match="no such file"):
        read_snapshot(tmp_path / "missing.yaml")
    broken = tmp_path / "broken.yaml"
    broken.write_text("regions: [\n")
    with pytest.raises(SnapshotError, match="not valid YAML"):
        read_snapshot(broken)
