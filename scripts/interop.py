"""Reads a gco ledger with pyarrow, Polars and DuckDB and checks they agree.

Each engine opens records/ with hive partitioning; all must report the same row count
and energy sum, UTC-aware `start`/`end` timestamps, and the partition columns.

usage: python scripts/interop.py LEDGER_DIR EXPECTED_ROWS
"""

import sys
from pathlib import Path

import duckdb
import polars as pl
import pyarrow as pa
import pyarrow.dataset as ds


def main():
    root = Path(sys.argv[1]) / "records"
    expected = int(sys.argv[2])
    failures = []

    def check(cond, what):
        if not cond:
            failures.append(what)

    # pyarrow
    dataset = ds.dataset(root, format="parquet", partitioning="hive")
    table = dataset.to_table()
    start_type = table.schema.field("start").type
    check(table.num_rows == expected, f"pyarrow rows {table.num_rows} != {expected}")
    check(pa.types.is_timestamp(start_type) and start_type.tz == "UTC", f"pyarrow start type {start_type}")
    check("date" in table.schema.names and "node" in table.schema.names, "pyarrow partition columns")
    pa_energy = pa.compute.sum(table.column("energy_mj")).as_py()

    # Polars
    lf = pl.scan_parquet(str(root / "**" / "*.parquet"), hive_partitioning=True)
    df = lf.select(pl.len().alias("n"), pl.col("energy_mj").sum().alias("e")).collect()
    pl_schema = lf.collect_schema()
    check(df["n"][0] == expected, f"polars rows {df['n'][0]} != {expected}")
    check(pl_schema["start"] == pl.Datetime("us", "UTC"), f"polars start type {pl_schema['start']}")
    check(df["e"][0] == pa_energy, f"polars energy {df['e'][0]} != pyarrow {pa_energy}")

    # DuckDB
    con = duckdb.connect()
    n, e, t = con.execute(
        "SELECT count(*), sum(energy_mj), any_value(typeof(start)) "
        f"FROM read_parquet('{root}/*/*/*.parquet', hive_partitioning=1)"
    ).fetchone()
    check(n == expected, f"duckdb rows {n} != {expected}")
    check(t == "TIMESTAMP WITH TIME ZONE", f"duckdb start type {t}")
    check(int(e) == pa_energy, f"duckdb energy {e} != pyarrow {pa_energy}")

    for f in failures:
        print("FAIL", f)
    print(
        f"pyarrow, polars, duckdb: {expected} rows, {pa_energy} mJ, start as "
        f"{start_type} / {pl_schema['start']} / {t}" + ("" if not failures else " -- MISMATCH")
    )
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
