"""The CRM sales data set shipped with oppsync, as jobs by name.

``sales_pipeline.csv`` is an upstream deal export; ``crm-sales.toml`` beside
it (also ``examples/crm-sales.toml``) is the mapping file that turns each
row into a job: the account is the party, the sales agent the owner, the
agent's regional office the team, the deal stage a milestone of the "Sales"
pipeline, the close value an amount in USD and ``opportunity_id`` the
idempotency key. Rows without an account become jobs without a party,
which validation refuses, as it should.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from worker.csvrows import read_csv_rows
from worker.mapping import JobMapping, map_records

#: The data set bundled with the package.
DATA_DIR = Path(__file__).parent / "data"
#: The mapping file of the bundled export.
MAPPING_NAME = "crm-sales.toml"


def sales_pipeline_jobs(
    data_dir: Path = DATA_DIR,
) -> Iterator[tuple[int, Any]]:
    """Yield ``(csv line number, job or Refusal)`` for every deal.

    Raises:
        MappingInvalid: the mapping file is broken.
    """
    mapping = JobMapping.load(data_dir / MAPPING_NAME)
    with (data_dir / "sales_pipeline.csv").open("rb") as handle:
        yield from map_records(mapping, read_csv_rows(handle))
