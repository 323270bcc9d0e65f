"""The notebook snippet of docs/pipeline.md, run against the demo's emissions.

Usage: notebook.py DEMO_DIR PERIOD
Reads the latest version's rows with Polars and DuckDB and checks that both agree with
the run manifest: row count and the location-based, market-based and energy totals
(exact integers).
"""
import glob
import json
import sys

import duckdb
import polars as pl

demo, period = sys.argv[1], sys.argv[2]
manifests = sorted(glob.glob(f"{demo}/runs/period={period}/version=*/manifest.json"))
assert manifests, f"no run manifest for {period} under {demo}"
m = json.load(open(manifests[-1]))
version = f"version={m['version']:04d}"
base = f"{demo}/emissions/period={period}/{version}"

# --- the snippet (docs/pipeline.md) ---
rows = pl.scan_parquet(f"{base}/rows/**/*.parquet", hive_partitioning=True)
by_model = rows.group_by("model_id").agg(pl.col("location_ng").sum() / 1e9).collect()
con = duckdb.sql(
    "SELECT zone, sum(facility_energy_mj)/3.6e9 AS kwh, sum(location_ng)/1e12 AS kg "
    f"FROM read_parquet('{base}/rows/*/*.parquet', hive_partitioning=1) GROUP BY zone"
)
print(by_model)
print(con)
# ---

df = rows.collect()
total = m["totals"]["all"]
assert df.height == m["coverage"]["records_accounted"] == total["rows"], (df.height, m["coverage"])
for col in ["location_ng", "market_ng", "facility_energy_mj", "embodied_ng"]:
    got = sum(v for v in df[col].to_list() if v is not None)
    assert got == int(total[col]), (col, got, total[col])
duck = duckdb.sql(
    f"SELECT count(*), sum(location_ng)::HUGEINT FROM read_parquet('{base}/rows/*/*.parquet', hive_partitioning=1)"
).fetchall()[0]
assert duck[0] == total["rows"] and int(duck[1]) == int(total["location_ng"]), duck
# Timestamps are UTC-aware.
assert str(df.schema["start"]) == "Datetime(time_unit='us', time_zone='UTC')", df.schema["start"]
import pyarrow.parquet as pq
agg = pq.read_table(f"{base}/aggregates/organisation_month.parquet")
assert sum(int(v) for v in agg.column("location_ng").to_pylist()) == int(total["location_ng"]), agg
assert int(duckdb.sql(f"SELECT sum(location_ng)::HUGEINT FROM '{base}/aggregates/organisation_month.parquet'").fetchall()[0][0]) == int(total["location_ng"])
print(f"notebook: {df.height} rows, location {int(total['location_ng'])/1e12:.3f} kg CO2e: Polars, DuckDB and the manifest agree")
