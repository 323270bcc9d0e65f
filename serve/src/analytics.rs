//! Analytics and exports from what the runs published: a model's emissions over a date
//! range from the `model_day` aggregate tables (each checked against its run manifest's
//! SHA-256 before use), and a month's certificates as CSV.

use std::collections::BTreeMap;

use axum::extract::{Path, Query, State};
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use chrono::NaiveDate;
use gco_pipelines::aggregate::Sums;
use gco_pipelines::{Period, certify, lookup, manifest};
use gco_report::fixed::{self, MJ_PER_KWH, NG_PER_KG};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::AppState;
use crate::error::{ApiError, ReadErrors};

/// `?from=YYYY-MM-DD&to=YYYY-MM-DD` (both inclusive; default: every day with figures).
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct RangeQuery {
    pub from: Option<String>,
    pub to: Option<String>,
}

/// Exact integer sums (`i128` as decimal strings, as in the run manifests' totals), the
/// token counts, and the figures in display units.
#[derive(Debug, Serialize, PartialEq, Eq, ToSchema)]
pub struct Figures {
    pub rows: u64,
    pub inferences: u64,
    #[serde(with = "manifest::decimal")]
    #[schema(value_type = String)]
    pub it_energy_mj: i128,
    #[serde(with = "manifest::decimal")]
    #[schema(value_type = String)]
    pub facility_energy_mj: i128,
    #[serde(with = "manifest::decimal")]
    #[schema(value_type = String)]
    pub location_ng: i128,
    #[serde(with = "manifest::decimal")]
    #[schema(value_type = String)]
    pub market_ng: i128,
    /// Over the `marginal_rows` rows that have a marginal figure.
    #[serde(with = "manifest::decimal")]
    #[schema(value_type = String)]
    pub marginal_ng: i128,
    pub marginal_rows: u64,
    #[serde(with = "manifest::decimal")]
    #[schema(value_type = String)]
    pub embodied_ng: i128,
    #[serde(with = "manifest::decimal")]
    #[schema(value_type = String)]
    pub sci_ng: i128,
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
    /// kWh and kg CO2e to six decimals (exact decimal text, half away from zero).
    pub display: Display,
}

#[derive(Debug, Serialize, PartialEq, Eq, ToSchema)]
pub struct Display {
    pub it_energy_kwh: String,
    pub facility_energy_kwh: String,
    pub location_kgco2e: String,
    pub market_kgco2e: String,
    pub marginal_kgco2e: String,
    pub embodied_kgco2e: String,
}

