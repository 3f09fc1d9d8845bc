//! One module per command: each has `Args` (clap) and `run(Args) -> anyhow::Result<()>`.
pub mod hardware;
pub mod infer;
pub mod models;
pub mod plan;
pub mod search;
pub mod show;
pub mod simulate;
pub mod trace;
pub mod train;
