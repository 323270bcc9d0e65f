//! Provider clients against local HTTP servers on loopback that reproduce the documented
//! response shapes and failure modes: token expiry, 429, 500, malformed JSON, unknown
//! zones, gaps, estimated points and the UK list/object quirk.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use gco_grid_data::providers::electricitymaps::ElectricityMaps;
use gco_grid_data::providers::uk::UkCarbonIntensity;
use gco_grid_data::providers::watttime::{Credentials, SignalType, WattTime};
use gco_grid_data::providers::{ProviderError, RetryPolicy};
use gco_grid_data::{Basis, MgPerKwh, Signal};
use gco_ledger::time::{format_utc, parse_utc};
use serde_json::{Value, json};

type Counters = Arc<Mutex<HashMap<String, u32>>>;

fn bump(c: &Counters, k: &str) -> u32 {
    let mut m = c.lock().unwrap();
    let v = m.entry(k.to_string()).or_insert(0);
    *v += 1;
    *v
}

fn count(c: &Counters, k: &str) -> u32 {
    c.lock().unwrap().get(k).copied().unwrap_or(0)
}

async fn serve(app: Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{addr}")
}

fn fast() -> RetryPolicy {
    RetryPolicy {
        attempts: 4,
        base_backoff: Duration::from_millis(1),
        max_backoff: Duration::from_millis(5),
        timeout: Duration::from_secs(5),
        total: Duration::from_secs(20),
    }
}

/// A provider that accepts the connection and never answers fails the request within
/// the policy's total time, however many attempts it allows.
#[tokio::test]
async fn a_hung_provider_fails_within_the_total_timeout() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((sock, _)) = listener.accept().await {
            held.push(sock); // read nothing, answer nothing
        }
    });
    let policy = RetryPolicy {
        attempts: 50,
        base_backoff: Duration::from_millis(10),
        max_backoff: Duration::from_millis(50),
        timeout: Duration::from_millis(400),
        total: Duration::from_millis(1500),
    };
    let uk = UkCarbonIntensity::new(&format!("http://{addr}"), policy).unwrap();
    let started = std::time::Instant::now();
    let e = uk
        .national(
            "GB-NATIONAL",
            t("2026-10-01T00:00:00Z"),
            t("2026-10-02T00:00:00Z"),
        )
        .await
        .unwrap_err();
    let took = started.elapsed();
    assert!(took >= Duration::from_millis(1000), "{took:?}");
    assert!(took < Duration::from_secs(5), "{took:?}");
    let msg = e.to_string();
    assert!(msg.contains("no answer within 1.5s"), "{msg}");
}

fn t(s: &str) -> i64 {
    parse_utc(s).unwrap()
}

// ---------------------------------------------------------------- WattTime

async fn wt_login(State(c): State<Counters>, headers: HeaderMap) -> Response {
    // "user:pass" in base64
    if headers.get("authorization").and_then(|v| v.to_str().ok()) != Some("Basic dXNlcjpwYXNz") {
        return (
            StatusCode::FORBIDDEN,
            Json(json!({"error": "Forbidden", "message": "bad credentials"})),
        )
            .into_response();
    }
    let n = bump(&c, "login");
    Json(json!({"token": format!("tok-{n}")})).into_response()
}

/// Bearer check: the first token "expires" after its first data call.
#[allow(clippy::result_large_err)] // a test helper returning the response to send
fn wt_auth(c: &Counters, headers: &HeaderMap) -> Result<(), Response> {
    let auth = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if auth == "Bearer tok-1" && bump(c, "tok-1-uses") > 1 {
        return Err((StatusCode::UNAUTHORIZED, "token expired").into_response());
    }
    if !auth.starts_with("Bearer tok-") {
        return Err((StatusCode::UNAUTHORIZED, "no token").into_response());
    }
    Ok(())
}

