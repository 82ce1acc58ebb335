"""The rows DuckDB 2.0.0 lost, on duckdb alone (no project code): 2.0.1 and 1.5.x are correct, the pin skips 2.0.0.

In one transaction, a table made with CREATE TABLE ... AS SELECT ... WITH NO DATA and then filled from another table
with more than one row group (122,880 rows): count(*) reports every row, but a scan on the same connection returns
none (the file, reopened, has them). Staging writes a table exactly so the first time (sql._replace_from inside
write_checked_model's transaction), so on 2.0.0 a 1M-delivery month staged 999,400 logs that every later model then
read as empty. Smaller months (one row group), a table made by CREATE TABLE (...) or no explicit transaction were
fine, which is why it looked like rows lost "after a month of raw loads".
"""

from __future__ import annotations

import duckdb

ROWS = 200_000  # more than one row group


def test_rows_inserted_into_a_table_made_with_no_data_in_the_same_transaction_are_scanned():
    with duckdb.connect() as conn:
        conn.execute(f"CREATE TABLE src AS SELECT range AS id FROM range({ROWS})")
        conn.execute("BEGIN TRANSACTION")
        conn.execute("CREATE TABLE t AS SELECT * FROM src WITH NO DATA")
        conn.execute("INSERT INTO t SELECT * FROM src")
        conn.execute("COMMIT")
        counted = conn.execute("SELECT count(*) FROM t").fetchall()[0][0]
        scanned = len(conn.execute("SELECT id FROM t").fetchall())
    assert (counted, scanned) == (ROWS, ROWS), f"duckdb {duckdb.__version__}: count(*) {counted}, scan {scanned}"
