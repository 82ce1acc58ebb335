"""One copy of the SQL: the DuckDB models of dbt_like_sql/ rewritten for Spark SQL with sqlglot.

`sqlglot.transpile(read="duckdb", write="spark")` does most of the work: `$month` becomes the named marker `:month`
that `spark.sql(text, args=...)` binds, `list_contains` becomes `array_contains`, `strftime` becomes `date_format`.
What it leaves in DuckDB's dialect, or turns into a Spark function that means something else, is rewritten here,
one small transform per construct (`TRANSFORMS`), each saying why:

- `try_strptime(x, '%Y-%m-%d %H:%M:%S')` has no Spark spelling: `try_to_timestamp(x, 'y-M-d H:m:s')` as
  TIMESTAMP_NTZ (DuckDB's TIMESTAMP has no zone). One-letter Java fields accept 1- or 2-digit values as DuckDB's
  `%m`/`%d`/`%H` do; 'yyyy-MM-dd' would refuse '2025-4-1 1:2:3', which DuckDB reads.
- `chr(65533)`: Spark's `chr(n)` is `chr(n % 256)` ('ý'), so the code point becomes the one-character literal.
- `list_extract(codes, list_position(aliases, x))`: Spark's `array_position` answers 0 for "not found" and
  `element_at(a, 0)` raises; `try_element_at(codes, CAST(nullif(array_position(aliases, x), 0) AS INT))` is NULL there,
  as DuckDB's pair is.
- `regexp_full_match(x, p)`: Spark has no full match, `RLIKE` finds; anchored as `x RLIKE '\\A(?:p)\\z'` (not `^$`:
  Java's `$` also matches before a final newline).
- `isinf(x)`: no Spark function; `abs(x) = CAST('Infinity' AS DOUBLE)`.
- `try_cast(x AS DOUBLE)`: Spark parses with Java, which also reads '12d', '1.5f' and hex '0x1p3' (DuckDB: NULL) and
  refuses DuckDB's digit separators '1_000'. Those spellings are aligned to DuckDB's reading before the cast.
- `row_number()`: INT in Spark, BIGINT in DuckDB; cast, so the tables loaded back into DuckDB keep DuckDB's types.
- `schema.table` names become the session's temporary views `schema__table` (a Spark temp view has one-part names;
  the engine registers each over its lake folder).

Comments are dropped (sqlglot moves them into expressions). Values never enter the text: every `$name` stays a
marker, and `spark_params` turns the DuckDB parameters into Spark's (lists stay lists: Spark binds them as arrays).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import sqlglot
from sqlglot import exp

from crmagent_dagster.sql import load_sql

# DuckDB strptime field -> Java DateTimeFormatter field (lenient widths, see the module docstring).
_STRPTIME_FIELDS = {"%Y": "y", "%m": "M", "%d": "d", "%H": "H", "%M": "m", "%S": "s"}
_FIELD = re.compile(r"%.")


def view_name(table: str) -> str:
    """The temp view a model reads for `schema.table`."""
    schema, name = table.split(".")
    return f"{schema}__{name}"


def java_time_format(duckdb_format: str) -> str:
    """A DuckDB strptime format as a Spark (Java) pattern; fails on a field this module does not map."""
    unknown = sorted({f for f in _FIELD.findall(duckdb_format) if f not in _STRPTIME_FIELDS})
    if unknown:
        raise ValueError(f"strptime field(s) {', '.join(unknown)} in {duckdb_format!r} have no Spark mapping here")
    literal = _FIELD.split(duckdb_format)
    if any(re.search(r"[A-Za-z']", part) for part in literal):
        raise ValueError(f"letters between fields of {duckdb_format!r} would need quoting in a Java pattern")
    return _FIELD.sub(lambda m: _STRPTIME_FIELDS[m.group(0)], duckdb_format)


def _fn(node: exp.Expression, name: str) -> bool:
    return isinstance(node, exp.Anonymous) and node.name.lower() == name


def _try_strptime(node: exp.Expression) -> exp.Expression:
    if not _fn(node, "try_strptime"):
        return node
    value, fmt = node.expressions
    if not (isinstance(fmt, exp.Literal) and fmt.is_string):
        raise ValueError("try_strptime needs a literal format to be transpiled")
    parsed = exp.func("try_to_timestamp", value, exp.Literal.string(java_time_format(fmt.this)))
    return exp.cast(parsed, exp.DataType.build("TIMESTAMP_NTZ", dialect="spark"))


def _chr(node: exp.Expression) -> exp.Expression:
    if isinstance(node, exp.Chr) and len(node.expressions) == 1 and node.expressions[0].is_int:
        return exp.Literal.string(chr(int(node.expressions[0].this)))
    return node


def _list_extract(node: exp.Expression) -> exp.Expression:
    if _fn(node, "list_position"):
        array, value = node.expressions
        found = exp.func("nullif", exp.func("array_position", array, value), exp.Literal.number(0))
        return exp.cast(found, exp.DataType.build("INT"))
    if _fn(node, "list_extract"):  # its index (a list_position) is rewritten here too: the walk skips new nodes
        array, index = node.expressions
        return exp.func("try_element_at", array, _list_extract(index))
    return node


def _regexp_full_match(node: exp.Expression) -> exp.Expression:
    if not isinstance(node, exp.RegexpFullMatch):
        return node
    pattern = node.expression
    if not (isinstance(pattern, exp.Literal) and pattern.is_string):
        raise ValueError("regexp_full_match needs a literal pattern to be transpiled")
    return exp.RegexpLike(this=node.this, expression=exp.Literal.string(rf"\A(?:{pattern.this})\z"))


def _isinf(node: exp.Expression) -> exp.Expression:
    if not isinstance(node, exp.IsInf):
        return node
    infinity = exp.cast(exp.Literal.string("Infinity"), exp.DataType.build("DOUBLE"))
    return exp.EQ(this=exp.func("abs", node.this), expression=infinity)


def _try_cast_double(node: exp.Expression) -> exp.Expression:
    if not (isinstance(node, exp.TryCast) and node.to.is_type("double")):
        return node
    text = node.this
    # Java-only spellings (float suffixes, hex) read as NULL; DuckDB's '_' between digits is dropped.
    java_only = exp.RegexpLike(this=text.copy(), expression=exp.Literal.string(r"(?i)([0-9.][df]\s*$|^\s*[+-]?0x)"))
    digits = exp.func("regexp_replace", text.copy(), exp.Literal.string(r"(?<=\d)_(?=\d)"), exp.Literal.string(""))
    aligned = exp.If(this=java_only, true=exp.null(), false=digits)
    # safe=True: sqlglot writes a TryCast without it as a plain CAST for Spark, which raises under ANSI mode.
    return exp.TryCast(this=aligned, to=node.to.copy(), safe=True)


def _row_number(node: exp.Expression) -> exp.Expression:
    if isinstance(node, exp.Window) and isinstance(node.this, exp.RowNumber) and not isinstance(node.parent, exp.Cast):
        return exp.cast(node.copy(), exp.DataType.build("BIGINT"))
    return node


def _tables(node: exp.Expression) -> exp.Expression:
    if isinstance(node, exp.Table) and node.db and not node.catalog:
        alias = node.args.get("alias")
        return exp.Table(this=exp.to_identifier(view_name(f"{node.db}.{node.name}")), alias=alias)
    return node


TRANSFORMS: tuple[Callable[[exp.Expression], exp.Expression], ...] = (
    _try_strptime, _chr, _list_extract, _regexp_full_match, _isinf, _try_cast_double, _row_number, _tables,
)


@dataclass(frozen=True)
class SparkModel:
    """One model as Spark SQL: its text, the tables it reads and the parameters it binds."""

    table: str
    sql: str
    reads: tuple[str, ...]
    params: tuple[str, ...]


def to_spark(duckdb_sql: str) -> tuple[str, tuple[str, ...], tuple[str, ...]]:
    """DuckDB SQL -> (Spark SQL, tables read as `schema.table`, parameter names)."""
    tree = sqlglot.parse_one(duckdb_sql, read="duckdb")
    ctes = {cte.alias for cte in tree.find_all(exp.CTE)}
    reads = sorted({f"{t.db}.{t.name}" for t in tree.find_all(exp.Table) if t.db and t.name not in ctes})
    params = sorted({p.name for p in tree.find_all(exp.Placeholder)})
    for transform in TRANSFORMS:
        tree = tree.transform(transform)
    return tree.sql(dialect="spark", comments=False), tuple(reads), tuple(params)


def spark_model(table: str) -> SparkModel:
    """The model that makes `schema.table` (dbt_like_sql/<schema>/<table>.sql), as Spark SQL."""
    sql, reads, params = to_spark(load_sql(table))
    return SparkModel(table, sql, reads, params)


def spark_params(params: Mapping[str, Any], model: SparkModel) -> dict[str, Any]:
    """The model's parameters from `params` (extra ones dropped: Spark refuses unused named arguments in some
    versions); fails naming a parameter the model needs and `params` lacks."""
    missing = [p for p in model.params if p not in params]
    if missing:
        raise ValueError(f"{model.table}: parameter(s) {', '.join(missing)} not given")
    return {p: list(params[p]) if isinstance(params[p], tuple) else params[p] for p in model.params}
