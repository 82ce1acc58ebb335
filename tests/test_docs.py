"""The README documents the raw schema and the two set-up commands, so a schema change is a deliberate doc change."""

from __future__ import annotations

from pathlib import Path

from crmagent_dagster.raw_schema import RAW_TABLES

README = (Path(__file__).resolve().parent.parent / "README.md").read_text()


def test_readme_documents_every_raw_column():
    for table, cols in RAW_TABLES.items():
        section = README.split(f"**`raw.{table}`**", 1)
        assert len(section) == 2, f"raw.{table} is not documented in README.md"
        body = section[1].split("**`raw.", 1)[0]
        for column, typ, meaning in cols:
            assert f"| `{column}` | {typ} | {meaning} |" in body, f"raw.{table}.{column}"


def test_readme_quick_start_is_the_two_make_commands():
    assert "make demo" in README and "make test" in README
    ci = (Path(__file__).resolve().parent.parent / ".ci" / "run").read_text()
    assert "make test" in ci


def test_readme_table3_run_config_is_valid_for_the_results_job():
    import textwrap

    import dagster as dg
    import yaml

    from crmagent_dagster.definitions import build_definitions

    block = README.split("```yaml\n", 1)[1].split("```", 1)[0]
    config = yaml.safe_load(textwrap.dedent(block))
    defs = build_definitions(database="/nonexistent/x.duckdb")
    for name in ("monthly_results_job", "ablation_job"):  # raises, naming the field, if the README's example drifts
        dg.validate_run_config(defs.resolve_job_def(name), config)
    assert {k.to_user_string() for k in defs.resolve_job_def("ablation_job").asset_layer.executable_asset_keys} >= {
        "agents/ablation_judgments", "results/table3", "results/table1"}
    names = [c["name"] for c in config["ops"]["ablation_study"]["config"]["configurations"]]
    assert len(names) == 6 and len(set(names)) == 6