async fn wt_historical(
    State(c): State<Counters>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    if let Err(r) = wt_auth(&c, &headers) {
        return r;
    }
    let n = bump(&c, "historical");
    if n == 2 {
        return (
            StatusCode::TOO_MANY_REQUESTS,
            [("retry-after", "0")],
            "slow down",
        )
            .into_response();
    }
    if n == 3 {
        return (StatusCode::INTERNAL_SERVER_ERROR, "oops").into_response();
    }
    match q["region"].as_str() {
        "NOWHERE" => {
            return (
                StatusCode::BAD_REQUEST,
                Json(json!({"error": "Bad Request", "message": "region NOWHERE not found"})),
            )
                .into_response();
        }
        "BROKEN" => return (StatusCode::OK, "{\"data\": [").into_response(),
        _ => {}
    }
    let (start, end) = (t(&q["start"]), t(&q["end"]));
    let gap = (t("2026-10-02T00:00:00Z"), t("2026-10-02T01:00:00Z"));
    let mut data = Vec::new();
    let mut p = start;
    while p <= end {
        if !(p >= gap.0 && p < gap.1) {
            // 1000 lb/MWh, imputed at minute 0 of every hour.
            let minute = (p / 60_000_000) % 60;
            data.push(json!({"point_time": format_utc(p), "value": 1000.0 + (minute as f64) / 1000.0, "imputed_data_used": minute == 0}));
        }
        p += 300_000_000;
    }
    Json(json!({"data": data, "meta": {"data_point_period_seconds": 300, "region": q["region"], "signal_type": q["signal_type"], "units": "lbs_co2_per_mwh", "model": {"type": "binned_regression", "date": "2024-01-01"}, "warnings": []}})).into_response()
}

async fn wt_forecast(
    State(c): State<Counters>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    if let Err(r) = wt_auth(&c, &headers) {
        return r;
    }
    let h: i64 = q["horizon_hours"].parse().unwrap();
    let data: Vec<Value> = (0..h * 12).map(|i| json!({"point_time": format_utc(t("2026-11-26T00:00:00Z") + i * 300_000_000), "value": 800.5})).collect();
    Json(json!({"data": data, "meta": {"data_point_period_seconds": 300, "units": "lbs_co2_per_mwh", "generated_at": "2026-11-26T00:00:00Z"}})).into_response()
}

async fn wt_index(State(c): State<Counters>, headers: HeaderMap) -> Response {
    if let Err(r) = wt_auth(&c, &headers) {
        return r;
    }
    Json(json!({"data": [{"point_time": "2026-11-26T00:00:00Z", "value": 42.0}], "meta": {}}))
        .into_response()
}

#[tokio::test]
async fn watttime_login_refresh_chunks_retries_gaps_and_errors() {
    let c: Counters = Default::default();
    let app = Router::new()
        .route("/login", get(wt_login))
        .route("/v3/historical", get(wt_historical))
        .route("/v3/forecast", get(wt_forecast))
        .route("/v3/signal-index", get(wt_index))
        .with_state(c.clone());
    let base = serve(app).await;
    let creds = Credentials {
        username: "user".into(),
        password: "pass".into(),
    };
    let wt = WattTime::new(&base, creds.clone(), fast()).unwrap();
    assert_eq!(format!("{creds:?}"), "Credentials(user, <redacted>)");

    // 40 days: two requests (32 + 8 days); the first token expires after one call, the
    // second request meets a 429 and a 500 before it succeeds.
    let (from, to) = (t("2026-10-01T00:00:00Z"), t("2026-11-10T00:00:00Z"));
    let f = wt
        .historical("CAISO_NORTH", "US-CA", SignalType::Co2Moer, from, to)
        .await
        .unwrap();
    assert_eq!(count(&c, "login"), 2, "token refreshed after the 401");
    assert_eq!(count(&c, "historical"), 4, "2 chunks + one 429 + one 500");
    assert_eq!(f.meta.len(), 2);
    // 40 days of 5-minute points, minus the one-hour gap.
    assert_eq!(f.points.len(), 40 * 288 - 12);
    assert_eq!(
        f.gaps,
        vec![(t("2026-10-02T00:00:00Z"), t("2026-10-02T01:00:00Z"))]
    );
    let p = &f.points[1];
    assert_eq!(
        (p.time, p.period_s, p.signal, p.basis),
        (
            t("2026-10-01T00:05:00Z"),
            300,
            Signal::Marginal,
            Basis::Direct
        )
    );
    // 1000.005 lb/MWh = 453.594638... g/kWh
    assert_eq!(p.value, MgPerKwh(453_595));
    assert!(
        f.points[0].estimated && !p.estimated,
        "imputed points are estimated"
    );
    assert_eq!(f.estimated(), 40 * 24 - 1);

    let fc = wt
        .forecast("CAISO_NORTH", "US-CA", SignalType::Co2Moer, 2)
        .await
        .unwrap();
    assert_eq!(fc.points.len(), 24);
    assert!(
        fc.points
            .iter()
            .all(|p| p.estimated && p.value == MgPerKwh::from_milli_lb_per_mwh(800_500))
    );
    assert_eq!(wt.signal_index("CAISO_NORTH", "US-CA").await.unwrap(), 42.0);

    match wt
        .historical(
            "NOWHERE",
            "US-XX",
            SignalType::Co2Aoer,
            from,
            from + 3_600_000_000,
        )
        .await
    {
        Err(ProviderError::UnknownZone { zone, message, .. }) => assert_eq!(
            (zone.as_str(), message.as_str()),
            ("US-XX", "region NOWHERE not found")
        ),
        other => panic!("{other:?}"),
    }
    match wt
        .historical(
            "BROKEN",
            "US-CA",
            SignalType::Co2Moer,
            from,
            from + 3_600_000_000,
        )
        .await
    {
        Err(ProviderError::Malformed { detail, .. }) => assert!(detail.starts_with("not JSON")),
        other => panic!("{other:?}"),
    }
    let bad = WattTime::new(
        &base,
        Credentials {
            username: "user".into(),
            password: "wrong".into(),
        },
        fast(),
    )
    .unwrap();
    let err = bad.signal_index("CAISO_NORTH", "US-CA").await.unwrap_err();
    assert!(
        matches!(err, ProviderError::Auth { status: 403, .. }),
        "{err:?}"
    );
    assert!(
        !err.to_string().contains("wrong"),
        "no secret in the message"
    );
}

