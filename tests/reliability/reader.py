"""A dashboard stand-in: reads the published snapshot in a loop and counts errors and partial reads.

Usage: python reader.py SNAPSHOT STOPFILE RESULT.json
A partial read is a table whose row count differs from what `_published` says it held.
"""

import json
import sys
import time
from pathlib import Path

import duckdb

snapshot, stop, result = Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3])
stats = {"reads": 0, "errors": 0, "partial": 0, "versions": set(), "messages": []}
held = None  # sometimes keep a connection open across a swap, as a dashboard would
while not stop.exists():
    if not snapshot.exists():
        time.sleep(0.02)
        continue
    try:
        conn = held or duckdb.connect(str(snapshot), read_only=True)
        manifest = conn.execute("SELECT table_name, row_count, max(published_at) OVER () FROM _published").fetchall()
        for table, expected, version in manifest:
            stats["versions"].add(str(version))
            if conn.execute(f"SELECT count(*) FROM {table}").fetchall()[0][0] != expected:
                stats["partial"] += 1
        stats["reads"] += 1
        if held is None and stats["reads"] % 5 == 0:
            held = conn
        elif held is not None and stats["reads"] % 5 == 3:
            held.close()
            held = None
        elif held is None:
            conn.close()
    except Exception as e:  # noqa: BLE001 - every error is what we count
        stats["errors"] += 1
        stats["messages"].append(f"{type(e).__name__}: {e}"[:200])
        held = None
    time.sleep(0.005)
stats["versions"] = len(stats["versions"])
result.write_text(json.dumps(stats))
