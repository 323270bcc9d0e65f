//! Interval-by-interval attribution of GPU energy to inference spans.
//!
//! Each reading of a GPU closes an interval `[t0, t1)` with a measured energy `E`
//! (integer millijoules). The part of the interval that no span covered is idle; its
//! share of `E` (by time) goes to the GPU's idle/overhead record. The rest is divided
//! among the spans active in the interval: by the tokens each processed in it (its
//! tokens times its overlap over its duration) when every one of them has ended with a
//! token count, else by active time. Splits use the largest-remainder method on integer
//! weights, so for every GPU and interval, attributed + idle = measured, exactly.
//!
//! An interval is attributed once every span in it has ended (token counts arrive at
//! the end); a span left open longer than `max_span` is ended there, without tokens.
//! The state is plain data (serde), so the collector can checkpoint it and replay its
//! write-ahead log onto it after a crash: the same events give the same records.

use std::collections::{BTreeMap, HashMap, VecDeque};

use gco_ledger::time::Micros;
use gco_ledger::{Measurement, Millijoules, Record, RecordKind};
use serde::{Deserialize, Serialize};

use crate::gpu::{EnergyTracker, Reading, Step};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct AttributionConfig {
    /// Idle energy of a GPU is summed into one record per window of this length.
    pub idle_window_us: i64,
    /// Spans open longer than this are ended without token counts.
    pub max_span_us: i64,
}

impl Default for AttributionConfig {
    fn default() -> Self {
        AttributionConfig {
            idle_window_us: 60_000_000,
            max_span_us: 30 * 60_000_000,
        }
    }
}

/// Why a span event was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SpanError {
    #[error("inference id {0:?} is already in use")]
    Duplicate(String),
    #[error("no open span with inference id {0:?}")]
    Unknown(String),
    #[error("GPU {0:?} is not one this collector measures (it measures {1})")]
    BadGpu(String, String),
    #[error("inference id must be 1-128 printable ASCII characters without spaces")]
    BadId,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Span {
    id: String,
    model_id: Option<String>,
    model_version: Option<String>,
    gpus: Vec<u16>,
    start: Micros,
    end: Option<Micros>,
    prompt_tokens: Option<u64>,
    completion_tokens: Option<u64>,
    energy_mj: u64,
    /// Intervals that include this span and are not attributed yet.
    pending: u32,
    /// GPUs on which a reading at or after the span's end has closed its last interval.
    passed: u16,
    /// Ended by `max_span` rather than by its caller.
    timed_out: bool,
}

