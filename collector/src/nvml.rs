//! Real GPUs through NVML (`nvml-wrapper` loads `libnvidia-ml.so.1` at run time).
//!
//! Energy comes from the total-energy counter (millijoules since the driver loaded,
//! Volta and newer); GPUs without it fall back to power readings integrated over time,
//! recorded as `power_integration` so the row says how it was measured.

use gco_ledger::Measurement;
use gco_ledger::time::Micros;
use nvml_wrapper::Nvml;
use nvml_wrapper::error::NvmlError;

use crate::gpu::{GpuError, GpuInfo, GpuSource, Reading, select_gpus};

pub struct NvmlSource {
    nvml: Nvml,
    gpus: Vec<GpuInfo>,
    counter: bool,
}

/// Opens NVML with a message that says what to do when the driver is missing.
pub fn open() -> Result<Nvml> {
    match Nvml::init() {
        Ok(n) => Ok(n),
        Err(NvmlError::LibloadingError(e)) => Err(GpuError::DriverMissing(e.to_string())),
        Err(e) => Err(GpuError::driver("NVML failed to initialise", e)),
    }
}

type Result<T, E = GpuError> = std::result::Result<T, E>;

/// Every GPU the driver sees.
pub fn list(nvml: &Nvml) -> Result<Vec<GpuInfo>> {
    let n = nvml
        .device_count()
        .map_err(|e| GpuError::driver("counting GPUs", e))?;
    let mut out = Vec::with_capacity(n as usize);
    for i in 0..n {
        let d = nvml
            .device_by_index(i)
            .map_err(|e| GpuError::driver(format!("opening GPU {i}"), e))?;
        out.push(GpuInfo {
            index: i,
            id: d
                .uuid()
                .map_err(|e| GpuError::driver(format!("reading the UUID of GPU {i}"), e))?,
            name: d.name().unwrap_or_else(|_| "unknown".into()),
        });
    }
    Ok(out)
}

impl NvmlSource {
    /// Opens the GPUs selected by `--gpus` / `CUDA_VISIBLE_DEVICES` (all when neither).
    pub fn open(requested: Option<&str>, cuda_visible: Option<&str>) -> Result<Self> {
        let nvml = open()?;
        let all = list(&nvml)?;
        if all.is_empty() {
            return Err(GpuError::NoGpu);
        }
        let picked = select_gpus(&all, requested, cuda_visible)?;
        let gpus: Vec<GpuInfo> = picked.into_iter().map(|i| all[i].clone()).collect();
        // The counter must be there on every selected GPU, else all use power.
        let mut counter = true;
        for g in &gpus {
            let d = nvml
                .device_by_index(g.index)
                .map_err(|e| GpuError::driver(format!("opening GPU {} ({})", g.index, g.id), e))?;
            match d.total_energy_consumption() {
                Ok(_) => {}
                Err(NvmlError::NotSupported) | Err(NvmlError::FailedToLoadSymbol(_)) => {
                    tracing::warn!(
                        gpu = %g.id,
                        "no total-energy counter on this GPU/driver: integrating power readings \
                         (less accurate; see docs/collector.md)"
                    );
                    counter = false;
                }
                Err(e) => {
                    return Err(GpuError::driver(
                        format!("reading the energy counter of GPU {} ({})", g.index, g.id),
                        e,
                    ));
                }
            }
        }
        Ok(NvmlSource {
            nvml,
            gpus,
            counter,
        })
    }
}

impl GpuSource for NvmlSource {
    fn gpus(&self) -> &[GpuInfo] {
        &self.gpus
    }

    fn measurement(&self) -> Measurement {
        if self.counter {
            Measurement::EnergyCounter
        } else {
            Measurement::PowerIntegration
        }
    }

    fn read(&mut self, _t: Micros) -> Result<Vec<Reading>> {
        let mut out = Vec::with_capacity(self.gpus.len());
        for g in &self.gpus {
            let d = self
                .nvml
                .device_by_index(g.index)
                .map_err(|e| GpuError::driver(format!("opening GPU {}", g.index), e))?;
            out.push(Reading {
                energy_mj: if self.counter {
                    Some(d.total_energy_consumption().map_err(|e| {
                        GpuError::driver(
                            format!("reading the energy counter of GPU {}", g.index),
                            e,
                        )
                    })?)
                } else {
                    None
                },
                power_mw: d.power_usage().ok(),
                utilization_pct: d.utilization_rates().ok().map(|u| u.gpu.min(100) as u8),
                memory_used: d.memory_info().ok().map(|m| m.used),
            });
        }
        Ok(out)
    }
}
