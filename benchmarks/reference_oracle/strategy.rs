//! Stand-in for the reference's revm-backed EVMStrategy with the same API: each hook call goes to a C
//! callback (Python runs it in stratforge's EVM or as a fresh pyrevm transaction); the calldata
//! encoding and the fee decoding are the reference's own (types/trade_info.rs).
use crate::types::trade_info::{decode_fee_pair, encode_after_initialize, TradeInfo};
use crate::types::wad::Wad;

#[derive(Debug)]
pub enum EVMError { ExecutionFailed(String), InvalidReturnData(String) }
impl std::fmt::Display for EVMError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result { write!(f, "{:?}", self) }
}

pub type HookFn = extern "C" fn(ctx: u64, calldata: *const u8, len: usize, out: *mut u8, out_len: *mut usize) -> i32;

pub struct EVMStrategy { name: String, ctx: u64, hook: Option<HookFn>, trade_calldata: [u8; 196] }

impl EVMStrategy {
    pub fn new(name: String, ctx: u64, hook: Option<HookFn>) -> Self {
        Self { name, ctx, hook, trade_calldata: [0u8; 196] }
    }
    pub fn name(&self) -> &str { &self.name }
    fn call(&mut self, calldata: &[u8]) -> Result<Vec<u8>, EVMError> {
        match self.hook {
            None => {
                // the normalizer: VanillaStrategy returns (30 bps, 30 bps) from both hooks
                let mut out = vec![0u8; 64];
                let fee: u128 = 30 * 100_000_000_000_000;
                out[16..32].copy_from_slice(&fee.to_be_bytes());
                out[48..64].copy_from_slice(&fee.to_be_bytes());
                Ok(out)
            }
            Some(h) => {
                let mut out = vec![0u8; 64];
                let mut n: usize = 0;
                let rc = h(self.ctx, calldata.as_ptr(), calldata.len(), out.as_mut_ptr(), &mut n as *mut usize);
                if rc != 0 { return Err(EVMError::ExecutionFailed("call failed".into())); }
                out.truncate(n);
                Ok(out)
            }
        }
    }
    pub fn after_initialize(&mut self, initial_x: Wad, initial_y: Wad) -> Result<(Wad, Wad), EVMError> {
        let calldata = encode_after_initialize(initial_x, initial_y);
        let result = self.call(&calldata)?;
        decode_fee_pair(&result).ok_or_else(|| EVMError::InvalidReturnData("fee pair".into()))
    }
    pub fn after_swap(&mut self, trade: &TradeInfo) -> Result<(Wad, Wad), EVMError> {
        trade.encode_calldata(&mut self.trade_calldata);
        let calldata = self.trade_calldata;
        let result = self.call(&calldata)?;
        decode_fee_pair(&result).ok_or_else(|| EVMError::InvalidReturnData("fee pair".into()))
    }
    pub fn reset(&mut self) -> Result<(), EVMError> { Ok(()) }
}