// ---------------------------------------------------------------- Electricity Maps

fn em_entry(time: i64, value: Value, estimated: bool) -> Value {
    json!({"zone": "DE", "carbonIntensity": value, "datetime": format_utc(time), "updatedAt": "2026-11-26T00:00:00Z",
           "createdAt": "2026-11-20T00:00:00Z", "emissionFactorType": "direct", "isEstimated": estimated,
           "estimationMethod": if estimated { json!("TIME_SLICER_AVERAGE") } else { Value::Null }})
}

async fn em_handler(
    State(c): State<Counters>,
    Path(kind): Path<String>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    if headers.get("auth-token").and_then(|v| v.to_str().ok()) != Some("em-key") {
        return (
            StatusCode::UNAUTHORIZED,
            Json(json!({"message": "invalid auth-token"})),
        )
            .into_response();
    }
    if q.get("emissionFactorType").map(String::as_str) != Some("direct")
        || q.get("shouldUseFallbackCallerLookup").map(String::as_str) != Some("false")
    {
        return (StatusCode::BAD_REQUEST, "missing parameters").into_response();
    }
    if q["zone"] == "XX" {
        return (
            StatusCode::NOT_FOUND,
            Json(json!({"error": "Zone 'XX' does not exist."})),
        )
            .into_response();
    }
    if bump(&c, &kind) == 1 && kind == "past-range" {
        return (StatusCode::BAD_GATEWAY, "upstream").into_response();
    }
    match kind.as_str() {
        "latest" => Json(em_entry(t("2026-11-26T10:00:00Z"), json!(331.0), true)).into_response(),
        "history" => Json(json!({"zone": "DE", "history": (0..24).map(|h| em_entry(t("2026-11-25T11:00:00Z") + h * 3_600_000_000, json!(300 + h), false)).collect::<Vec<_>>()})).into_response(),
        "past-range" => {
            if q["zone"] == "PL" {
                return (StatusCode::OK, Json(json!({"zone": "PL", "data": [{"datetime": "yesterday", "carbonIntensity": 5}]}))).into_response();
            }
            let (start, end) = (t(&q["start"]), t(&q["end"]));
            let mut data = Vec::new();
            let mut h = start;
            while h < end {
                let hour = (h / 3_600_000_000) % 24;
                // 03:00 is a gap (null), 04:00 estimated.
                let v = if hour == 3 { Value::Null } else { json!(250.5 + hour as f64) };
                data.push(em_entry(h, v, hour == 4));
                h += 3_600_000_000;
            }
            Json(json!({"zone": q["zone"], "data": data})).into_response()
        }
        _ => StatusCode::NOT_FOUND.into_response(),
    }
}

