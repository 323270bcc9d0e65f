//! Rendering from in-memory runs: figures in the PDF text, Typst injection, template
//! and data errors, determinism. PDFs are read back with poppler's pdftotext.

use std::process::Command;

use gco_report::synthetic::{loaded, month};
use gco_report::{ReportConfig, Templates};
use serde_json::json;

fn pdftotext(pdf: &[u8]) -> String {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("r.pdf");
    std::fs::write(&p, pdf).unwrap();
    let out = Command::new("pdftotext")
        .args(["-layout", p.to_str().unwrap(), "-"])
        .output()
        .expect("pdftotext (poppler-utils) is installed by scripts/test");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn csrd_figures_are_exact_in_the_pdf_text_and_the_csv() {
    let data = loaded(vec![month("2026-10", &["llama-8b", "mistral-7b"])]);
    let r = gco_report::csrd(
        &data,
        &ReportConfig::default(),
        &Templates::builtin().unwrap(),
    )
    .unwrap();
    let text = pdftotext(&r.pdf);
    // Scope 2: models 1 + 2 => 3 units: 3.75 kWh facility = 0.00375 MWh; 3 kg location,
    // 1.2 kg market. Scope 3: 3 kg location.
    let csv = String::from_utf8(r.csvs[0].bytes.clone()).unwrap();
    assert_eq!(r.csvs[0].name, "esrs-e1-datapoints.csv");
    let expected = [
        ("E1-5_01", "0.003750", "MWh"),
        ("E1-5_02", "unknown", "MWh"),
        ("E1-6_09", "0.003000", "tCO2e"),
        ("E1-6_10", "0.001200", "tCO2e"),
        ("E1-6_11", "0.003000", "tCO2e"),
        ("E1-6_12", "0.006000", "tCO2e"),
        ("E1-6_13", "0.004200", "tCO2e"),
    ];
    for (id, value, unit) in expected {
        assert!(
            csv.lines().any(|l| l.starts_with(&format!("{id},"))
                && l.contains(&format!(",{value},{unit},2026,"))),
            "{id} {value} not in the CSV:\n{csv}"
        );
        assert!(
            text.lines().any(|l| l.contains(id) && l.contains(value)),
            "{id} {value} not in the PDF text:\n{text}"
        );
    }
    // By-scope table: 3.750 kWh facility and 3.000 kg location in each scope, 7.500 kWh overall.
    assert!(
        text.lines().any(|l| l.trim_start().starts_with("scope2")
            && l.contains("3.750")
            && l.contains("3.000")
            && l.contains("1.200")),
        "{text}"
    );
    assert!(
        text.lines().any(|l| l.trim_start().starts_with("all")
            && l.contains("7.500")
            && l.contains("6.000")
            && l.contains("2.400")),
        "{text}"
    );
    // Model-month CSV: exact integers.
    let mm = String::from_utf8(r.csvs[1].bytes.clone()).unwrap();
    assert!(mm.contains("2026-10,1,mistral-7b,scope2,18,2000,1000,7200000000,9000000000,2.500,2000000000000,2.000,800000000000,0.800,0,100000000000,1800000000000"), "{mm}");
    assert!(text.contains("Residual mix not configured"));
    // Same data, same bytes.
    let again = gco_report::csrd(
        &data,
        &ReportConfig::default(),
        &Templates::builtin().unwrap(),
    )
    .unwrap();
    assert_eq!(r.pdf, again.pdf);
    assert!(r.pdf.starts_with(b"%PDF-"));
}

#[test]
fn model_names_from_data_print_literally() {
    let evil = [
        "#read(\"/etc/passwd\")",
        "*bold* _x_ $y$ @ref <l> = h",
        "#{panic()}",
    ];
    let data = loaded(vec![month("2026-10", &evil)]);
    let t = Templates::builtin().unwrap();
    let r = gco_report::csrd(&data, &ReportConfig::default(), &t).unwrap();
    let text = pdftotext(&r.pdf);
    for m in evil {
        assert!(text.contains(m), "{m:?} is not printed literally:\n{text}");
    }
    let a = gco_report::ai_act(&data, evil[0], &ReportConfig::default(), &t).unwrap();
    assert!(pdftotext(&a.pdf).contains(evil[0]));
    // Not a file-safe id: the readable stem and 12 hex digits of its SHA-256.
    assert_eq!(a.name, "ai-act-_read___etc_passwd__-f8eee15fff51-2026");
}

#[test]
fn an_undefined_template_variable_is_an_error_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let src = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../templates");
    for f in ["common.typ", "csrd/report.typ", "eu-ai-act/report.typ"] {
        let to = dir.path().join(f);
        std::fs::create_dir_all(to.parent().unwrap()).unwrap();
        std::fs::copy(src.join(f), &to).unwrap();
    }
    let p = dir.path().join("csrd/report.typ");
    let text = std::fs::read_to_string(&p).unwrap() + "\n{{ scope_four_total }}\n";
    std::fs::write(&p, text).unwrap();
    let t = Templates::from_dir(dir.path()).unwrap();
    let data = loaded(vec![month("2026-10", &["m"])]);
    let e = gco_report::csrd(&data, &ReportConfig::default(), &t)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("scope_four_total") && e.contains("csrd/report.typ"),
        "{e}"
    );
    // Markup Typst cannot compile names the line.
    std::fs::write(&p, "#let x = (\n").unwrap();
    let t = Templates::from_dir(dir.path()).unwrap();
    let e = format!(
        "{:#}",
        gco_report::csrd(&data, &ReportConfig::default(), &t).unwrap_err()
    );
    assert!(
        e.contains("does not compile") && e.contains("main.typ:1"),
        "{e}"
    );
}

