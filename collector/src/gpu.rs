//! GPU energy sources behind one trait, and the arithmetic that turns their readings
//! into interval energies: cumulative counters (with resets and wraps) and power
//! integration (with the remainder carried, so nothing is lost to rounding).

use gco_ledger::Measurement;
use gco_ledger::time::Micros;
use serde::{Deserialize, Serialize};

/// One configured GPU.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GpuInfo {
    /// Index in the driver's enumeration.
    pub index: u32,
    /// Stable identifier written into records (NVML UUID, or the index for simulated GPUs).
    pub id: String,
    pub name: String,
}

/// One reading of one GPU.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Reading {
    /// Cumulative energy counter in millijoules, where the GPU has one.
    pub energy_mj: Option<u64>,
    /// Power draw in milliwatts.
    pub power_mw: Option<u32>,
    /// GPU utilisation in percent.
    pub utilization_pct: Option<u8>,
    /// Memory in use, bytes.
    pub memory_used: Option<u64>,
}

/// A source of GPU readings: NVML or simulated GPUs.
/// Why GPUs could not be opened, selected or read.
#[derive(Debug, thiserror::Error)]
pub enum GpuError {
    /// The NVIDIA driver library is not there.
    #[error(
        "the NVIDIA driver library libnvidia-ml.so.1 could not be loaded ({0}); install the \
         NVIDIA driver (or run in a container with the NVIDIA runtime), or pass --simulate \
         to measure simulated GPUs"
    )]
    DriverMissing(String),
    /// NVML sees no GPU.
    #[error("NVML sees no GPU on this node")]
    NoGpu,
    /// `--gpus` / `CUDA_VISIBLE_DEVICES` names a GPU that is not there, several, or none.
    #[error("{0}")]
    Selection(String),
    /// A driver call failed (`what` says which).
    #[error("{what}: {message}")]
    Driver { what: String, message: String },
}

impl GpuError {
    /// The stable machine-readable code (docs/errors.md).
    pub fn code(&self) -> &'static str {
        match self {
            GpuError::DriverMissing(_) => "nvml_missing",
            GpuError::NoGpu => "no_gpu",
            GpuError::Selection(_) => "gpu_selection",
            GpuError::Driver { .. } => "gpu_driver",
        }
    }
    pub(crate) fn driver(what: impl Into<String>, e: impl std::fmt::Display) -> Self {
        GpuError::Driver {
            what: what.into(),
            message: e.to_string(),
        }
    }
}

pub trait GpuSource: Send {
    fn gpus(&self) -> &[GpuInfo];
    /// How the energy is obtained (recorded on every row).
    fn measurement(&self) -> Measurement;
    /// Reads every configured GPU at time `t` (UTC microseconds). One entry per GPU, in
    /// the order of [`GpuSource::gpus`]. Errors are per call: a failed read is retried
    /// at the next interval, and the interval simply becomes longer.
    fn read(&mut self, t: Micros) -> Result<Vec<Reading>, GpuError>;
    /// Tells the source how many spans are active on each GPU (simulated GPUs draw power
    /// accordingly; real GPUs ignore it).
    fn set_activity(&mut self, _gpu: usize, _active: u32) {}
}

/// What happened to a counter between two readings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Step {
    /// Normal increase.
    Delta,
    /// The counter went down near the top of its range: it wrapped.
    Wrap,
    /// The counter went down: the driver reloaded and the counter restarted at zero.
    /// The energy before the reset is unknown, so the interval gets the larger of the
    /// new counter value (energy since the reset) and the power-integrated estimate.
    Reset,
    /// No reading before: the interval starts here.
    First,
}

/// Turns successive readings of one GPU into interval energies. Every interval between
/// two readings gets exactly one energy, so nothing is dropped or counted twice.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnergyTracker {
    last_t: Option<Micros>,
    last_counter: Option<u64>,
    /// Power integration remainder in milliwatt-microseconds (< 1 mJ = 1e6 mW·us).
    remainder: u64,
    pub resets: u64,
    pub wraps: u64,
}

/// Counter values within this distance of `u64::MAX` that go down are wraps, not resets.
const WRAP_WINDOW: u64 = 1 << 40;

impl EnergyTracker {
    /// Feeds a reading at `t`; returns the energy of the interval since the previous
    /// reading (None for the first reading) and what the counter did.
    pub fn step(&mut self, t: Micros, r: &Reading) -> (Option<u64>, Step) {
        let dt = self.last_t.map(|l| (t - l).max(0) as u64);
        let power_estimate = |rem: &mut u64| -> Option<u64> {
            let (p, dt) = (r.power_mw? as u64, dt?);
            let total = p * dt + *rem;
            *rem = total % 1_000_000;
            Some(total / 1_000_000)
        };
        let out = match (r.energy_mj, self.last_counter, dt) {
            (_, _, None) => (None, Step::First),
            (Some(now), Some(prev), Some(_)) if now >= prev => (Some(now - prev), Step::Delta),
            (Some(now), Some(prev), Some(_)) if prev > u64::MAX - WRAP_WINDOW => {
                self.wraps += 1;
                (Some(u64::MAX - prev + now + 1), Step::Wrap)
            }
            (Some(now), Some(_), Some(_)) => {
                self.resets += 1;
                let est = power_estimate(&mut self.remainder).unwrap_or(0);
                (Some(now.max(est)), Step::Reset)
            }
            // Power only, or a counter that appears after power-only readings: the
            // interval is bridged with power.
            (_, None, Some(_)) | (None, Some(_), Some(_)) => (
                Some(power_estimate(&mut self.remainder).unwrap_or(0)),
                Step::Delta,
            ),
        };
        self.last_t = Some(t);
        self.last_counter = r.energy_mj;
        out
    }