#[tokio::test]
async fn electricitymaps_latest_history_ranges_and_errors() {
    let c: Counters = Default::default();
    let base = serve(
        Router::new()
            .route("/carbon-intensity/{kind}", get(em_handler))
            .with_state(c.clone()),
    )
    .await;
    let em = ElectricityMaps::new(&base, "em-key".into(), Basis::Direct, fast()).unwrap();
    assert!(!format!("{em:?}").contains("em-key"));

    let l = em.latest("DE", "DE").await.unwrap();
    assert_eq!(l.points.len(), 1);
    assert_eq!(
        (l.points[0].value, l.points[0].estimated, l.points[0].basis),
        (MgPerKwh(331_000), true, Basis::Direct)
    );
    assert_eq!(em.history("DE", "DE").await.unwrap().points.len(), 24);

    // 12 days: two requests (10 + 2 days), the first after a 502; 03:00 is null each day.
    let (from, to) = (t("2026-10-01T00:00:00Z"), t("2026-10-13T00:00:00Z"));
    let f = em.past_range("DE", "DE", from, to).await.unwrap();
    assert_eq!(count(&c, "past-range"), 3);
    assert_eq!(f.points.len(), 12 * 23);
    assert_eq!(f.gaps.len(), 12);
    assert_eq!(
        f.gaps[0],
        (t("2026-10-01T03:00:00Z"), t("2026-10-01T04:00:00Z"))
    );
    assert_eq!(f.estimated(), 12);
    assert_eq!(f.points[2].value, MgPerKwh(252_500));

    match em.latest("XX", "XX").await {
        Err(ProviderError::UnknownZone { message, .. }) => {
            assert_eq!(message, "Zone 'XX' does not exist.")
        }
        other => panic!("{other:?}"),
    }
    match em.past_range("PL", "PL", from, from + 3_600_000_000).await {
        Err(ProviderError::Malformed { detail, .. }) => {
            assert!(detail.contains("datetime"), "{detail}")
        }
        other => panic!("{other:?}"),
    }
    let wrong = ElectricityMaps::new(&base, "nope".into(), Basis::Direct, fast()).unwrap();
    assert!(matches!(
        wrong.latest("DE", "DE").await,
        Err(ProviderError::Auth { status: 401, .. })
    ));
}

// ---------------------------------------------------------------- UK Carbon Intensity

fn uk_period(from: i64, forecast: i64, actual: Option<i64>) -> Value {
    let f = |t: i64| format_utc(t)[..16].to_string() + "Z";
    json!({"from": f(from), "to": f(from + 1_800_000_000), "intensity": {"forecast": forecast, "actual": actual, "index": "moderate"}})
}

async fn uk_national(Path((from, to)): Path<(String, String)>) -> Response {
    if from.starts_with("2026-12-24") {
        return (StatusCode::OK, "<html>maintenance</html>").into_response();
    }
    let (a, b) = (t(&from.replace('Z', ":00Z")), t(&to.replace('Z', ":00Z")));
    let mut data = Vec::new();
    let mut p = a;
    while p < b {
        let i = (p - a) / 1_800_000_000;
        // The last two periods have no actual yet.
        let actual = (p + 2 * 1_800_000_000 < b).then_some(180 + i % 7);
        data.push(uk_period(p, 190 + i % 5, actual));
        p += 1_800_000_000;
    }
    Json(json!({"data": data})).into_response()
}

fn uk_region(id: &str, periods: Vec<Value>) -> Value {
    json!({"regionid": id.parse::<i64>().unwrap_or(0), "dnoregion": "UKPN London", "shortname": "London", "data": periods})
}

async fn uk_regional_now(Path(id): Path<String>) -> Response {
    if id == "99" {
        return (StatusCode::BAD_REQUEST, Json(json!({"error": {"code": "400 Bad Request", "message": "Please enter a valid region ID"}}))).into_response();
    }
    // Current-time form: data is a LIST of regions.
    Json(json!({"data": [uk_region(&id, vec![uk_period(t("2026-11-26T10:00:00Z"), 150, None)])]}))
        .into_response()
}

async fn uk_regional_range(Path((from, _to, id)): Path<(String, String, String)>) -> Response {
    let a = t(&from.replace('Z', ":00Z"));
    let periods = (0..4)
        .map(|i| uk_period(a + i * 1_800_000_000, 100 + i, None))
        .collect();
    // Range form: data is an OBJECT.
    Json(json!({"data": uk_region(&id, periods)})).into_response()
}