/// A figure divided by a count (per inference, per 1,000 tokens), in the sums' units
/// with six decimals; `None` when the count is 0.
#[derive(Debug, Serialize, PartialEq, Eq, ToSchema)]
pub struct Intensity {
    pub facility_energy_mj: String,
    pub location_ng: String,
    pub market_ng: String,
    pub embodied_ng: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Day {
    pub date: String,
    #[serde(flatten)]
    pub figures: Figures,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RunRef {
    pub period: String,
    pub version: u32,
    pub manifest_sha256: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ModelEmissions {
    pub model_id: String,
    pub from: Option<String>,
    pub to: Option<String>,
    /// The run versions read (each period's latest).
    pub runs: Vec<RunRef>,
    pub totals: Figures,
    pub per_inference: Option<Intensity>,
    /// Per 1,000 tokens (prompt + completion).
    pub per_1k_tokens: Option<Intensity>,
    /// Oldest day first; days without inferences of the model are left out.
    pub daily: Vec<Day>,
}

fn figures(s: &Sums) -> Figures {
    let kwh = |mj| fixed::decimal(mj, MJ_PER_KWH, 6);
    let kg = |ng| fixed::decimal(ng, NG_PER_KG, 6);
    Figures {
        rows: s.rows,
        inferences: s.inferences,
        it_energy_mj: s.it_energy_mj,
        facility_energy_mj: s.facility_energy_mj,
        location_ng: s.location_ng,
        market_ng: s.market_ng,
        marginal_ng: s.marginal_ng,
        marginal_rows: s.marginal_rows,
        embodied_ng: s.embodied_ng,
        sci_ng: s.sci_ng,
        prompt_tokens: s.prompt_tokens,
        completion_tokens: s.completion_tokens,
        display: Display {
            it_energy_kwh: kwh(s.it_energy_mj),
            facility_energy_kwh: kwh(s.facility_energy_mj),
            location_kgco2e: kg(s.location_ng),
            market_kgco2e: kg(s.market_ng),
            marginal_kgco2e: kg(s.marginal_ng),
            embodied_kgco2e: kg(s.embodied_ng),
        },
    }
}

/// `s`'s figures divided by `count / per`, or `None` for a zero count.
fn intensity(s: &Sums, count: u64, per: i128) -> Result<Option<Intensity>, ApiError> {
    let count = i128::from(count);
    if count == 0 {
        return Ok(None);
    }
    let f = |v: i128| -> Result<String, ApiError> {
        let scaled = v.checked_mul(per).ok_or_else(|| {
            ApiError::new(
                axum::http::StatusCode::INTERNAL_SERVER_ERROR,
                "overflow",
                "a sum times 1,000 does not fit 128 bits: the aggregate is damaged",
            )
        })?;
        Ok(fixed::decimal(scaled, count, 6))
    };
    Ok(Some(Intensity {
        facility_energy_mj: f(s.facility_energy_mj)?,
        location_ng: f(s.location_ng)?,
        market_ng: f(s.market_ng)?,
        embodied_ng: f(s.embodied_ng)?,
    }))
}

fn date(arg: &Option<String>, what: &str) -> Result<Option<NaiveDate>, ApiError> {
    arg.as_deref()
        .map(|d| {
            NaiveDate::parse_from_str(d, "%Y-%m-%d")
                .map_err(|_| ApiError::bad_request(format!("{what}={d:?}: not a date YYYY-MM-DD")))
        })
        .transpose()
}

/// `GET /api/v1/model/{model_id}/emissions?from=&to=`.
#[utoipa::path(get, path = "/api/v1/model/{model_id}/emissions", tag = "analytics",
    params(("model_id" = String, Path), RangeQuery),
    responses((status = 200, description = "the model's figures and daily series", body = ModelEmissions), ReadErrors),
    security((), ("bearer" = [])))]
pub async fn model_emissions(
    State(state): State<AppState>,
    Path(model_id): Path<String>,
    query: Result<Query<RangeQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<axum::Json<ModelEmissions>, ApiError> {
    let Query(q) = query.map_err(|e| ApiError::bad_request(e.body_text()))?;
    let (from, to) = (date(&q.from, "from")?, date(&q.to, "to")?);
    if let (Some(f), Some(t)) = (from, to)
        && f > t
    {
        return Err(ApiError::bad_request(format!("from={f} is after to={t}")));
    }
    // Each period's latest version (the listing is sorted by period, then version).
    let mut latest: BTreeMap<Period, u32> = BTreeMap::new();
    for (period, version) in manifest::versions(state.store(), None).await?.into_keys() {
        let last = period.days().last().copied().unwrap_or(period.first_day());
        if from.is_none_or(|f| last >= f) && to.is_none_or(|t| period.first_day() <= t) {
            latest.insert(period, version);
        }
    }
    let overflow = || {
        ApiError::new(
            axum::http::StatusCode::INTERNAL_SERVER_ERROR,
            "overflow",
            "the model's sums overflow their integer types: an aggregate table is damaged",
        )
    };
    let mut runs = Vec::new();
    let mut total = Sums::default();
    let mut daily: BTreeMap<String, Sums> = BTreeMap::new();
    for (period, version) in latest {
        let run = certify::load_run(state.store(), period, Some(version)).await?;
        // model_day: [date, model_id, scope], checked against the manifest's SHA-256.
        let table = gco_report::data::checked_table(state.store(), &run, "model_day").await?;
        runs.push(RunRef {
            period: period.to_string(),
            version: run.version,
            manifest_sha256: run.manifest_sha256,
        });
        for (key, s) in &table {
            let Some(day) = NaiveDate::parse_from_str(&key[0], "%Y-%m-%d").ok() else {
                continue;
            };
            if key[1] != model_id || from.is_some_and(|f| day < f) || to.is_some_and(|t| day > t) {
                continue;
            }
            total = total.checked_add(s).ok_or_else(overflow)?;
            let d = daily.entry(key[0].clone()).or_default();
            *d = d.checked_add(s).ok_or_else(overflow)?;
        }
    }
    if runs.is_empty() {
        return Err(ApiError::not_found(
            "no published run covers these dates (run `gco run --period YYYY-MM` first)",
        ));
    }
    if total.inferences == 0 {
        return Err(ApiError::not_found(format!(
            "model {model_id:?} has no inferences in the runs of these dates"
        )));
    }
    let tokens = total
        .prompt_tokens
        .checked_add(total.completion_tokens)
        .ok_or_else(|| {
            ApiError::new(
                axum::http::StatusCode::INTERNAL_SERVER_ERROR,
                "overflow",
                "the token counts pass 2^64",
            )
        })?;
    Ok(axum::Json(ModelEmissions {
        per_inference: intensity(&total, total.inferences, 1)?,
        per_1k_tokens: intensity(&total, tokens, 1000)?,
        totals: figures(&total),
        model_id,
        from: from.map(|d| d.to_string()),
        to: to.map(|d| d.to_string()),
        runs,
        daily: daily
            .into_iter()
            .map(|(date, s)| Day {
                date,
                figures: figures(&s),
            })
            .collect(),
    }))
}

/// `?period=YYYY-MM`.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ExportQuery {
    pub period: String,
}

/// Rows of the export read from the store at a time.
const EXPORT_PAGE: usize = 5_000;

/// `GET /api/v1/compliance/export?period=YYYY-MM`: the period's per-inference
/// certificates (its latest credential version) as CSV, streamed a page of rows at a
/// time, as `attachment`. Text cells from data that a spreadsheet would read as a
/// formula are prefixed with `'`.
#[utoipa::path(get, path = "/api/v1/compliance/export", tag = "analytics", params(ExportQuery),
    responses((status = 200, description = "the month's certificates, CSV with a header row", content_type = "text/csv", body = String), ReadErrors),
    security((), ("bearer" = [])))]
