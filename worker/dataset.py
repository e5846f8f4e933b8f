"""The CRM sales data set shipped with oppsync, as jobs by name.

``sales_pipeline.csv`` is an upstream deal export: the account is the party,
the sales agent the owner, the agent's regional office the team, the deal
stage a milestone of the "Sales" pipeline, the close value an amount in USD
and ``opportunity_id`` the idempotency key. Rows without an account become
jobs without a party, which validation refuses, as it should.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from pathlib import Path
from typing import Any

#: The data set bundled with the package.
DATA_DIR = Path(__file__).parent / "data"
#: The pipeline whose milestones are the deal stages.
PIPELINE = "Sales"


def read_offices(data_dir: Path = DATA_DIR) -> dict[str, str]:
    """Return each sales agent's regional office."""
    with (data_dir / "sales_teams.csv").open(newline="") as handle:
        return {
            row["sales_agent"]: row["regional_office"] for row in csv.DictReader(handle)
        }


def sales_pipeline_jobs(
    data_dir: Path = DATA_DIR,
) -> Iterator[tuple[int, dict[str, Any]]]:
    """Yield ``(csv line number, job)`` for every deal in the export."""
    offices = read_offices(data_dir)
    with (data_dir / "sales_pipeline.csv").open(newline="") as handle:
        for line, row in enumerate(csv.DictReader(handle), start=2):
            yield line, deal_job(row, offices)


def deal_job(row: dict[str, str], offices: dict[str, str]) -> dict[str, Any]:
    """Turn one deal row into a job that names its references."""
    account = row["account"].strip()
    agent = row["sales_agent"].strip()
    key = row["opportunity_id"]
    job: dict[str, Any] = {
        "idempotencyKey": key,
        "name": f"{row['product']} for {account or 'unknown account'} ({key})",
        "milestone": {"pipeline": PIPELINE, "name": row["deal_stage"]},
        "owner": {"name": agent},
        "description": f"Product {row['product']}, engaged {row['engage_date'] or '-'}",
    }
    if account:
        job["party"] = {"name": account}
    if agent in offices:
        job["team"] = {"name": offices[agent]}
    if row["close_value"]:
        job["value"] = {"amount": row["close_value"], "currency": "USD"}
    if row["close_date"]:
        job["expectedCloseOn"] = row["close_date"]
    return job