impl Span {
    fn tokens(&self) -> Option<u64> {
        match (self.prompt_tokens, self.completion_tokens) {
            (None, None) => None,
            (p, c) => Some(p.unwrap_or(0) + c.unwrap_or(0)),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Interval {
    t0: Micros,
    t1: Micros,
    energy_mj: u64,
    covered_us: u64,
    /// (span ordinal, overlap in microseconds), overlap > 0.
    members: Vec<(u64, u64)>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct IdleWindow {
    window: i64,
    start: Micros,
    end: Micros,
    energy_mj: u64,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct GpuState {
    id: String,
    tracker: EnergyTracker,
    /// Spans that touch the GPU's current open interval (ordinals, ascending).
    open: Vec<u64>,
    /// Spans started and not yet ended on this GPU.
    active: u32,
    pending: VecDeque<Interval>,
    idle: Option<IdleWindow>,
    totals: GpuTotals,
}

/// Running sums for one GPU, in millijoules.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct GpuTotals {
    pub measured_mj: u64,
    pub attributed_mj: u64,
    pub idle_mj: u64,
    pub intervals: u64,
    pub counter_resets: u64,
}

/// How one interval's energy was divided (for audits and tests).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Allocation {
    pub gpu: usize,
    pub t0: Micros,
    pub t1: Micros,
    pub measured_mj: u64,
    pub idle_mj: u64,
    /// (inference id, millijoules)
    pub shares: Vec<(String, u64)>,
    pub by_tokens: bool,
}

/// A span's start as the collector logs it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SpanStart {
    pub id: String,
    pub model_id: Option<String>,
    pub model_version: Option<String>,
    /// Positions in the collector's GPU list.
    pub gpus: Vec<u16>,
}

/// The attribution state of one node.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Attributor {
    cfg: AttributionConfig,
    measurement: Measurement,
    gpus: Vec<GpuState>,
    spans: BTreeMap<u64, Span>,
    ids: HashMap<String, u64>,
    next_ordinal: u64,
    now: Micros,
    #[serde(skip)]
    out: Vec<Record>,
    #[serde(skip)]
    audit: Option<Vec<Allocation>>,
    /// Spans ended by `max_span`, for the metrics.
    pub timed_out_spans: u64,
}

fn valid_id(id: &str) -> bool {
    !id.is_empty() && id.len() <= 128 && id.bytes().all(|b| b.is_ascii_graphic())
}

impl Attributor {
    pub fn new(gpu_ids: Vec<String>, measurement: Measurement, cfg: AttributionConfig) -> Self {
        Attributor {
            cfg,
            measurement,
            gpus: gpu_ids
                .into_iter()
                .map(|id| GpuState {
                    id,
                    ..Default::default()
                })
                .collect(),
            spans: BTreeMap::new(),
            ids: HashMap::new(),
            next_ordinal: 0,
            now: i64::MIN,
            out: Vec::new(),
            audit: None,
            timed_out_spans: 0,
        }
    }

    /// Keeps every interval's allocation for inspection ([`Attributor::take_audit`]).
    pub fn enable_audit(&mut self) {
        self.audit = Some(Vec::new());
    }

    pub fn take_audit(&mut self) -> Vec<Allocation> {
        self.audit.as_mut().map(std::mem::take).unwrap_or_default()
    }

    pub fn measurement(&self) -> Measurement {
        self.measurement
    }

    pub fn gpu_ids(&self) -> Vec<String> {
        self.gpus.iter().map(|g| g.id.clone()).collect()
    }

    pub fn totals(&self, gpu: usize) -> GpuTotals {
        self.gpus[gpu].totals
    }

    /// Spans started and not ended on `gpu`.
    pub fn active_on(&self, gpu: usize) -> u32 {
        self.gpus[gpu].active
    }

    pub fn open_spans(&self) -> usize {
        self.spans.values().filter(|s| s.end.is_none()).count()
    }

    /// Spans ended but waiting for their intervals to close.
    pub fn waiting_spans(&self) -> usize {
        self.spans.len() - self.open_spans()
    }

    pub fn now(&self) -> Micros {
        self.now
    }

    /// Records completed so far (inference rows and idle rows), in completion order.
    pub fn take_records(&mut self) -> Vec<Record> {
        std::mem::take(&mut self.out)
    }

    /// Resolves a GPU given by position, index string or id into a position.
    pub fn gpu_position(&self, g: &str) -> Result<u16, SpanError> {
        self.gpus
            .iter()
            .position(|s| s.id == g)
            .or_else(|| g.parse::<usize>().ok().filter(|&i| i < self.gpus.len()))
            .map(|p| p as u16)
            .ok_or_else(|| {
                SpanError::BadGpu(
                    g.to_string(),
                    self.gpus
                        .iter()
                        .map(|s| s.id.as_str())
                        .collect::<Vec<_>>()
                        .join(", "),
                )
            })
    }

    /// Checks a start without applying it.
    pub fn check_start(&self, s: &SpanStart) -> Result<(), SpanError> {
        if !valid_id(&s.id) {
            return Err(SpanError::BadId);
        }
        if self.ids.contains_key(&s.id) {
            return Err(SpanError::Duplicate(s.id.clone()));
        }
        if let Some(&g) = s.gpus.iter().find(|&&g| g as usize >= self.gpus.len()) {
            return Err(SpanError::BadGpu(
                g.to_string(),
                format!("{} GPUs", self.gpus.len()),
            ));
        }
        Ok(())
    }

