//! The reference's SimulationConfig without its Python bindings.
#[derive(Debug, Clone)]
pub struct SimulationConfig {
    pub n_steps: u32,
    pub initial_price: f64,
    pub initial_x: f64,
    pub initial_y: f64,
    pub gbm_mu: f64,
    pub gbm_sigma: f64,
    pub gbm_dt: f64,
    pub retail_arrival_rate: f64,
    pub retail_mean_size: f64,
    pub retail_size_sigma: f64,
    pub retail_buy_prob: f64,
    pub seed: Option<u64>,
}
