//! One module per command: each has `Args` (clap) and `run(Args) -> anyhow::Result<()>`.