    pub fn check_end(&self, id: &str) -> Result<(), SpanError> {
        match self.ids.get(id).and_then(|o| self.spans.get(o)) {
            Some(s) if s.end.is_none() => Ok(()),
            _ => Err(SpanError::Unknown(id.to_string())),
        }
    }

    fn advance(&mut self, t: Micros) -> Micros {
        self.now = self.now.max(t);
        self.now
    }

    pub fn start(&mut self, t: Micros, s: SpanStart) -> Result<(), SpanError> {
        self.check_start(&s)?;
        let t = self.advance(t);
        let ord = self.next_ordinal;
        self.next_ordinal += 1;
        let mut gpus = s.gpus;
        gpus.sort_unstable();
        gpus.dedup();
        for &g in &gpus {
            let st = &mut self.gpus[g as usize];
            st.open.push(ord);
            st.active += 1;
        }
        self.ids.insert(s.id.clone(), ord);
        self.spans.insert(
            ord,
            Span {
                id: s.id,
                model_id: s.model_id,
                model_version: s.model_version,
                gpus,
                start: t,
                end: None,
                prompt_tokens: None,
                completion_tokens: None,
                energy_mj: 0,
                pending: 0,
                passed: 0,
                timed_out: false,
            },
        );
        Ok(())
    }

    pub fn end(
        &mut self,
        t: Micros,
        id: &str,
        prompt_tokens: Option<u64>,
        completion_tokens: Option<u64>,
    ) -> Result<(), SpanError> {
        self.check_end(id)?;
        let t = self.advance(t);
        let ord = self.ids[id];
        self.close_span(ord, t, prompt_tokens, completion_tokens);
        let gpus = self.spans[&ord].gpus.clone();
        for g in gpus {
            self.drain(g as usize);
        }
        self.maybe_emit(ord);
        Ok(())
    }

    fn close_span(&mut self, ord: u64, t: Micros, p: Option<u64>, c: Option<u64>) {
        let Some(s) = self.spans.get_mut(&ord) else {
            return;
        };
        s.end = Some(t.max(s.start));
        s.prompt_tokens = p;
        s.completion_tokens = c;
        for &g in &s.gpus {
            self.gpus[g as usize].active -= 1;
        }
    }

    /// A reading of every GPU at `t` (one entry per GPU, in order).
    pub fn sample(&mut self, t: Micros, readings: &[Reading]) {
        let t = self.advance(t);
        // Spans open past max_span end here, without tokens.
        let stale: Vec<u64> = self
            .spans
            .iter()
            .filter(|(_, s)| s.end.is_none() && t - s.start > self.cfg.max_span_us)
            .map(|(&o, _)| o)
            .collect();
        for o in stale {
            let end = self.spans[&o].start + self.cfg.max_span_us;
            self.close_span(o, end, None, None);
            if let Some(s) = self.spans.get_mut(&o) {
                s.timed_out = true;
            }
            self.timed_out_spans += 1;
        }
        for (g, r) in readings.iter().enumerate().take(self.gpus.len()) {
            self.sample_gpu(g, t, r);
        }
    }

