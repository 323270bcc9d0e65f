//! `gco serve` as a client uses it: the real binary on loopback over a demo store, its
//! routes fetched over HTTP and compared with the store's bytes and with
//! `gco certificate show`; SIGTERM stops it cleanly; its log names routes, never ids.

mod common;

use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::process::{Child, Command as Std, Stdio};

use assert_cmd::cargo::CommandCargoExt;
use serde_json::Value;
use sha2::Digest;

fn gco(store: &Path) -> Std {
    let mut c = Std::cargo_bin("gco").unwrap();
    c.arg("--store").arg(format!("file://{}", store.display()));
    c.env_remove("GCO_STORE")
        .env_remove("GCO_CONFIG")
        .env_remove("GCO_ISSUER_DIR")
        .env_remove("GCO_LOG");
    c
}

fn ok_json(out: std::process::Output) -> Value {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// The server process; killed if the test fails before it stops it.
struct Server {
    child: Child,
    url: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts the command the demo printed (`gco serve --store ... --did-document ... --public-read`) on
/// a free port, and reads the address it bound from its first line.
fn start(command: &str) -> Server {
    let args: Vec<&str> = command.split_whitespace().collect();
    assert_eq!(args[..2], ["gco", "serve"], "{command}");
    let mut child = Std::cargo_bin("gco")
        .unwrap()
        .env_remove("GCO_STORE")
        .env_remove("GCO_CONFIG")
        .env_remove("GCO_LOG")
        .arg("--json")
        .args(&args[1..])
        .args(["--listen", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let v: Value = serde_json::from_str(&line).unwrap_or_else(|e| panic!("{e}: {line:?}"));
    let url = v["listening"].as_str().unwrap().to_string();
    assert!(url.starts_with("http://127.0.0.1:"), "{url}");
    Server { child, url }
}

fn sha256_hex(b: &[u8]) -> String {
    hex::encode(sha2::Sha256::digest(b))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_server_answers_what_the_store_holds() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().join("demo");
    let demo = ok_json(
        Std::cargo_bin("gco")
            .unwrap()
            .env_remove("GCO_STORE")
            .args([
                "--json", "demo", "--days", "2", "--nodes", "1", "--seed", "3",
            ])
            .args(["--peak-rate", "5", "--legacy", "--dir"])
            .arg(&d)
            .output()
            .unwrap(),
    );
    // One inference's stored credentials, as the CLI finds them.
    let iid = common::middle_inference_id(&d);
    let shown = ok_json(
        gco(&d)
            .args(["--json", "certificate", "show", &iid])
            .output()
            .unwrap(),
    );
    let stored = |format: &str| -> String {
        shown
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["format"] == format)
            .unwrap()["document"]
            .as_str()
            .unwrap()
            .to_string()
    };

    let serve = demo["serve"].as_str().unwrap();
    assert_eq!(
        serve,
        format!(
            "gco serve --store file://{} --did-document {} --public-read",
            d.display(),
            d.join("did.json").display()
        )
    );
    // An admin key for POST /credentials/issue, and the demo issuer's key to sign with.
    let admin = ok_json(
        gco(&d)
            .args(["--json", "serve", "key", "create", "--scope", "admin"])
            .output()
            .unwrap(),
    )["key"]
        .as_str()
        .unwrap()
        .to_string();
    let mut server = start(&format!(
        "{serve} --issuer-dir {}",
        d.join("issuer").display()
    ));
    let http = reqwest::Client::new();
    let get = |path: &str, accept: Option<&str>| {
        let mut r = http.get(format!("{}{path}", server.url));
        if let Some(a) = accept {
            r = r.header("accept", a);
        }
        r.send()
    };
    let text = |r: reqwest::Response| async move {
        let status = r.status().as_u16();
        let ctype = r
            .headers()
            .get("content-type")
            .map(|v| v.to_str().unwrap().to_string())
            .unwrap_or_default();
        (status, ctype, r.text().await.unwrap())
    };

    assert_eq!(
        text(get("/healthz", None).await.unwrap()).await,
        (200, "text/plain; charset=utf-8".into(), "ok\n".into())
    );
    assert_eq!(text(get("/readyz", None).await.unwrap()).await.0, 200);

    // Runs: the one version of 2026-10, its manifest byte for byte.
    let manifest = std::fs::read(d.join("runs/period=2026-10/version=0001/manifest.json")).unwrap();
    let runs: Value = get("/api/v1/runs", None)
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let as_of: Value = serde_json::from_slice::<Value>(&manifest).unwrap()["as_of"].clone();
    assert_eq!(
        runs,
        serde_json::json!({"runs": [{"period": "2026-10", "versions": [{
            "version": 1,
            "as_of": as_of,
            "manifest_sha256": sha256_hex(&manifest),
            "url": "/api/v1/runs/2026-10/1",
        }]}]})
    );
    let r = get("/api/v1/runs/2026-10/1", None).await.unwrap();
    assert_eq!(
        r.headers()["etag"].to_str().unwrap(),
        format!("\"{}\"", sha256_hex(&manifest))
    );
    assert_eq!(r.bytes().await.unwrap().as_ref(), manifest.as_slice());
    let (status, _, body) = text(get("/api/v1/runs/2026-10/9", None).await.unwrap()).await;
    assert_eq!(status, 404);
    let body: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(body["error"]["code"], "not_found");
    assert_eq!(
        body["error"]["message"],
        "2026-10 has no version 9 (versions: 1)"
    );
    let (status, _, body) = text(get("/api/v1/runs/2026-13/1", None).await.unwrap()).await;
    assert_eq!(
        (
            status,
            serde_json::from_str::<Value>(&body).unwrap()["error"]["code"].clone()
        ),
        (400, "usage".into())
    );

    // Certificates: the legacy JWS, and the VC in the form Accept asks for.
    let path = format!("/api/v1/certificate/{iid}");
    assert_eq!(
        text(get(&path, None).await.unwrap()).await,
        (200, "application/jose".into(), stored("legacy"))
    );
    let vc = format!("{path}/vc");
    assert_eq!(
        text(get(&vc, None).await.unwrap()).await,
        (200, "application/vc".into(), stored("vc-di"))
    );
    assert_eq!(
        text(get(&vc, Some("application/vc+jwt")).await.unwrap()).await,
        (200, "application/vc+jwt".into(), stored("vc-jwt"))
    );
    assert_eq!(
        text(
            get(&vc, Some("application/vc;q=0.5, application/vc+jwt;q=0.9"))
                .await
                .unwrap()
        )
        .await
        .1,
        "application/vc+jwt"
    );
    assert_eq!(
        text(get(&vc, Some("text/html")).await.unwrap()).await.0,
        406
    );
    assert_eq!(
        text(get(&vc, Some("application/vc;q=7")).await.unwrap())
            .await
            .0,
        400
    );
    for unknown in [
        "/api/v1/certificate/no-such-inference",
        "/api/v1/certificate/no-such-inference/vc",
    ] {
        let (status, _, body) = text(get(unknown, None).await.unwrap()).await;
        assert_eq!(status, 404, "{unknown}");
        let body: Value = serde_json::from_str(&body).unwrap();
        assert!(
            body["error"]["message"]
                .as_str()
                .unwrap()
                .starts_with("no stored credential for inference \"no-such-inference\""),
            "{body}"
        );
    }

    // Listing: pages of 7 neither skip nor repeat a stored credential.
    let stored_rows: Vec<(String, String)> = common::inference_credentials(&d)
        .into_iter()
        .map(|(k, f, _)| (k, f))
        .collect();
    let mut listed: Vec<(String, String)> = Vec::new();
    let mut cursor: Option<String> = None;
    let mut pages = 0;
    loop {
        let mut path = "/api/v1/certificates?period=2026-10&limit=7".to_string();
        if let Some(c) = &cursor {
            path.push_str(&format!("&cursor={c}"));
        }
        let page: Value = get(&path, None).await.unwrap().json().await.unwrap();
        assert_eq!(
            (page["period"].as_str(), page["version"].as_u64()),
            (Some("2026-10"), Some(1))
        );
        let items = page["items"].as_array().unwrap();
        assert!(items.len() <= 7);
        listed.extend(items.iter().map(|i| {
            (
                i["inference_id"].as_str().unwrap().to_string(),
                i["format"].as_str().unwrap().to_string(),
            )
        }));
        pages += 1;
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => break,
        }
    }
    assert_eq!(listed, stored_rows);
    assert_eq!(pages, stored_rows.len().div_ceil(7));
    // offset: the same rows as the cursor pages, from any start, capped.
    let page: Value = get("/api/v1/certificates?period=2026-10&offset=5&limit=4", None)
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let at5: Vec<(String, String)> = page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            (
                i["inference_id"].as_str().unwrap().to_string(),
                i["format"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(at5, stored_rows[5..9]);
    // Its cursor continues right after it.
    let next = page["next_cursor"].as_str().unwrap();
    let page: Value = get(&format!("/api/v1/certificates?cursor={next}&limit=1"), None)
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(page["items"][0]["inference_id"], stored_rows[9].0.as_str());
    for bad in ["offset=10001", &format!("offset=1&cursor={next}")] {
        assert_eq!(
            get(&format!("/api/v1/certificates?{bad}"), None)
                .await
                .unwrap()
                .status(),
            400,
            "{bad}"
        );
    }

    // The CSV export: a header, then every stored credential in stored order.
    let r = get("/api/v1/compliance/export?period=2026-10", None)
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(
        r.headers()["content-disposition"],
        "attachment; filename=\"gco-certificates-2026-10-v0001.csv\""
    );
    assert!(
        r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/csv")
    );
    let csv_text = r.text().await.unwrap();
    let mut reader = csv::Reader::from_reader(csv_text.as_bytes());
    assert_eq!(
        reader.headers().unwrap().iter().collect::<Vec<_>>(),
        [
            "period",
            "credential_version",
            "inference_id",
            "node_id",
            "seq",
            "format",
            "credential_id",
            "status_index"
        ]
    );
    let exported: Vec<(String, String)> = reader
        .records()
        .map(|r| {
            let r = r.unwrap();
            assert_eq!((&r[0], &r[1]), ("2026-10", "1"));
            (r[2].to_string(), r[5].to_string())
        })
        .collect();
    assert_eq!(exported, stored_rows);

    // A model's figures equal the run's aggregates: the model_day rows summed, and
    // the model_month table (written independently by the run) agrees.
    let agg = |table: &str| {
        let path = format!("emissions/period=2026-10/version=0001/aggregates/{table}.parquet");
        let bytes = std::fs::read(d.join(&path)).unwrap();
        gco_pipelines::aggregate::read_table(
            &path,
            bytes.into(),
            gco_pipelines::aggregate::table_keys(table).unwrap(),
        )
        .unwrap()
    };
    let month = agg("model_month");
    // The first model with inferences (idle rows have their own key).
    let model = month
        .iter()
        .find(|(_, s)| s.inferences > 0)
        .map(|(k, _)| k[0].clone())
        .unwrap();
    let mut expected = gco_pipelines::aggregate::Sums::default();
    for (_, s) in month.iter().filter(|(k, _)| k[0] == model) {
        expected.add(s);
    }
    let mut by_day: std::collections::BTreeMap<String, gco_pipelines::aggregate::Sums> =
        Default::default();
    for (k, s) in agg("model_day").iter().filter(|(k, _)| k[1] == model) {
        by_day.entry(k[0].clone()).or_default().add(s);
    }
    let v: Value = get(&format!("/api/v1/model/{model}/emissions"), None)
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let t = &v["totals"];
    assert_eq!(t["inferences"].as_u64(), Some(expected.inferences));
    assert_eq!(t["prompt_tokens"].as_u64(), Some(expected.prompt_tokens));
    for (field, want) in [
        ("it_energy_mj", expected.it_energy_mj),
        ("facility_energy_mj", expected.facility_energy_mj),
        ("location_ng", expected.location_ng),
        ("market_ng", expected.market_ng),
        ("marginal_ng", expected.marginal_ng),
        ("embodied_ng", expected.embodied_ng),
    ] {
        assert_eq!(t[field], want.to_string(), "{field}");
    }
    assert_eq!(
        t["display"]["facility_energy_kwh"],
        gco_report::fixed::decimal(expected.facility_energy_mj, 3_600_000_000, 6)
    );
    assert_eq!(
        v["per_inference"]["location_ng"],
        gco_report::fixed::decimal(expected.location_ng, i128::from(expected.inferences), 6)
    );
    let days: Vec<(String, String)> = v["daily"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            (
                d["date"].as_str().unwrap().to_string(),
                d["facility_energy_mj"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let want: Vec<(String, String)> = by_day
        .iter()
        .filter(|(_, s)| s.inferences > 0)
        .map(|(d, s)| (d.clone(), s.facility_energy_mj.to_string()))
        .collect();
    assert_eq!(days, want);
    assert_eq!(days.len(), 2, "the demo's two days");
    // One day: the daily series of that day only.
    let first = &days[0].0;
    let v: Value = get(
        &format!("/api/v1/model/{model}/emissions?from={first}&to={first}"),
        None,
    )
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    assert_eq!(v["totals"]["facility_energy_mj"], days[0].1.as_str());
    for (bad, status) in [
        (
            format!("/api/v1/model/{model}/emissions?from=2026-13-01"),
            400,
        ),
        (
            format!("/api/v1/model/{model}/emissions?from=2026-10-05&to=2026-10-01"),
            400,
        ),
        ("/api/v1/model/no-such-model/emissions".to_string(), 404),
        ("/api/v1/compliance/export?period=2026-09".to_string(), 404),
        ("/api/v1/compliance/export".to_string(), 400),
    ] {
        assert_eq!(get(&bad, None).await.unwrap().status(), status, "{bad}");
    }
    let page: Value = get("/api/v1/certificates?format=legacy&limit=1000", None)
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let legacy: Vec<&(String, String)> =
        stored_rows.iter().filter(|(_, f)| f == "legacy").collect();
    assert_eq!(page["items"].as_array().unwrap().len(), legacy.len());
    assert_eq!(
        page["items"][0]["url"],
        format!("/api/v1/certificate/{}", legacy[0].0)
    );
    for bad in [
        "limit=0",
        "limit=1001",
        "cursor=2026-10.1.x.0",
        "format=pdf",
        "colour=red",
    ] {
        let (status, _, _) = text(
            get(&format!("/api/v1/certificates?{bad}"), None)
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(status, 400, "{bad}");
    }

    // VC-API: the stored credentials verify through the server, down to the ledger;
    // a changed one is refused with 400 and the failed check's code.
    let verify = |path: &'static str, body: Value| {
        let http = http.clone();
        let url = format!("{}{path}", server.url);
        async move {
            let r = http.post(url).json(&body).send().await.unwrap();
            let status = r.status().as_u16();
            (status, r.json::<Value>().await.unwrap())
        }
    };
    let di: Value = serde_json::from_str(&stored("vc-di")).unwrap();
    let enveloped = serde_json::json!({
        "@context": ["https://www.w3.org/ns/credentials/v2"],
        "type": "EnvelopedVerifiableCredential",
        "id": format!("data:application/vc+jwt,{}", stored("vc-jwt")),
    });
    for (what, vc) in [
        ("vc-di", di.clone()),
        ("vc-jwt", enveloped.clone()),
        ("legacy", Value::String(stored("legacy"))),
    ] {
        let (status, v) = verify(
            "/credentials/verify",
            serde_json::json!({"verifiableCredential": vc}),
        )
        .await;
        assert_eq!(status, 200, "{what}: {v}");
        assert_eq!(v["errors"], serde_json::json!([]), "{what}");
        let checks: Vec<&str> = v["checks"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c.as_str().unwrap())
            .collect();
        assert!(checks[0].starts_with("signature ("), "{what}: {checks:?}");
        if what != "legacy" {
            assert!(
                checks.iter().any(|c| c.starts_with("not revoked")),
                "{what}: {checks:?}"
            );
            assert!(
                checks.iter().any(|c| c.contains("Merkle root")),
                "{what}: {checks:?}"
            );
        }
    }
    // Its facility energy lowered by 1 mJ.
    let mut changed = di.clone();
    let mj = &mut changed["credentialSubject"]["facilityEnergyMj"];
    *mj = match mj {
        Value::String(t) => Value::from((t.parse::<i64>().unwrap() - 1).to_string()),
        Value::Number(n) => Value::from(n.as_i64().unwrap() - 1),
        other => panic!("facilityEnergyMj is {other}"),
    };
    let (status, v) = verify(
        "/credentials/verify",
        serde_json::json!({"verifiableCredential": changed}),
    )
    .await;
    assert_eq!(status, 400, "{v}");
    assert_eq!(v["checks"], serde_json::json!([]));
    assert_eq!(v["errors"][0]["code"], "bad_signature", "{v}");
    let (status, v) = verify(
        "/presentations/verify",
        serde_json::json!({"verifiablePresentation": {
            "@context": ["https://www.w3.org/ns/credentials/v2"],
            "type": ["VerifiablePresentation"],
            "verifiableCredential": [di, enveloped],
        }}),
    )
    .await;
    assert_eq!(status, 200, "{v}");
    assert!(
        v["checks"][0]
            .as_str()
            .unwrap()
            .starts_with("credential 0: signature")
    );
    for (bad, body) in [
        ("no credential", serde_json::json!({"options": {}})),
        (
            "unknown member",
            serde_json::json!({"verifiableCredential": "x", "colour": 1}),
        ),
        ("a number", serde_json::json!({"verifiableCredential": 7})),
    ] {
        let (status, v) = verify("/credentials/verify", body).await;
        assert_eq!(
            (status, v["error"]["code"].as_str()),
            (400, Some("usage")),
            "{bad}: {v}"
        );
    }
    let (status, v) = verify(
        "/credentials/verify",
        serde_json::json!({"verifiableCredential": "not.a.jws"}),
    )
    .await;
    assert_eq!(status, 400, "{v}");
    assert_eq!(v["checks"], serde_json::json!([]));

    // A verifier that fetches only what the credential names, from this server (its
    // host stands for the issuer's, carbon.demo.example): the DID document at the
    // did:web location and the status list; `gco vc verify` then needs nothing else.
    let jwt = stored("vc-jwt");
    let issuer = di["issuer"].as_str().unwrap().to_string();
    let did_url = gco_credentials::issuer::did_web_url(&issuer).unwrap();
    let on_server = |url: &str| {
        let rest = url.strip_prefix("https://").unwrap();
        format!("/{}", rest.split_once('/').unwrap().1)
    };
    assert_eq!(on_server(&did_url), "/.well-known/did.json");
    let fetched = tempfile::tempdir().unwrap();
    let did_file = fetched.path().join("did.json");
    std::fs::write(
        &did_file,
        get(&on_server(&did_url), None)
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap(),
    )
    .unwrap();
    let list_file = fetched.path().join("list.jwt");
    let list_url = di["credentialStatus"]["statusListCredential"]
        .as_str()
        .unwrap();
    std::fs::write(
        &list_file,
        get(&on_server(list_url), None)
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap(),
    )
    .unwrap();
    let vc_file = fetched.path().join("vc.jwt");
    std::fs::write(&vc_file, &jwt).unwrap();
    let out = Std::cargo_bin("gco")
        .unwrap()
        .env_remove("GCO_STORE")
        .env_remove("GCO_CONFIG")
        .env_remove("GCO_ISSUER_DIR")
        .args(["--json", "vc", "verify"])
        .arg(&vc_file)
        .arg("--did-document")
        .arg(&did_file)
        .arg("--status-list")
        .arg(&list_file)
        .output()
        .unwrap();
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(out.status.success(), "{v}");
    assert_eq!(v["valid"], true, "{v}");
    assert!(
        v["checked"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c.as_str().unwrap().starts_with("not revoked")),
        "{v}"
    );

    // VC-API issuance (scope admin): a submitted VC 2.0 credential signed by the
    // demo issuer, in both forms, each verifying against the hosted DID document.
    let issue = |body: Value, key: Option<String>| {
        let http = http.clone();
        let url = format!("{}/credentials/issue", server.url);
        async move {
            let mut r = http.post(url).json(&body);
            if let Some(k) = key {
                r = r.bearer_auth(k);
            }
            let r = r.send().await.unwrap();
            let status = r.status().as_u16();
            (status, r.json::<Value>().await.unwrap())
        }
    };
    let unsigned = serde_json::json!({
        "@context": ["https://www.w3.org/ns/credentials/v2"],
        "id": "urn:example:issued-1",
        "type": ["VerifiableCredential"],
        "issuer": di["issuer"],
        "validFrom": "2026-12-01T00:00:00Z",
        "credentialSubject": {"id": "urn:example:subject", "note": "issued through the VC-API"},
    });
    let (status, v) = issue(serde_json::json!({"credential": unsigned}), None).await;
    assert_eq!(
        (status, v["error"]["code"].as_str()),
        (401, Some("unauthorized")),
        "public read does not open issuance"
    );
    let did_doc: Value =
        serde_json::from_slice(&std::fs::read(d.join("did.json")).unwrap()).unwrap();
    let resolver = gco_credentials::issuer::Resolver::new(vec![did_doc]);
    let (status, v) = issue(
        serde_json::json!({"credential": unsigned}),
        Some(admin.clone()),
    )
    .await;
    assert_eq!(status, 201, "{v}");
    let signed = &v["verifiableCredential"];
    assert_eq!(signed["proof"]["cryptosuite"], "eddsa-jcs-2022");
    let mut without_proof = signed.clone();
    without_proof.as_object_mut().unwrap().remove("proof");
    assert_eq!(
        without_proof, unsigned,
        "the credential is signed as submitted"
    );
    gco_credentials::di::verify(signed, |vm| resolver.resolve(vm)).unwrap();
    let mut forged = signed.clone();
    forged["credentialSubject"]["note"] = Value::from("changed");
    assert!(gco_credentials::di::verify(&forged, |vm| resolver.resolve(vm)).is_err());
    let (status, v) = issue(
        serde_json::json!({"credential": unsigned, "options": {"format": "vc-jwt"}}),
        Some(admin.clone()),
    )
    .await;
    assert_eq!(status, 201, "{v}");
    let env = &v["verifiableCredential"];
    assert_eq!(env["type"], "EnvelopedVerifiableCredential");
    let jws = env["id"]
        .as_str()
        .unwrap()
        .strip_prefix("data:application/vc+jwt,")
        .unwrap();
    let parsed = gco_credentials::jose::Jws::parse(jws).unwrap();
    assert_eq!(parsed.header_str("typ"), Some("vc+jwt"));
    parsed
        .verify(&resolver.resolve(parsed.header_str("kid").unwrap()).unwrap())
        .unwrap();
    assert_eq!(parsed.payload_json().unwrap(), unsigned);
    let mut no_context = unsigned.clone();
    no_context.as_object_mut().unwrap().remove("@context");
    let mut other_issuer = unsigned.clone();
    other_issuer["issuer"] = Value::from("did:web:someone-else.example");
    let mut late = unsigned.clone();
    late["validUntil"] = Value::from("2026-01-01T00:00:00Z");
    for (what, c) in [
        ("no @context", no_context),
        ("another issuer", other_issuer),
        ("validUntil before validFrom", late),
        ("signed already", signed.clone()),
    ] {
        let (status, v) = issue(serde_json::json!({"credential": c}), Some(admin.clone())).await;
        assert_eq!(
            (status, v["error"]["code"].as_str()),
            (400, Some("usage")),
            "{what}: {v}"
        );
    }

    // The OpenAPI 3.1 document names every route this test used.
    let doc: Value = get("/openapi.json", None)
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(doc["openapi"], "3.1.0");
    let paths: Vec<&str> = doc["paths"]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    for p in [
        "/healthz",
        "/readyz",
        "/metrics",
        "/openapi.json",
        "/.well-known/did.json",
        "/ns/carbon/v1",
        "/schemas/emissions-credential/v1.json",
        "/status/{period}/{version}/{list}",
        "/api/v1/runs",
        "/api/v1/runs/{period}/{version}",
        "/api/v1/certificates",
        "/api/v1/certificate/{inference_id}",
        "/api/v1/certificate/{inference_id}/vc",
        "/api/v1/model/{model_id}/emissions",
        "/api/v1/compliance/export",
        "/credentials/verify",
        "/presentations/verify",
        "/api/v1/batches",
        "/api/v1/nodes/{node_id}/chain",
    ] {
        assert!(paths.contains(&p), "{p} is not in /openapi.json: {paths:?}");
    }
    assert_eq!(paths.len(), 20, "{paths:?}");
    assert_eq!(
        doc["components"]["securitySchemes"]["bearer"]["scheme"],
        "bearer"
    );

    // The status lists, at the URL the credentials name.
    let list_url = {
        let vc: Value = serde_json::from_str(&stored("vc-di")).unwrap();
        vc["credentialStatus"]["statusListCredential"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let list_path = &list_url[list_url.find("/status/").unwrap()..];
    assert_eq!(list_path, "/status/2026-10/0001/inferences");
    let r = get(list_path, None).await.unwrap();
    assert_eq!(
        (
            r.headers()["content-type"].to_str().unwrap(),
            r.headers()["cache-control"].to_str().unwrap()
        ),
        ("application/vc+jwt", "no-cache")
    );
    let list =
        std::fs::read(d.join("certificates/period=2026-10/version=0001/status/inferences.jwt"))
            .unwrap();
    assert_eq!(r.bytes().await.unwrap().as_ref(), list.as_slice());
    for (path, status) in [
        ("/status/2026-10/0002/inferences", 404),
        ("/status/2026-10/0001/nope", 400),
        ("/status/2026-99/0001/inferences", 400),
    ] {
        assert_eq!(
            text(get(path, None).await.unwrap()).await.0,
            status,
            "{path}"
        );
    }

    // gco's context and schema, at the paths of the URLs the credentials name.
    let vc: Value = serde_json::from_str(&stored("vc-di")).unwrap();
    for (url, file, media) in [
        (
            &vc["@context"][1],
            "docs/credentials/context-v1.jsonld",
            "application/ld+json",
        ),
        (
            &vc["credentialSchema"]["id"],
            "docs/credentials/schema-v1.json",
            "application/schema+json",
        ),
    ] {
        let url = url.as_str().unwrap();
        let path = &url["https://gco-carbon.github.io".len()..];
        let r = get(path, None).await.unwrap();
        assert_eq!(
            r.headers()["content-type"].to_str().unwrap(),
            media,
            "{path}"
        );
        let want = std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join(file)).unwrap();
        assert_eq!(r.bytes().await.unwrap().as_ref(), want.as_slice(), "{path}");
    }

    // The issuer's DID document, as the demo wrote it.
    let did = std::fs::read(d.join("did.json")).unwrap();
    let r = get("/.well-known/did.json", None).await.unwrap();
    assert_eq!(r.headers()["content-type"], "application/did+json");
    assert_eq!(r.bytes().await.unwrap().as_ref(), did.as_slice());
    let (status, _, body) = text(get("/no/such/route", None).await.unwrap()).await;
    assert_eq!(
        (status, body.contains("no route GET /no/such/route")),
        (404, true)
    );

    // Metrics: exact counts of what this test asked.
    let (status, ctype, metrics) = text(get("/metrics", None).await.unwrap()).await;
    assert_eq!(
        (status, ctype.starts_with("application/openmetrics-text")),
        (200, true)
    );
    for line in [
        r#"gco_http_requests_total{method="GET",route="/api/v1/certificate/{inference_id}/vc",status="200"} 3"#,
        r#"gco_http_requests_total{method="GET",route="/api/v1/certificate/{inference_id}/vc",status="406"} 1"#,
        r#"gco_http_requests_total{method="GET",route="/api/v1/runs",status="200"} 1"#,
        r#"gco_http_requests_total{method="GET",route="unmatched",status="404"} 1"#,
        r#"gco_http_request_duration_seconds_count{method="GET",route="/healthz"} 1"#,
    ] {
        assert!(metrics.lines().any(|l| l == line), "{line}\n{metrics}");
    }
    assert!(!metrics.contains(&iid));

    // SIGTERM: a clean stop (exit 0); the access log names routes, never the ids.
    // SAFETY: signals the child this test started and still owns.
    assert_eq!(
        unsafe { libc::kill(server.child.id() as i32, libc::SIGTERM) },
        0
    );
    let status = server.child.wait().unwrap();
    assert!(status.success(), "{status:?}");
    let mut log = String::new();
    server
        .child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut log)
        .unwrap();
    assert!(
        log.contains("route=/api/v1/certificate/{inference_id}/vc status=200"),
        "{log}"
    );
    assert!(log.contains("route=unmatched status=404"), "{log}");
    assert!(!log.contains(&iid), "{log}");
}