    pub fn last_time(&self) -> Option<Micros> {
        self.last_t
    }
}

/// Which GPUs the collector measures: `--gpus` when given, else `CUDA_VISIBLE_DEVICES`,
/// else all. Entries are indices or UUIDs (`GPU-...`). Returns the matching positions in
/// `all`, in the order given, or an error naming the entry that matches nothing.
pub fn select_gpus(
    all: &[GpuInfo],
    requested: Option<&str>,
    cuda_visible: Option<&str>,
) -> Result<Vec<usize>, GpuError> {
    let spec = match (requested, cuda_visible) {
        (Some(r), _) => Some(("--gpus", r)),
        (None, Some(c)) if !c.trim().is_empty() => Some(("CUDA_VISIBLE_DEVICES", c)),
        _ => None,
    };
    let Some((what, spec)) = spec else {
        return Ok((0..all.len()).collect());
    };
    let mut out = Vec::new();
    for entry in spec.split(',').map(str::trim).filter(|e| !e.is_empty()) {
        let pos = if let Ok(i) = entry.parse::<u32>() {
            all.iter().position(|g| g.index == i)
        } else {
            // UUIDs may be given in full or as a unique prefix (as CUDA accepts).
            let hits: Vec<usize> = all
                .iter()
                .enumerate()
                .filter(|(_, g)| g.id.starts_with(entry))
                .map(|(i, _)| i)
                .collect();
            if hits.len() > 1 {
                return Err(GpuError::Selection(format!(
                    "{what}: {entry:?} matches {} GPUs; give more of the UUID",
                    hits.len()
                )));
            }
            hits.first().copied()
        };
        let Some(pos) = pos else {
            let known: Vec<String> = all
                .iter()
                .map(|g| format!("{} ({})", g.index, g.id))
                .collect();
            return Err(GpuError::Selection(format!(
                "{what}: no GPU {entry:?} on this node; GPUs present: {}",
                if known.is_empty() {
                    "none".to_string()
                } else {
                    known.join(", ")
                }
            )));
        };
        if !out.contains(&pos) {
            out.push(pos);
        }
    }
    if out.is_empty() {
        return Err(GpuError::Selection(format!("{what} selects no GPU")));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counter(mj: u64) -> Reading {
        Reading {
            energy_mj: Some(mj),
            power_mw: Some(300_000),
            ..Default::default()
        }
    }

    #[test]
    fn counter_deltas_resets_and_wraps() {
        let mut t = EnergyTracker::default();
        assert_eq!(t.step(0, &counter(1_000)), (None, Step::First));
        assert_eq!(
            t.step(1_000_000, &counter(301_000)),
            (Some(300_000), Step::Delta)
        );
        // Driver reload: the counter restarts; 0.5 s at 300 W = 150,000 mJ estimated,
        // the counter shows 20,000 mJ since the reset: the larger is taken.
        assert_eq!(
            t.step(1_500_000, &counter(20_000)),
            (Some(150_000), Step::Reset)
        );
        // Counting goes on from the new value.
        assert_eq!(
            t.step(2_500_000, &counter(320_000)),
            (Some(300_000), Step::Delta)
        );
        assert_eq!(t.resets, 1);
        let mut w = EnergyTracker::default();
        w.step(0, &counter(u64::MAX - 99));
        assert_eq!(w.step(100_000, &counter(400)), (Some(500), Step::Wrap));
        assert_eq!(w.wraps, 1);
    }

    #[test]
    fn power_integration_carries_the_remainder() {
        let mut t = EnergyTracker::default();
        let p = Reading {
            power_mw: Some(333_333),
            ..Default::default()
        };
        t.step(0, &p);
        let mut total = 0;
        for k in 1..=1000 {
            total += t.step(k * 1_000, &p).0.unwrap();
        }
        // 333.333 W for 1 s = 333,333 mJ exactly, though every 1 ms step is 333.333 mJ.
        assert_eq!(total, 333_333);
    }

    #[test]
    fn gpu_selection() {
        let all: Vec<GpuInfo> = (0..4)
            .map(|i| GpuInfo {
                index: i,
                id: format!("GPU-{i}a{i}b-0000"),
                name: "H100".into(),
            })
            .collect();
        assert_eq!(select_gpus(&all, None, None).unwrap(), vec![0, 1, 2, 3]);
        assert_eq!(select_gpus(&all, None, Some("2,0")).unwrap(), vec![2, 0]);
        assert_eq!(
            select_gpus(&all, Some("GPU-3a3b"), Some("0")).unwrap(),
            vec![3]
        );
        let e = select_gpus(&all, Some("7"), None).unwrap_err().to_string();
        assert!(e.contains("no GPU \"7\""), "{e}");
        let e = select_gpus(&all, None, Some("GPU-"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("matches 4 GPUs"), "{e}");
    }
}
