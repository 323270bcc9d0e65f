//! `gco report` and `gco audit` driven like a user, on a small demo: the PDFs read back
//! (pdftotext, pdfinfo, pdfdetach from poppler-utils) agree with the CSVs and the run's
//! aggregates; the package verifies and every tampering is named.

use std::path::Path;
use std::process::{Command as StdCommand, Output};

use assert_cmd::Command;
use serde_json::Value;

fn gco(d: &Path) -> Command {
    let mut c = Command::cargo_bin("gco").unwrap();
    c.env_remove("GCO_STORE")
        .arg("--config")
        .arg(d.join("gco.toml"));
    c
}

fn ok(out: Output) -> Value {
    assert!(
        out.status.success(),
        "exit {:?}\nstdout: {}\nstderr: {}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap_or(Value::Null)
}

fn tool(name: &str, args: &[&str]) -> String {
    let out = StdCommand::new(name)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{name} (poppler-utils, installed by scripts/test): {e}"));
    assert!(
        out.status.success(),
        "{name}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// kWh / kg with three decimals from integer mJ / ng, half up (as the reports round).
fn fixed(v: i128, div: i128) -> String {
    let q = (v * 1000 + div / 2) / div;
    format!("{}.{:03}", q / 1000, q % 1000)
}

#[test]
fn demo_reports_agree_with_the_aggregates_and_the_package_detects_tampering() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().join("demo");
    let demo = ok(Command::cargo_bin("gco")
        .unwrap()
        .env_remove("GCO_STORE")
        .args([
            "--json",
            "demo",
            "--days",
            "1",
            "--nodes",
            "1",
            "--seed",
            "3",
            "--peak-rate",
            "40",
            "--dir",
        ])
        .arg(&d)
        .output()
        .unwrap());
    let pkg = d.join("audit-package-2026-10.zip");
    assert_eq!(demo["audit_package"]["package"], pkg.display().to_string());

    // The CSRD report: the run's totals to the unit shown, in the PDF and the CSVs.
    let pdf = d.join("reports/csrd-2026-10/report.pdf");
    let text = tool("pdftotext", &["-layout", pdf.to_str().unwrap(), "-"]);
    let manifest: Value = serde_json::from_slice(
        &std::fs::read(d.join("runs/period=2026-10/version=0001/manifest.json")).unwrap(),
    )
    .unwrap();
    let t = |scope: &str, f: &str| -> i128 {
        manifest["totals"][scope][f]
            .as_str()
            .unwrap()
            .parse()
            .unwrap()
    };
    // One node: its site (paris-dc1) is Scope 2; there is no Scope 3 total.
    assert!(manifest["totals"]["scope3"].is_null());
    for scope in ["scope2", "all"] {
        let (e, loc, mkt) = (
            fixed(t(scope, "facility_energy_mj"), 3_600_000_000),
            fixed(t(scope, "location_ng"), 1_000_000_000_000),
            fixed(t(scope, "market_ng"), 1_000_000_000_000),
        );
        assert!(
            text.lines().any(|l| l.trim_start().starts_with(scope)
                && l.contains(&e)
                && l.contains(&loc)
                && l.contains(&mkt)),
            "{scope}: {e} kWh {loc} kg {mkt} kg not in the PDF:\n{text}"
        );
    }
    // Exact figures for seed 3 (the demo is deterministic in everything but as-of).
    assert_eq!(
        fixed(t("all", "facility_energy_mj"), 3_600_000_000),
        "17.271"
    );
    let csv =
        std::fs::read_to_string(d.join("reports/csrd-2026-10/esrs-e1-datapoints.csv")).unwrap();
    let mut checked = 0;
    for rec in csv::Reader::from_reader(csv.as_bytes()).records() {
        let rec = rec.unwrap();
        let (id, value) = (&rec[0], &rec[2]);
        assert!(
            text.lines().any(|l| l.contains(id) && l.contains(value)),
            "{id} = {value} from the CSV is not in the PDF"
        );
        checked += 1;
    }
    assert_eq!(checked, 9);
    let s2_loc = t("scope2", "location_ng");
    let expect = format!(
        "{}.{:06}",
        s2_loc / 1_000_000_000_000_000,
        (s2_loc % 1_000_000_000_000_000 + 500_000_000) / 1_000_000_000
    );
    assert!(csv.contains(&expect), "E1-6_09 {expect} not in {csv}");

    // PDF/A-3b identification and the attached CSVs, byte for byte.
    let meta = tool("pdfinfo", &["-meta", pdf.to_str().unwrap()]);
    assert!(meta.contains("pdfaid:part") && meta.contains('3'), "{meta}");
    assert!(
        meta.contains("pdfaid:conformance") && (meta.contains(">B<") || meta.contains("\"B\"")),
        "{meta}"
    );
    let list = tool("pdfdetach", &["-list", pdf.to_str().unwrap()]);
    assert!(
        list.contains("esrs-e1-datapoints.csv") && list.contains("model-month.csv"),
        "{list}"
    );
    let att = dir.path().join("att");
    std::fs::create_dir_all(&att).unwrap();
    tool(
        "pdfdetach",
        &[
            "-saveall",
            "-o",
            att.to_str().unwrap(),
            pdf.to_str().unwrap(),
        ],
    );
    assert_eq!(
        std::fs::read(att.join("esrs-e1-datapoints.csv")).unwrap(),
        csv.as_bytes()
    );

    // The same run renders the same bytes.
    let again = dir.path().join("again");
    ok(gco(&d)
        .args(["--json", "report", "csrd", "--period", "2026-10", "--out"])
        .arg(&again)
        .output()
        .unwrap());
    assert_eq!(
        std::fs::read(again.join("csrd-2026-10/report.pdf")).unwrap(),
        std::fs::read(&pdf).unwrap()
    );

    // An AI Act report for a model, and a clear error for an unknown one.
    let model = "llama-3.1-8b-instruct";
    let r = ok(gco(&d)
        .args([
            "--json", "report", "ai-act", "--model", model, "--period", "2026-10", "--out",
        ])
        .arg(&again)
        .output()
        .unwrap());
    let ai_pdf = r["files"][0].as_str().unwrap().to_string();
    let ai_text = tool("pdftotext", &["-layout", &ai_pdf, "-"]);
    assert!(
        ai_text.contains(model) && ai_text.contains("Annex XI"),
        "{ai_text}"
    );
    let out = gco(&d)
        .args([
            "report", "ai-act", "--model", "gpt-9", "--period", "2026-10",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("\"gpt-9\" has no inferences") && err.contains(model),
        "{err}"
    );

    // The package verifies against the published DID document ...
    let did = d.join("did.json");
    let verify = |p: &Path| {
        gco(&d)
            .args(["--json", "audit", "verify"])
            .arg(p)
            .arg("--did-document")
            .arg(&did)
            .output()
            .unwrap()
    };
    let v = ok(verify(&pkg));
    assert_eq!(v["ok"], true);
    let files = v["files"].as_u64().unwrap();
    assert!(files >= 15, "{v}");
    // ... and as a directory; a changed, a missing and an extra file are each named.
    let unpacked = dir.path().join("pkg");
    ok(gco(&d)
        .args([
            "--json",
            "audit",
            "package",
            "--period",
            "2026-10",
            "--issuer-dir",
        ])
        .arg(d.join("issuer"))
        .arg("--out")
        .arg(&unpacked)
        .output()
        .unwrap());
    assert_eq!(ok(verify(&unpacked))["ok"], true);
    let changed = "reports/csrd-2026-10/esrs-e1-datapoints.csv";
    let mut bytes = std::fs::read(unpacked.join(changed)).unwrap();
    bytes[20] ^= 1;
    std::fs::write(unpacked.join(changed), bytes).unwrap();
    std::fs::remove_file(unpacked.join("issuer/did.json")).unwrap();
    std::fs::write(unpacked.join("reports/extra.csv"), "a,b\n").unwrap();
    let out = verify(&unpacked);
    assert_eq!(out.status.code(), Some(1));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["ok"], false);
    assert_eq!(v["changed"], serde_json::json!([changed]));
    assert_eq!(v["missing"], serde_json::json!(["issuer/did.json"]));
    assert_eq!(v["extra"], serde_json::json!(["reports/extra.csv"]));
    // A manifest signed by another key fails before any file is trusted.
    let other = dir.path().join("other-issuer");
    ok(Command::cargo_bin("gco")
        .unwrap()
        .args(["--json", "issuer", "init", "--issuer-dir"])
        .arg(&other)
        .args(["--domain", "carbon.demo.example"])
        .output()
        .unwrap());
    let other_did = dir.path().join("other-did.json");
    ok(gco(&d)
        .args(["--json", "issuer", "did", "--issuer-dir"])
        .arg(&other)
        .arg("--out")
        .arg(&other_did)
        .output()
        .unwrap());
    let out = gco(&d)
        .args(["--json", "audit", "verify"])
        .arg(&pkg)
        .arg("--did-document")
        .arg(&other_did)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(
        v["problems"][0].as_str().unwrap().contains("manifest.jwt"),
        "{v}"
    );
}
