"""Builds grid-data/data/*.csv from the CodeCarbon 3.3.2 data files.

Run once when the upstream figures change; the CSVs it writes are committed, so the
repository never needs the source files. Figures are copied, not recomputed, except the
Canadian provinces (generation mix x per-source lifecycle factors, as CodeCarbon does).

usage: python grid-data/scripts/build_baselines.py CODECARBON_DATA_DIR
"""

import csv
import json
import sys
from pathlib import Path

import pycountry

src = Path(sys.argv[1])
out = Path(__file__).resolve().parent.parent / "data"


def mg(value):
    """gCO2e/kWh -> integer mgCO2e/kWh, rounded half away from zero."""
    from decimal import Decimal, ROUND_HALF_UP
    return int((Decimal(str(value)) * 1000).quantize(Decimal(1), rounding=ROUND_HALF_UP))


mix = json.load(open(src / "global_energy_mix.json"))
with open(out / "countries.csv", "w", newline="") as f:
    w = csv.writer(f, lineterminator="\n")
    w.writerow(["iso2", "iso3", "name", "year", "intensity_mg_per_kwh", "fossil_twh", "nuclear_twh", "renewables_twh", "total_twh"])
    for iso3, v in sorted(mix.items(), key=lambda kv: pycountry.countries.get(alpha_3=kv[0]).alpha_2):
        iso2 = pycountry.countries.get(alpha_3=iso3).alpha_2
        w.writerow([iso2, iso3, v["country_name"], v["year"], mg(v["carbon_intensity"]),
                    v.get("fossil_TWh", ""), v.get("nuclear_TWh", ""), v.get("renewables_TWh", ""),
                    round(v.get("total_TWh", 0), 6)])

factors = json.load(open(src / "carbon_intensity_per_source.json"))
with open(out / "source_factors.csv", "w", newline="") as f:
    w = csv.writer(f, lineterminator="\n")
    w.writerow(["source", "intensity_mg_per_kwh", "reference"])
    for k, v in factors.items():
        if k.endswith("_source") or k == "unit":
            continue
        w.writerow([k, mg(v), factors.get(k + "_source", "")])

# Canadian provinces: percentage mix x lifecycle factor per source.
canada = json.load(open(src / "canada_energy_mix.json"))
factor_of = {"naturalGas": "natural_gas", "nuclear": "nuclear", "petroleum": "petroleum", "biomass": "biomass",
             "coal": "coal", "solar": "solar", "wind": "wind", "hydro": "hydroelectricity", "tidal": "hydroelectricity",
             "other": "world_average"}
codes = {s.name.lower(): s.code for s in pycountry.subdivisions.get(country_code="CA")}
with open(out / "canada_provinces.csv", "w", newline="") as f:
    w = csv.writer(f, lineterminator="\n")
    w.writerow(["zone", "province", "year", "intensity_mg_per_kwh", "method"])
    for prov, m in sorted(canada.items()):
        total = m["total"]
        g = sum(m[s] * factors[factor_of[s]] for s in factor_of if s in m) / total
        w.writerow([codes[prov], prov.title(), 2023, mg(round(g, 3)),
                    "generation mix (Canada Energy Regulator 2023) x lifecycle factor per source"])

with open(src / "impact.csv", encoding="utf-8-sig") as f, open(out / "cloud_regions.csv", "w", newline="") as g:
    w = csv.writer(g, lineterminator="\n")
    w.writerow(["provider", "region", "country_iso3", "city", "intensity_mg_per_kwh", "source_url"])
    for row in csv.DictReader(f):
        w.writerow([row["provider"], row["region"], row["countryIsoCode"], row["city"], mg(row["impact"]), row["source"]])
print("wrote", sorted(p.name for p in out.glob("*.csv")))

# eGRID2022 subregion CO2 output emission rates (lb/MWh), US EPA, public domain; the
# figures are the public anchors listed in the project's reference data.
EGRID2022 = {"CAMX": ("WECC California", "497.443"), "ERCT": ("ERCOT All", "771.083"),
             "RFCW": ("RFC West", "1000.053"), "NYUP": ("NPCC Upstate NY", "274.559")}
with open(out / "egrid_subregions.csv", "w", newline="") as f:
    from decimal import Decimal, ROUND_HALF_UP
    w = csv.writer(f, lineterminator="\n")
    w.writerow(["zone", "subregion", "name", "year", "value_lb_per_mwh", "intensity_mg_per_kwh"])
    for code, (name, lb) in EGRID2022.items():
        mgkwh = (Decimal(lb) * Decimal("453.59237")).quantize(Decimal(1), rounding=ROUND_HALF_UP)
        w.writerow([f"US-EGRID-{code}", code, name, 2022, lb, int(mgkwh)])

# US states (eGRID2023) and Nordic bidding zones, from the CodeCarbon 3.3.2 wheel's
# data/private_infra (second argument: that folder).
if len(sys.argv) > 2:
    from decimal import Decimal, ROUND_HALF_UP
    infra = Path(sys.argv[2])
    usa = json.load(open(infra / "2023" / "usa_emissions.json"))
    with open(out / "us_states.csv", "w", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(["zone", "state", "year", "value_lb_per_mwh", "intensity_mg_per_kwh"])
        for name, v in sorted(usa.items(), key=lambda kv: kv[1].get("regionCode", "") if isinstance(kv[1], dict) else ""):
            if name.startswith("_") or v["regionCode"] == "usa":  # the national average: countries.csv has the US
                continue
            lb = Decimal(str(v["emissions"]))
            w.writerow([f"US-{v['regionCode']}", name.title(), 2023, str(lb),
                        int((lb * Decimal("453.59237")).quantize(Decimal(1), rounding=ROUND_HALF_UP))])
    nordic = json.load(open(infra / "nordic_emissions.json"))
    with open(out / "nordic_zones.csv", "w", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(["zone", "description", "year", "intensity_mg_per_kwh", "coverage"])
        for code, v in nordic["data"].items():
            if code == "FI":  # a country figure, kept from countries.csv
                continue
            w.writerow([f"{code[:2]}-{code}", v["description"], v["year"], mg(v["emission_factor"]), v.get("coverage", "")])