#[test]
fn a_nan_value_is_an_error_naming_it() {
    let data = loaded(vec![month("2026-10", &["m"])]);
    let t = Templates::builtin().unwrap();
    let cfg: ReportConfig = serde_json::from_value(json!({
        "energy_mix": {"FR": {"fossil": 0.1, "nuclear": 0.7, "renewable": 0.2, "source": "x"}},
        "models": {"m": {"training_energy_mwh": 1.0}}
    }))
    .unwrap();
    let mut bad = cfg.clone();
    bad.energy_mix.get_mut("FR").unwrap().nuclear = f64::NAN;
    let e = gco_report::csrd(&data, &bad, &t).unwrap_err().to_string();
    assert!(e.contains("report.energy_mix.FR.nuclear is NaN"), "{e}");
    let mut bad = cfg.clone();
    bad.models.get_mut("m").unwrap().training_energy_mwh = Some(f64::NAN);
    let e = gco_report::ai_act(&data, "m", &bad, &t)
        .unwrap_err()
        .to_string();
    assert!(e.contains("training_energy_mwh is NaN"), "{e}");
    // With the mix: scope2 FR 1.25 kWh = 0.00125 MWh split 10/70/20.
    let r = gco_report::csrd(&data, &cfg, &t).unwrap();
    let csv = String::from_utf8(r.csvs[0].bytes.clone()).unwrap();
    assert!(
        csv.contains("E1-5_02,Energy from fossil sources,0.000125,MWh"),
        "{csv}"
    );
    assert!(
        csv.contains("E1-5_03,Energy from nuclear sources,0.000875,MWh"),
        "{csv}"
    );
    assert!(
        csv.contains("E1-5_05,Energy from renewable sources,0.000250,MWh"),
        "{csv}"
    );
}

/// Model names a hostile or careless input may carry: each renders (CSRD with all of
/// them in its tables and charts, and the AI Act report of each), the PDF shows what
/// cannot be drawn as code points and long names cut, the CSV keeps them whole, and
/// every AI Act report has its own file name.
#[test]
fn any_model_name_renders_and_keeps_its_own_file() {
    let long = "m".repeat(40_000);
    let names = [
        "通义千问-72B",
        "llama 🦙 3",
        "bad\u{7}name\u{0}\nwith controls",
        long.as_str(),
        "a/b",
        "a?b",
        "a b",
    ];
    let data = loaded(vec![month("2026-10", &names)]);
    let templates = Templates::builtin().unwrap();
    let config = ReportConfig::default();
    let csrd = gco_report::csrd(&data, &config, &templates).unwrap();
    let text = pdftotext(&csrd.pdf);
    assert!(text.contains("U+901A"), "CJK shown as code points:\n{text}");
    assert!(text.contains("U+1F999"), "emoji shown as a code point");
    assert!(
        !text.contains(&"m".repeat(201)),
        "a long name is cut for display"
    );
    let model_csv = csrd
        .csvs
        .iter()
        .find(|c| c.name == "model-month.csv")
        .expect("model-month.csv");
    let csv = String::from_utf8(model_csv.bytes.clone()).unwrap();
    assert!(csv.contains(&long), "the CSV keeps the whole name");
    assert!(csv.contains("通义千问-72B"));
    let mut files = std::collections::BTreeSet::new();
    for name in names {
        let r = gco_report::ai_act(&data, name, &config, &templates)
            .unwrap_or_else(|e| panic!("{name:.40}: {e:#}"));
        assert!(r.name.len() < 120, "{}", r.name);
        assert!(files.insert(r.name.clone()), "{} twice", r.name);
    }
    // `a/b`, `a?b` and `a b` keep a readable stem and differ by the id's digest.
    assert_eq!(
        files
            .iter()
            .filter(|f| f.starts_with("ai-act-a_b-"))
            .count(),
        3
    );
    assert_eq!(gco_report::file_safe("llama-3.1-8b"), "llama-3.1-8b");
}

/// A month whose run left batches out, or verified nothing, says so on page 1.
#[test]
fn excluded_batches_and_empty_months_are_stated_on_the_first_page() {
    let mut m = month("2026-10", &["llama-8b"]);
    m.manifest.coverage.batches_excluded = 1;
    let mut empty = month("2026-11", &["llama-8b"]);
    empty.manifest.coverage.records_verified = 0;
    let data = loaded(vec![m, empty]);
    let templates = Templates::builtin().unwrap();
    for pdf in [
        gco_report::csrd(&data, &ReportConfig::default(), &templates)
            .unwrap()
            .pdf,
        gco_report::ai_act(&data, "llama-8b", &ReportConfig::default(), &templates)
            .unwrap()
            .pdf,
    ] {
        let text = pdftotext(&pdf);
        let page1 = text.split('\u{c}').next().unwrap();
        assert!(page1.contains("Data coverage warning"), "{page1}");
        assert!(
            page1.contains("2026-10: 1 of 4 ledger batches failed verification"),
            "{page1}"
        );
        assert!(
            page1.contains("2026-11: no verified ledger record"),
            "{page1}"
        );
    }
    let clean = loaded(vec![month("2026-10", &["llama-8b"])]);
    let text = pdftotext(
        &gco_report::csrd(&clean, &ReportConfig::default(), &templates)
            .unwrap()
            .pdf,
    );
    assert!(!text.contains("Data coverage warning"));
}