    fn sample_gpu(&mut self, g: usize, t1: Micros, r: &Reading) {
        let t0 = self.gpus[g].tracker.last_time();
        let (energy, step) = self.gpus[g].tracker.step(t1, r);
        if step == Step::Reset {
            self.gpus[g].totals.counter_resets += 1;
        }
        if let (Some(e), Some(t0)) = (energy, t0) {
            let mut members = Vec::new();
            let mut segs = Vec::new();
            for &o in &self.gpus[g].open {
                let s = &self.spans[&o];
                let a = s.start.max(t0);
                let b = s.end.unwrap_or(t1).min(t1);
                if b > a {
                    members.push((o, (b - a) as u64));
                    segs.push((a, b));
                }
            }
            segs.sort_unstable();
            let (mut covered, mut cur): (u64, Option<(Micros, Micros)>) = (0, None);
            for (a, b) in segs {
                cur = match cur {
                    Some((ca, cb)) if a <= cb => Some((ca, cb.max(b))),
                    Some((ca, cb)) => {
                        covered += (cb - ca) as u64;
                        Some((a, b))
                    }
                    None => Some((a, b)),
                };
            }
            if let Some((ca, cb)) = cur {
                covered += (cb - ca) as u64;
            }
            for &(o, _) in &members {
                if let Some(s) = self.spans.get_mut(&o) {
                    s.pending += 1;
                }
            }
            let st = &mut self.gpus[g];
            st.totals.measured_mj += e;
            st.totals.intervals += 1;
            st.pending.push_back(Interval {
                t0,
                t1,
                energy_mj: e,
                covered_us: covered,
                members,
            });
        }
        // Spans that ended by t1 have seen their last interval on this GPU.
        let mut passed = Vec::new();
        let spans = &self.spans;
        self.gpus[g].open.retain(|o| match spans[o].end {
            Some(end) if end <= t1 => {
                passed.push(*o);
                false
            }
            _ => true,
        });
        for o in &passed {
            if let Some(s) = self.spans.get_mut(o) {
                s.passed += 1;
            }
        }
        self.drain(g);
        for o in passed {
            self.maybe_emit(o);
        }
    }

    /// Attributes the GPU's oldest intervals whose spans have all ended.
    fn drain(&mut self, g: usize) {
        while let Some(iv) = self.gpus[g].pending.front() {
            if iv
                .members
                .iter()
                .any(|(o, _)| self.spans.get(o).is_none_or(|s| s.end.is_none()))
            {
                break;
            }
            let Some(iv) = self.gpus[g].pending.pop_front() else {
                break;
            };
            self.attribute(g, iv);
        }
    }

    fn attribute(&mut self, g: usize, iv: Interval) {
        let len = (iv.t1 - iv.t0).max(0) as u64;
        let idle_us = len.saturating_sub(iv.covered_us);
        let idle = if len == 0 {
            iv.energy_mj
        } else {
            (iv.energy_mj as u128 * idle_us as u128 / len as u128) as u64
        };
        let active = iv.energy_mj - idle;
        let mut by_tokens = !iv.members.is_empty();
        let mut weights = Vec::with_capacity(iv.members.len());
        for &(o, overlap) in &iv.members {
            let s = &self.spans[&o];
            let dur = (s.end.unwrap_or(s.start) - s.start).max(1) as u128;
            match s.tokens() {
                Some(tok) if tok > 0 && by_tokens => {
                    weights.push(overlap as u128 * tok as u128 * 65_536 / dur)
                }
                _ => by_tokens = false,
            }
        }
        if !by_tokens || weights.iter().all(|&w| w == 0) {
            by_tokens = false;
            weights = iv.members.iter().map(|&(_, ov)| ov as u128).collect();
        }
        let shares = split(active, &weights);
        let mut audit_shares = Vec::new();
        for (&(o, _), &share) in iv.members.iter().zip(&shares) {
            if let Some(s) = self.spans.get_mut(&o) {
                s.energy_mj += share;
                s.pending -= 1;
                if self.audit.is_some() {
                    audit_shares.push((s.id.clone(), share));
                }
            }
        }
        if let Some(a) = self.audit.as_mut() {
            a.push(Allocation {
                gpu: g,
                t0: iv.t0,
                t1: iv.t1,
                measured_mj: iv.energy_mj,
                idle_mj: idle,
                shares: audit_shares,
                by_tokens,
            });
        }
        let st = &mut self.gpus[g];
        st.totals.attributed_mj += active;
        st.totals.idle_mj += idle;
        self.add_idle(g, iv.t0, iv.t1, idle);
        for (o, _) in iv.members {
            self.maybe_emit(o);
        }
    }