#[tokio::test]
async fn uk_national_regional_quirk_and_errors() {
    let app = Router::new()
        .route("/intensity/{from}/{to}", get(uk_national))
        .route("/regional/regionid/{id}", get(uk_regional_now))
        .route(
            "/regional/intensity/{from}/{to}/regionid/{id}",
            get(uk_regional_range),
        );
    let base = serve(app).await;
    let uk = UkCarbonIntensity::new(&base, fast()).unwrap();

    // 15 days: a 14-day and a 1-day request; 2 estimated periods at the end of each.
    let (from, to) = (t("2026-10-01T00:00:00Z"), t("2026-10-16T00:00:00Z"));
    let f = uk.national("GB-NATIONAL", from, to).await.unwrap();
    assert_eq!(f.points.len(), 15 * 48);
    assert_eq!(f.meta.len(), 2);
    assert_eq!(f.estimated(), 4);
    assert!(f.gaps.is_empty());
    assert_eq!(
        (
            f.points[1].value,
            f.points[1].period_s,
            f.points[1].estimated
        ),
        (MgPerKwh(181_000), 1800, false)
    );
    let last = f.points.last().unwrap();
    assert!(last.estimated);
    assert_eq!(last.value, MgPerKwh((190 + 47 % 5) * 1000));

    let now = uk.regional("GB-UKREGION-13", "13", None).await.unwrap();
    assert_eq!(
        (
            now.points.len(),
            now.points[0].value,
            now.points[0].estimated
        ),
        (1, MgPerKwh(150_000), true)
    );
    let range = uk
        .regional(
            "GB-UKREGION-13",
            "13",
            Some((from, from + 2 * 3_600_000_000)),
        )
        .await
        .unwrap();
    assert_eq!(
        range.points.iter().map(|p| p.value.0).collect::<Vec<_>>(),
        vec![100_000, 101_000, 102_000, 103_000]
    );

    match uk.regional("GB-UKREGION-99", "99", None).await {
        Err(ProviderError::UnknownZone { message, .. }) => {
            assert_eq!(message, "Please enter a valid region ID")
        }
        other => panic!("{other:?}"),
    }
    let xmas = t("2026-12-24T00:00:00Z");
    assert!(matches!(
        uk.national("GB-NATIONAL", xmas, xmas + 3_600_000_000).await,
        Err(ProviderError::Malformed { .. })
    ));
}

// ---------------------------------------------------------------- backfill into the cache

#[tokio::test]
async fn backfill_is_resumable_and_feeds_the_cascade() {
    use gco_grid_data::backfill::{BackfillRequest, Provider, backfill};
    use gco_grid_data::series::SeriesIndex;
    use gco_grid_data::{FallbackLevel, Resolver, ZoneCatalog};

    let app = Router::new().route("/intensity/{from}/{to}", get(uk_national));
    let base = serve(app).await;
    let provider = Provider::Uk(UkCarbonIntensity::new(&base, fast()).unwrap());
    let catalog = ZoneCatalog::bundled().unwrap();
    let zone = catalog.resolve("GB-NATIONAL").unwrap();
    let store = gco_ledger::Store::memory();
    let (from, to) = (t("2026-09-29T00:00:00Z"), t("2026-10-03T00:00:00Z"));

    let months = backfill(
        &store,
        &provider,
        BackfillRequest {
            zone,
            from,
            to,
            fetched_at: t("2026-11-26T00:00:00Z"),
            force: false,
        },
        &|_| {},
    )
    .await
    .unwrap();
    let summary: Vec<_> = months
        .iter()
        .map(|m| (m.month.as_str(), m.status, m.points, m.estimated))
        .collect();
    assert_eq!(
        summary,
        vec![("2026-09", "fetched", 96, 2), ("2026-10", "fetched", 96, 2)]
    );
    // A second run finds both months cached and fetches nothing.
    let again = backfill(
        &store,
        &provider,
        BackfillRequest {
            zone,
            from,
            to,
            fetched_at: t("2026-11-27T00:00:00Z"),
            force: false,
        },
        &|_| {},
    )
    .await
    .unwrap();
    assert!(again.iter().all(|m| m.status == "cached"));
    assert_eq!(store.list("grid").await.unwrap().len(), 2);
    // A longer range only fetches the new month part.
    let more = backfill(
        &store,
        &provider,
        BackfillRequest {
            zone,
            from,
            to: t("2026-10-05T00:00:00Z"),
            fetched_at: 0,
            force: false,
        },
        &|_| {},
    )
    .await
    .unwrap();
    assert_eq!(
        more.iter().map(|m| m.status).collect::<Vec<_>>(),
        vec!["cached", "fetched"]
    );

    let r = Resolver::new(SeriesIndex::load(&store, from, to).await.unwrap()).unwrap();
    let a = r
        .resolve("GB-NATIONAL", t("2026-09-29T00:45:00Z"), Signal::Average)
        .unwrap();
    assert_eq!(
        (
            a.fallback_level,
            a.value_mg_per_kwh,
            a.source.as_str(),
            a.data_period.as_str()
        ),
        (
            FallbackLevel::ProviderMeasured,
            181_000,
            "uk-carbon-intensity",
            "PT30M"
        )
    );
    let e = r
        .resolve("GB-NATIONAL", t("2026-09-30T23:45:00Z"), Signal::Average)
        .unwrap();
    assert_eq!(e.fallback_level, FallbackLevel::ProviderEstimated);
}
