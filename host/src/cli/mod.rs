//! The command line: parsing and output formatting only; all logic lives in
//! `runtime`.

mod driver;
mod network;
mod output;

use std::path::PathBuf;

use anyhow::Result;
use clap::{Parser, Subcommand};

use crate::runtime::{Runtime, DEFAULT_ROOT};

#[derive(Debug, Parser)]
#[command(
    name = "mydocker",
    version,
    about = "A Docker-like container runtime with sandboxed WebAssembly network drivers"
)]
pub struct Cli {
    /// Directory holding all state (networks, drivers, caches).
    #[arg(long, global = true, env = "MYDOCKER_ROOT", default_value = DEFAULT_ROOT)]
    pub root: PathBuf,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Manage networks.
    #[command(subcommand)]
    Network(network::NetworkCommand),
    /// Manage network drivers.
    #[command(subcommand)]
    Driver(driver::DriverCommand),
}

/// Output format of list/inspect commands.
#[derive(Debug, Clone, Copy, clap::ValueEnum, PartialEq, Eq)]
pub enum Format {
    Table,
    Json,
}

/// Runs one parsed command line.
pub fn run(cli: Cli) -> Result<()> {
    let rt = Runtime::open(&cli.root)
        .map_err(|e| anyhow::anyhow!("cannot open state root {}: {e}", cli.root.display()))?;
    match cli.command {
        Command::Network(cmd) => network::run(&rt, cmd),
        Command::Driver(cmd) => driver::run(&rt, cmd),
    }
}
