//! Simulated GPUs: deterministic from a seed, H100-like power (about 70 W idle to 700 W
//! at full load), and an energy counter that, like NVML's, advances only every 100 ms.
//! Tests can therefore assert exact joules.

use gco_ledger::Measurement;
use gco_ledger::time::Micros;

use crate::gpu::{GpuInfo, GpuSource, Reading};

/// The counter's update period (NVML updates about every 100 ms).
pub const TICK_US: i64 = 100_000;

#[derive(Debug, Clone)]
struct SimGpu {
    /// Last tick whose energy is in the counter.
    tick: Option<i64>,
    counter_mj: u64,
    active: u32,
    last_power_mw: u32,
}

/// A set of simulated GPUs.
#[derive(Debug, Clone)]
pub struct SimGpus {
    seed: u64,
    info: Vec<GpuInfo>,
    gpus: Vec<SimGpu>,
    pub idle_mw: u32,
    pub tdp_mw: u32,
}

/// SplitMix64: the per-tick noise, a pure function of (seed, gpu, tick).
pub fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

impl SimGpus {
    /// `n` simulated H100s. Their counters start at a seed-derived value, as a real
    /// counter starts at whatever the driver accumulated since it loaded.
    pub fn new(n: usize, seed: u64) -> Self {
        SimGpus {
            seed,
            info: (0..n as u32)
                .map(|i| GpuInfo {
                    index: i,
                    id: i.to_string(),
                    name: "Simulated H100 SXM 80GB".into(),
                })
                .collect(),
            gpus: (0..n as u64)
                .map(|i| SimGpu {
                    tick: None,
                    counter_mj: mix(seed ^ i) % 1_000_000_000,
                    active: 0,
                    last_power_mw: 70_000,
                })
                .collect(),
            idle_mw: 70_000,
            tdp_mw: 700_000,
        }
    }

    /// Power of GPU `g` during tick `k` with `active` spans: idle draw plus up to four
    /// concurrent spans' worth of load (80-100 % of the range each), plus 0-5 W noise.
    pub fn power_mw(&self, g: usize, k: i64, active: u32) -> u32 {
        let r = mix(self.seed ^ ((g as u64) << 48) ^ k as u64);
        let noise = (r % 5_000) as u32;
        let busy = active.min(4);
        let span = (self.tdp_mw - self.idle_mw) as u64;
        let load = span * busy as u64 / 4 * (80 + (r >> 32) % 21) / 100;
        self.idle_mw + load as u32 + noise
    }

    /// Simulates a driver reload on GPU `g`: its counter restarts at zero.
    pub fn reset_counter(&mut self, g: usize) {
        self.gpus[g].counter_mj = 0;
    }

    /// Sets GPU `g`'s counter (tests of wraps).
    pub fn set_counter(&mut self, g: usize, mj: u64) {
        self.gpus[g].counter_mj = mj;
    }
}

impl GpuSource for SimGpus {
    fn gpus(&self) -> &[GpuInfo] {
        &self.info
    }

    fn measurement(&self) -> Measurement {
        Measurement::Simulated
    }

    fn read(&mut self, t: Micros) -> Result<Vec<Reading>, crate::gpu::GpuError> {
        let k_now = t.div_euclid(TICK_US);
        let mut out = Vec::with_capacity(self.gpus.len());
        for g in 0..self.gpus.len() {
            let (tick, active) = (self.gpus[g].tick, self.gpus[g].active);
            let from = tick.map_or(k_now, |k| k + 1);
            let mut add = 0u64;
            let mut p = self.gpus[g].last_power_mw;
            // Each completed 100 ms tick adds its power x 100 ms: p mW x 0.1 s = p/10 mJ.
            // The first reading only sets the tick.
            if tick.is_some() {
                for k in from..=k_now {
                    p = self.power_mw(g, k, active);
                    add += p as u64 / 10;
                }
            }
            let s = &mut self.gpus[g];
            s.counter_mj = s.counter_mj.wrapping_add(add);
            s.tick = Some(k_now);
            s.last_power_mw = p;
            out.push(Reading {
                energy_mj: Some(s.counter_mj),
                power_mw: Some(p),
                utilization_pct: Some((active.min(4) * 25) as u8),
                memory_used: Some((active as u64 * 20) << 30),
            });
        }
        Ok(out)
    }

    fn set_activity(&mut self, gpu: usize, active: u32) {
        if let Some(g) = self.gpus.get_mut(gpu) {
            g.active = active;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gpu::EnergyTracker;

    #[test]
    fn deterministic_counter_with_100ms_granularity() {
        let mut a = SimGpus::new(2, 7);
        let mut b = SimGpus::new(2, 7);
        let r0 = a.read(1_000_000).unwrap();
        assert_eq!(r0, b.read(1_000_000).unwrap());
        // 50 ms later the counter has not moved (like NVML below its update period).
        let r1 = a.read(1_050_000).unwrap();
        assert_eq!(r1[0].energy_mj, r0[0].energy_mj);
        a.set_activity(0, 2);
        let r2 = a.read(2_000_000).unwrap();
        let idle_sum: u64 = (11..=20).map(|k| a.power_mw(1, k, 0) as u64 / 10).sum();
        let busy_sum: u64 = (11..=20).map(|k| a.power_mw(0, k, 2) as u64 / 10).sum();
        assert_eq!(
            r2[1].energy_mj.unwrap() - r0[1].energy_mj.unwrap(),
            idle_sum
        );
        assert_eq!(
            r2[0].energy_mj.unwrap() - r0[0].energy_mj.unwrap(),
            busy_sum
        );
        // 10 ticks of an idle H100: 70-75 W for 1 s.
        assert!((70_000..75_000).contains(&idle_sum), "{idle_sum}");
        assert!((300_000..400_000).contains(&busy_sum), "{busy_sum}");
    }

    #[test]
    fn reset_is_accounted_once() {
        let mut s = SimGpus::new(1, 1);
        let mut t = EnergyTracker::default();
        t.step(0, &s.read(0).unwrap()[0]);
        let e1 = t.step(1_000_000, &s.read(1_000_000).unwrap()[0]).0.unwrap();
        s.reset_counter(0);
        let r = s.read(2_000_000).unwrap()[0];
        let (e2, step) = t.step(2_000_000, &r);
        assert_eq!(step, crate::gpu::Step::Reset);
        // After the reset the counter holds one second of idle energy; the power
        // estimate (last 100 ms power x 1 s) is the larger, as it covers the whole interval.
        assert_eq!(
            e2.unwrap(),
            (r.power_mw.unwrap() as u64).max(r.energy_mj.unwrap())
        );
        assert!(e1 > 0);
    }
}
