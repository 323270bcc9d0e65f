//! Real GPUs through NVML (`nvml-wrapper` loads `libnvidia-ml.so.1` at run time).
//!
//! Energy comes from the total-energy counter (millijoules since the driver loaded,
//! Volta and newer); GPUs without it fall back to power readings integrated over time,
//! recorded as `power_integration` so the row says how it was measured.

use anyhow::{Result, bail};
use gco_ledger::Measurement;
use gco_ledger::time::Micros;
use nvml_wrapper::Nvml;
use nvml_wrapper::error::NvmlError;

use crate::gpu::{GpuInfo, GpuSource, Reading, select_gpus};

pub struct NvmlSource {
    nvml: Nvml,
    gpus: Vec<GpuInfo>,
    counter: bool,
}

/// Opens NVML with a message that says what to do when the driver is missing.
pub fn open() -> Result<Nvml> {
    match Nvml::init() {
        Ok(n) => Ok(n),
        Err(NvmlError::LibloadingError(e)) => bail!(
            "the NVIDIA driver library libnvidia-ml.so.1 could not be loaded ({e}); install the \
             NVIDIA driver (or run in a container with the NVIDIA runtime), or pass --simulate \
             to measure simulated GPUs"
        ),
        Err(e) => bail!("NVML failed to initialise: {e}"),
    }
}

/// Every GPU the driver sees.
pub fn list(nvml: &Nvml) -> Result<Vec<GpuInfo>> {
    let n = nvml.device_count()?;
    let mut out = Vec::with_capacity(n as usize);
    for i in 0..n {
        let d = nvml.device_by_index(i)?;
        out.push(GpuInfo {
            index: i,
            id: d.uuid()?,
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
            bail!("NVML sees no GPU on this node");
        }
        let picked = select_gpus(&all, requested, cuda_visible)?;
        let gpus: Vec<GpuInfo> = picked.into_iter().map(|i| all[i].clone()).collect();
        // The counter must be there on every selected GPU, else all use power.
        let mut counter = true;
        for g in &gpus {
            let d = nvml.device_by_index(g.index)?;
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
                Err(e) => bail!(
                    "reading the energy counter of GPU {} ({}): {e}",
                    g.index,
                    g.id
                ),
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
            let d = self.nvml.device_by_index(g.index)?;
            out.push(Reading {
                energy_mj: if self.counter {
                    Some(d.total_energy_consumption()?)
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
