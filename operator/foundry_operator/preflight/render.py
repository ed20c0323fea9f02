"""Output: a table a person can scan (colour only on a terminal), or JSON / YAML for machines.

The table is laid out by hand rather than with rich's Table because a failing row is followed by
its own `reason:` and `fix:` lines, at full length: CI logs are read with grep, not a wide screen.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import yaml
from rich.console import Console
from rich.text import Text

from foundry_operator.catalog import ModelOffer, QuotaUsage, SkuOffer
from foundry_operator.preflight.manifests import InputProblem
from foundry_operator.preflight.report import DeploymentResult, Finding, Report, Result
from foundry_operator.preflight.snapshot import CatalogSnapshot

RESULT_STYLES = {Result.OK: "green", Result.WARN: "yellow", Result.FAIL: "bold red"}
DASH = "-"


def console(stderr: bool = False) -> Console:
    # soft_wrap: never break a line at the terminal width, so one deployment stays one line.
    return Console(stderr=stderr, soft_wrap=True, highlight=False, emoji=False)


def _grid(
    out: Console, headers: Sequence[str], rows: Sequence[tuple[Sequence[Text], Sequence[Text]]]
) -> None:
    """Columns padded to their widest cell, two spaces apart (kubectl's look); each row may carry extra lines."""
    widths = [len(h) for h in headers]
    for cells, _ in rows:
        widths = [max(width, len(cell.plain)) for width, cell in zip(widths, cells, strict=True)]

    def line(cells: Sequence[Text]) -> Text:
        text = Text()
        for index, cell in enumerate(cells):
            if index:
                text.append("  ")
            text.append_text(cell)
            if index < len(cells) - 1:
                text.append(" " * (widths[index] - len(cell.plain)))
        return text

    out.print(line([Text(h, style="bold") for h in headers]))
    for cells, extra in rows:
        out.print(line(cells))
        for text in extra:
            out.print(text)


def dump(data: Any, output: str, out: Console) -> None:
    """Machine output goes to the stream as is: no styling, no wrapping, no markup."""
    if output == "json":
        text = json.dumps(data, indent=2) + "\n"
    else:
        text = yaml.safe_dump(data, sort_keys=False, allow_unicode=True)
    out.file.write(text)
    out.file.flush()


# -- check --------------------------------------------------------------------------------------


def _finding_lines(label: str, style: str, finding: Finding) -> list[Text]:
    lines = [Text.assemble(("    ", ""), (f"{label}: ", style), finding.message)]
    if finding.fixes:
        lines.append(Text.assemble(("    ", ""), ("fix: ", "cyan"), "; ".join(finding.fixes)))
    return lines


def _capacity(row: DeploymentResult) -> str:
    capacity = str(row.capacity) if row.capacity is not None else DASH
    headroom = str(row.headroom) if row.headroom is not None else DASH
    return f"{capacity}/{headroom}"


def render_check_table(report: Report, out: Console) -> None:
    headers = ("NAME", "NAMESPACE", "MODEL", "VERSION", "ACCOUNT", "REGION", "CAPACITY/HEADROOM", "RESULT")
    rows = []
    for row in report.deployments:
        cells = [
            Text(row.name),
            Text(row.namespace),
            Text(row.model_name),
            Text(row.version or DASH),
            Text(row.account or DASH),
            Text(row.region or DASH),
            Text(_capacity(row)),
            Text(row.result.value, style=RESULT_STYLES[row.result]),
        ]
        extra = [line for f in row.errors for line in _finding_lines("reason", "red", f)]
        extra += [line for f in row.warnings for line in _finding_lines("warning", "yellow", f)]
        rows.append((cells, extra))
    if rows:
        _grid(out, headers, rows)
    else:
        out.print("no FoundryDeployment in the manifests")
    for account in report.accounts:
        if account.problem:
            out.print(
                Text.assemble(
                    ("warning: ", "yellow"),
                    f"FoundryAccount {account.namespace}/{account.name}: ",
                    account.problem,
                )
            )
    counts = {result: sum(1 for r in report.deployments if r.result == result) for result in Result}
    summary = ", ".join(f"{counts[result]} {result.value}" for result in Result)
    out.print(
        Text.assemble(
            f"{len(report.deployments)} deployments: {summary} (against {report.source}; ",
            f"retirement window {report.retirement_window_days} days)",
        )
    )


def _finding_dict(finding: Finding) -> dict[str, Any]:
    return {"code": finding.code, "message": finding.message, "fixes": list(finding.fixes)}


def report_dict(report: Report) -> dict[str, Any]:
    return {
        "result": report.result.value,
        "source": report.source,
        "checkedAt": report.checked_at.isoformat(),
        "retirementWindowDays": report.retirement_window_days,
        "deployments": [
            {
                "name": row.name,
                "namespace": row.namespace,
                "file": row.origin.file,
                "document": row.origin.document,
                "result": row.result.value,
                "placed": row.placed,
                "model": {
                    "format": row.model_format,
                    "name": row.model_name,
                    "requestedVersion": row.requested_version,
                    "version": row.version,
                },
                "deploymentName": row.deployment_name,
                "keys": list(row.keys),
                "configMapName": row.config_map_name,
                "sku": row.sku_name,
                "account": row.account,
                "accountName": row.account_name,
                "region": row.region,
                "capacity": row.capacity,
                "headroom": row.headroom,
                "usageName": row.usage_name,
                "retirementDate": row.retirement_date,
                "errors": [_finding_dict(f) for f in row.errors],
                "warnings": [_finding_dict(f) for f in row.warnings],
                "candidates": [
                    {
                        "account": c.account,
                        "region": c.region,
                        "eligible": c.eligible,
                        "reason": c.reason,
                        "suggestion": c.suggestion,
                    }
                    for c in row.candidates
                ],
                "offeredRegions": list(row.offered_regions),
            }
            for row in report.deployments
        ],
        "accounts": [
            {
                "name": a.name,
                "namespace": a.namespace,
                "file": a.origin.file,
                "document": a.origin.document,
                "subscriptionId": a.subscription_id,
                "resourceGroup": a.resource_group,
                "accountName": a.account_name,
                "region": a.region,
                "kind": a.kind,
                "planned": a.planned,
                "problem": a.problem,
            }
            for a in report.accounts
        ],
    }


def render_check(report: Report, output: str, out: Console) -> None:
    if output == "table":
        render_check_table(report, out)
    else:
        dump(report_dict(report), output, out)


def input_errors_dict(problems: Sequence[InputProblem]) -> dict[str, Any]:
    return {
        "result": "ERROR",
        "errors": [
            {
                "file": p.file,
                "document": p.document,
                "line": p.line,
                "object": p.object,
                "field": p.field,
                "message": p.message,
            }
            for p in problems
        ],
    }


# -- catalog ------------------------------------------------------------------------------------


def _capacity_range(sku: SkuOffer) -> str:
    text = f"{sku.minimum}-{sku.maximum if sku.maximum is not None else 'unbounded'}"
    if sku.step != 1:
        text += f" step {sku.step}"
    if sku.default is not None:
        text += f" (default {sku.default})"
    return text


def _quota(sku: SkuOffer, usages: dict[str, QuotaUsage]) -> str:
    usage = usages.get(sku.usage_name) if sku.usage_name else None
    if usage is None:
        return DASH
    return f"{int(usage.headroom)}/{int(usage.limit)}"


def _grouped(offers: Sequence[ModelOffer]) -> list[tuple[ModelOffer, list[str]]]:
    """One entry per (format, name, version), listing the account kinds it is offered to."""
    grouped: dict[tuple[str, str, str], tuple[ModelOffer, list[str]]] = {}
    for offer in offers:
        key = (offer.format.lower(), offer.name.lower(), offer.version)
        grouped.setdefault(key, (offer, []))[1].append(offer.kind)
    return sorted(grouped.values(), key=lambda item: (item[0].name.lower(), item[0].version))


def _retires(offer: ModelOffer, now: datetime) -> str:
    if offer.retirement_date is None:
        return DASH
    text = offer.retirement_date.date().isoformat()
    if offer.retirement_date <= now:
        text += " (retired)"
    return text + (f" -> {offer.replacement}" if offer.replacement else "")


def render_catalog_table(snapshot: CatalogSnapshot, out: Console) -> None:
    headers = (
        "REGION",
        "MODEL",
        "FORMAT",
        "VERSION",
        "KINDS",
        "SKU",
        "CAPACITY",
        "QUOTA FREE/LIMIT",
        "LIFECYCLE",
        "RETIRES",
    )
    rows: list[tuple[list[Text], list[Text]]] = []
    for region in sorted(snapshot.regions):
        catalog = snapshot.catalog(region)
        usages = snapshot.usages(region) or {}
        assert catalog is not None
        for offer, kinds in _grouped(catalog.offers):
            version = offer.version + (" (default)" if offer.is_default_version else "")
            retires = _retires(offer, snapshot.taken_at)
            for sku in offer.skus or (SkuOffer(DASH, None, 0, None, 1, None),):
                cells = [
                    Text(region),
                    Text(offer.name),
                    Text(offer.format),
                    Text(version),
                    Text(",".join(sorted(set(kinds)))),
                    Text(sku.name),
                    Text(_capacity_range(sku) if sku.name != DASH else DASH),
                    Text(_quota(sku, usages)),
                    Text(offer.lifecycle_status or DASH),
                    Text(retires),
                ]
                rows.append((cells, []))
    if rows:
        _grid(out, headers, rows)
    else:
        out.print("nothing offered")


def render_catalog(snapshot: CatalogSnapshot, output: str, out: Console) -> None:
    if output == "table":
        render_catalog_table(snapshot, out)
    else:
        dump(snapshot.dump(), output, out)
