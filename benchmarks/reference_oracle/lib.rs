//! The reference engine's own market code (amm_sim_rs: price process, retail flow, arbitrage, router,
//! CFMM, simulation loop, copied unchanged from a checkout at build time) with its hooks served by a
//! callback, behind a C ABI for benchmarks/reference_oracle.py. A measurement tool, not stratforge.
pub mod types;
pub mod evm;
pub mod amm;
pub mod market;
pub mod simulation;

use crate::evm::strategy::{EVMStrategy, HookFn};
use crate::simulation::engine::SimulationEngine;
use crate::types::config::SimulationConfig;

/// p: n_steps, initial_price, initial_x, initial_y, mu, sigma, dt, rate, mean_size, size_sigma, buy_prob
/// out: sub edge, norm edge, sub pnl, sub retail vol, sub arb vol
#[no_mangle]
pub extern "C" fn refsim_run(p: *const f64, seed: u64, hook: HookFn, out: *mut f64) -> i32 {
    let p = unsafe { std::slice::from_raw_parts(p, 11) };
    let config = SimulationConfig {
        n_steps: p[0] as u32, initial_price: p[1], initial_x: p[2], initial_y: p[3], gbm_mu: p[4],
        gbm_sigma: p[5], gbm_dt: p[6], retail_arrival_rate: p[7], retail_mean_size: p[8],
        retail_size_sigma: p[9], retail_buy_prob: p[10], seed: Some(seed),
    };
    let sub = EVMStrategy::new("Submission".into(), 0, Some(hook));
    let norm = EVMStrategy::new("Baseline".into(), 1, None);
    let mut engine = SimulationEngine::new(config);
    match engine.run(sub, norm) {
        Ok(r) => {
            let o = unsafe { std::slice::from_raw_parts_mut(out, 5) };
            o[0] = r.edges["submission"]; o[1] = r.edges["normalizer"]; o[2] = r.pnl["submission"];
            o[3] = r.retail_volume_y["submission"]; o[4] = r.arb_volume_y["submission"];
            0
        }
        Err(_) => 1,
    }
}