pub async fn compliance_export(
    State(state): State<AppState>,
    query: Result<Query<ExportQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(q) = query.map_err(|e| ApiError::bad_request(e.body_text()))?;
    let period = Period::parse(&q.period)?;
    let versions = certify::latest_credential_versions(state.store(), Some(period)).await?;
    let Some((p, version)) = versions.into_iter().next_back() else {
        return Err(ApiError::not_found(format!(
            "no credentials of {period} (issue them with `gco vc issue --period {period}`)"
        )));
    };
    let prefix = certify::version_prefix(&p, version);
    let store = state.store().clone();
    let header_row = csv_lines(std::iter::once(
        [
            "period",
            "credential_version",
            "inference_id",
            "node_id",
            "seq",
            "format",
            "credential_id",
            "status_index",
        ]
        .map(String::from),
    ));
    let pages = futures::stream::unfold(Some(lookup::Position::default()), move |at| {
        let (store, prefix, p) = (store.clone(), prefix.clone(), p.clone());
        async move {
            let from = at?;
            match lookup::list_inferences(&store, &prefix, from, EXPORT_PAGE, |_| true).await {
                Ok(page) => {
                    let version = version.to_string();
                    let chunk = csv_lines(page.items.iter().map(|l| {
                        [
                            p.clone(),
                            version.clone(),
                            l.inference_id.clone(),
                            l.node_id.clone(),
                            l.seq.to_string(),
                            l.format.clone(),
                            l.id.clone(),
                            l.status_index.to_string(),
                        ]
                    }));
                    Some((
                        Ok::<_, std::io::Error>(bytes::Bytes::from(chunk)),
                        page.next,
                    ))
                }
                Err(e) => {
                    // The response has started: end it short (the client sees a
                    // truncated transfer) and log why.
                    tracing::error!(code = e.code(), error = %e, "compliance export failed mid-stream");
                    Some((
                        Err(std::io::Error::other("the store failed during the export")),
                        None,
                    ))
                }
            }
        }
    });
    let body = futures::StreamExt::chain(
        futures::stream::once(async move { Ok(bytes::Bytes::from(header_row)) }),
        pages,
    );
    let mut r = axum::body::Body::from_stream(body).into_response();
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/csv; charset=utf-8; header=present"),
    );
    h.insert(
        header::CONTENT_DISPOSITION,
        HeaderValue::from_str(&format!(
            "attachment; filename=\"gco-certificates-{period}-v{version:04}.csv\""
        ))
        .expect("a period and a number are header-safe"),
    );
    Ok(r)
}

/// CSV lines (RFC 4180 quoting, `\n` ends) in one writer, text cells guarded against
/// formulas.
fn csv_lines(rows: impl Iterator<Item = [String; 8]>) -> Vec<u8> {
    let mut w = gco_report::csv_out::writer();
    for row in rows {
        // Writing into a Vec cannot fail.
        let _ = w.write_record(row.iter().map(|c| gco_report::csv_out::text(c)));
    }
    w.into_inner().unwrap_or_default()
}