    fn add_idle(&mut self, g: usize, t0: Micros, t1: Micros, e: u64) {
        let w = t0.div_euclid(self.cfg.idle_window_us.max(1));
        let st = &mut self.gpus[g];
        match &mut st.idle {
            Some(cur) if cur.window == w => {
                cur.end = t1;
                cur.energy_mj += e;
            }
            _ => {
                let done = st.idle.replace(IdleWindow {
                    window: w,
                    start: t0,
                    end: t1,
                    energy_mj: e,
                });
                if let Some(done) = done {
                    self.emit_idle(g, done);
                }
            }
        }
    }

    fn emit_idle(&mut self, g: usize, w: IdleWindow) {
        if w.energy_mj == 0 {
            return;
        }
        self.out.push(Record {
            seq: 0,
            kind: RecordKind::Idle,
            inference_id: None,
            node_id: String::new(),
            model_id: None,
            model_version: None,
            start: w.start,
            end: w.end,
            energy: Millijoules(w.energy_mj as i64),
            measurement: self.measurement,
            gpus: vec![self.gpus[g].id.clone()],
            prompt_tokens: None,
            completion_tokens: None,
        });
    }

    fn maybe_emit(&mut self, o: u64) {
        let ready = self.spans.get(&o).is_some_and(|s| {
            s.end.is_some() && s.pending == 0 && s.passed as usize == s.gpus.len()
        });
        if !ready {
            return;
        }
        let Some(s) = self.spans.remove(&o) else {
            return;
        };
        self.ids.remove(&s.id);
        self.out.push(Record {
            seq: 0,
            kind: RecordKind::Inference,
            inference_id: Some(s.id),
            node_id: String::new(),
            model_id: s.model_id,
            model_version: s.model_version,
            start: s.start,
            end: s.end.unwrap_or(s.start),
            energy: Millijoules(s.energy_mj as i64),
            measurement: self.measurement,
            gpus: s
                .gpus
                .iter()
                .map(|&g| self.gpus[g as usize].id.clone())
                .collect(),
            prompt_tokens: s.prompt_tokens,
            completion_tokens: s.completion_tokens,
        });
    }
}

/// Splits `total` in proportion to `weights` with the largest-remainder method: the
/// parts sum to `total` exactly; ties go to the earlier weight.
pub fn split(total: u64, weights: &[u128]) -> Vec<u64> {
    let w_sum: u128 = weights.iter().sum();
    if weights.is_empty() {
        return Vec::new();
    }
    if w_sum == 0 {
        let mut out = vec![0; weights.len()];
        out[0] = total;
        return out;
    }
    let mut out = Vec::with_capacity(weights.len());
    let mut rems = Vec::with_capacity(weights.len());
    let mut given = 0u64;
    for (i, &w) in weights.iter().enumerate() {
        let num = total as u128 * w;
        let q = (num / w_sum) as u64;
        given += q;
        out.push(q);
        rems.push((num % w_sum, i));
    }
    let mut left = total - given;
    if left > 0 {
        rems.sort_unstable_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
        for &(_, i) in rems.iter().cycle() {
            if left == 0 {
                break;
            }
            out[i] += 1;
            left -= 1;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reading(mj: u64) -> Reading {
        Reading {
            energy_mj: Some(mj),
            ..Default::default()
        }
    }

    fn start(a: &mut Attributor, t: Micros, id: &str, gpus: &[u16]) {
        a.start(
            t,
            SpanStart {
                id: id.into(),
                model_id: Some("m".into()),
                model_version: None,
                gpus: gpus.to_vec(),
            },
        )
        .unwrap();
    }

    #[test]
    fn split_is_exact() {
        assert_eq!(split(10, &[1, 1, 1]), vec![4, 3, 3]);
        assert_eq!(split(100, &[1, 3]), vec![25, 75]);
        assert_eq!(split(7, &[0, 0]), vec![7, 0]);
        assert_eq!(split(0, &[5]), vec![0]);
    }

    /// Hand-computed: one GPU, readings every second, 1000 mJ per second.
    /// Span a: 0.5 s..2.5 s, 100 tokens; span b: 1.0 s..1.5 s, 50 tokens.
    #[test]
    fn hand_computed_split() {
        let mut a = Attributor::new(
            vec!["0".into()],
            Measurement::Simulated,
            AttributionConfig {
                idle_window_us: 10_000_000,
                ..Default::default()
            },
        );
        a.enable_audit();
        a.sample(0, &[reading(0)]);
        start(&mut a, 500_000, "a", &[0]);
        a.sample(1_000_000, &[reading(1_000)]);
        start(&mut a, 1_000_000, "b", &[0]);
        a.end(1_500_000, "b", Some(20), Some(30)).unwrap();
        a.sample(2_000_000, &[reading(2_000)]);
        a.end(2_500_000, "a", Some(40), Some(60)).unwrap();
        a.sample(3_000_000, &[reading(3_000)]);
        let audit = a.take_audit();
        // [0,1): a covers 0.5 s: 500 idle, 500 to a.
        assert_eq!(audit[0].idle_mj, 500);
        assert_eq!(audit[0].shares, vec![("a".to_string(), 500)]);
        assert!(audit[0].by_tokens);
        // [1,2): no idle; a processed 100 tok x 1 s / 2 s = 50, b 50 x 0.5/0.5 = 50: 500 each.
        assert_eq!(audit[1].idle_mj, 0);
        assert_eq!(audit[1].shares, vec![("a".into(), 500), ("b".into(), 500)]);
        // [2,3): a covers 0.5 s.
        assert_eq!(audit[2].idle_mj, 500);
        let recs = a.take_records();
        let energy = |id: &str| {
            recs.iter()
                .find(|r| r.inference_id.as_deref() == Some(id))
                .unwrap()
                .energy
                .0
        };
        assert_eq!(energy("a"), 1_500);
        assert_eq!(energy("b"), 500);
        let t = a.totals(0);
        assert_eq!(
            (t.measured_mj, t.attributed_mj, t.idle_mj),
            (3_000, 2_000, 1_000)
        );
    }

    #[test]
    fn refuses_bad_spans() {
        let mut a = Attributor::new(vec!["0".into()], Measurement::Simulated, Default::default());
        start(&mut a, 0, "x", &[0]);
        let s = SpanStart {
            id: "x".into(),
            model_id: None,
            model_version: None,
            gpus: vec![0],
        };
        assert_eq!(a.start(1, s.clone()), Err(SpanError::Duplicate("x".into())));
        let bad = SpanStart {
            id: "y".into(),
            gpus: vec![3],
            ..s.clone()
        };
        assert!(matches!(a.start(1, bad), Err(SpanError::BadGpu(..))));
        let bad = SpanStart {
            id: "has space".into(),
            ..s
        };
        assert_eq!(a.start(1, bad), Err(SpanError::BadId));
        assert_eq!(
            a.end(2, "nope", None, None),
            Err(SpanError::Unknown("nope".into()))
        );
        a.end(3, "x", None, None).unwrap();
        assert_eq!(
            a.end(4, "x", None, None),
            Err(SpanError::Unknown("x".into()))
        );
    }

    #[test]
    fn open_span_times_out() {
        let cfg = AttributionConfig {
            idle_window_us: 1_000_000,
            max_span_us: 2_000_000,
        };
        let mut a = Attributor::new(vec!["0".into()], Measurement::Simulated, cfg);
        a.sample(0, &[reading(0)]);
        start(&mut a, 0, "forgotten", &[0]);
        for k in 1..=4 {
            a.sample(k * 1_000_000, &[reading(k as u64 * 100)]);
        }
        let recs = a.take_records();
        let r = recs
            .iter()
            .find(|r| r.kind == RecordKind::Inference)
            .unwrap();
        assert_eq!((r.start, r.end, r.energy.0), (0, 2_000_000, 200));
        assert_eq!(a.timed_out_spans, 1);
    }
}
