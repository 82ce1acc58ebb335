"""A small real warehouse for the review tests: one synthetic month and one segment materialized through Dagster
once per session, then copied per test so no test sees another's decisions.

Import the fixtures into a test module (`from review_fixtures import review_db, scenario  # noqa: F401`).
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
import duckdb
import pytest

from crmagent_dagster.llm import LLMResource
from crmagent_dagster.resources import CRMWarehouse, LogSource
from crmagent_dagster.review import store
from crmagent_dagster.sql import fetch_dicts
from dagster_helpers import MONTHLY, SEGMENT_ASSETS

MONTH = "2025-04"
# 60k logs, seed 4: about ten accepted rewrites (some the policy would approve, some ties) and a rejected one.
SEGMENT = "abandoned_cart_buyers"
LOGS, SEED = 60_000, 6
INVENTED_DISCOUNT = " Get 70% off everything!"  # neither the original nor a voucher states it
VALID_ADDITION = " Thank you."


@dataclass(frozen=True)
class Scenario:
    """The warehouse built once, and which of its rewrites each test acts on (picked from the data, not assumed)."""

    warehouse: Path
    month: str
    segment: str
    ok_ids: tuple[str, ...]  # accepted rewrites, by template
    rejected_id: str | None  # a rewrite the writer's checks rejected, when the month has one
    edit_id: str  # an accepted English rewrite with no voucher: the invented discount is blocked there
    edit_title: str  # its rewrite, which the edit form starts from
    edit_body: str
    blocked_body: str
    valid_body: str

    @property
    def approve_id(self) -> str:
        return next(a for a in self.ok_ids if a != self.edit_id)

    @property
    def reject_id(self) -> str:
        return next(a for a in self.ok_ids if a not in (self.edit_id, self.approve_id))


_BUILT: dict[str, Scenario] = {}  # the session's one build, shared by every module that imports the fixtures


def build_warehouse(folder: Path) -> Path:
    db = folder / "wh.duckdb"
    res = {"duckdb": CRMWarehouse(database=str(db), publish_snapshot=False),
           "llm": LLMResource(),  # no endpoint: every agent on the offline rule engine, deterministic
           "log_source": LogSource(landing_dir=str(folder / "landing"), synthetic_logs=LOGS, seed=SEED,
                                   synthetic_when_no_landing=True)}
    assert dg.materialize(MONTHLY, partition_key=MONTH, resources=res).success
    assert dg.materialize(MONTHLY + SEGMENT_ASSETS, selection=SEGMENT_ASSETS, partition_key=f"{MONTH}|{SEGMENT}",
                          resources=res).success
    return db


def _edit_target(conn: duckdb.DuckDBPyConnection, rows: list[dict]) -> dict:
    """The first accepted English rewrite where the invented discount is blocked and a plain addition passes."""
    for row in rows:
        if row["status"] != "ok" or row["language"] != "en" or row["voucher_type"] is not None:
            continue
        blocked = store.edit_checks(conn, row, row["new_title"], row["new_body"] + INVENTED_DISCOUNT)
        valid = store.edit_checks(conn, row, row["new_title"], row["new_body"] + VALID_ADDITION)
        failed = {c.name for c in blocked if not c.passed}
        if failed & {"incentive_supported", "percentages_supported"} and all(c.passed for c in valid):
            return row
    raise AssertionError("no accepted English rewrite without a voucher to edit in the test month")


def make_scenario(db: Path) -> Scenario:
    with duckdb.connect(str(db)) as conn:
        rows = fetch_dicts(conn, """
            SELECT w.*, l.* EXCLUDE (month, segment, aggregate_id, template_id, shop_id, language)
            FROM agents.template_rewrites w LEFT JOIN core.labelled_templates l USING (month, segment, aggregate_id)
            ORDER BY w.template_id""")
        target = _edit_target(conn, rows)
    ok = tuple(r["aggregate_id"] for r in rows if r["status"] == "ok")
    assert len(ok) >= 4, f"the test month needs several accepted rewrites, has {len(ok)}"
    rejected = next((r["aggregate_id"] for r in rows if r["status"] != "ok"), None)
    return Scenario(db, MONTH, SEGMENT, ok, rejected, target["aggregate_id"], target["new_title"],
                    target["new_body"], target["new_body"] + INVENTED_DISCOUNT, target["new_body"] + VALID_ADDITION)


@pytest.fixture(scope="session")
def scenario(tmp_path_factory) -> Scenario:
    if "scenario" not in _BUILT:
        _BUILT["scenario"] = make_scenario(build_warehouse(tmp_path_factory.mktemp("review")))
    return _BUILT["scenario"]


@pytest.fixture
def review_db(scenario: Scenario, tmp_path: Path) -> str:
    """A private copy of the warehouse for one test."""
    target = tmp_path / "wh.duckdb"
    shutil.copy(scenario.warehouse, target)
    wal = scenario.warehouse.with_name(scenario.warehouse.name + ".wal")  # none after a clean close; copied if any
    if wal.exists():
        shutil.copy(wal, target.with_name(target.name + ".wal"))
    return str(target)
