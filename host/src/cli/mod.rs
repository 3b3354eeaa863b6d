//! The command line: parsing and output formatting only; all logic lives in
//! `runtime`.

mod container;
mod driver;
mod image;
mod network;
mod output;
mod scaffold;
mod terminal;

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

    /// Wall-clock limit of one driver call, in milliseconds.
    #[arg(long, global = true, env = "MYDOCKER_DRIVER_TIMEOUT_MS", default_value_t = 1000,
          value_parser = clap::value_parser!(u64).range(10..=600_000))]
    pub driver_timeout_ms: u64,

    /// Linear memory limit of one driver instance, in MiB.
    #[arg(long, global = true, env = "MYDOCKER_DRIVER_MEMORY_MB", default_value_t = 64,
          value_parser = clap::value_parser!(u64).range(1..=4096))]
    pub driver_memory_mb: u64,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run a command in a new container.
    Run(container::RunArgs),
    /// List containers.
    Ps {
        /// Show all containers (default: running only).
        #[arg(short = 'a', long)]
        all: bool,
        #[arg(long, value_enum, default_value = "table")]
        format: Format,
    },
    /// Show a container's output.
    Logs {
        /// Keep following the output until the container stops.
        #[arg(short = 'f', long)]
        follow: bool,
        container: String,
    },
    /// Run a command in a running container.
    Exec {
        #[arg(short = 'i', long)]
        interactive: bool,
        #[arg(short = 't', long)]
        tty: bool,
        container: String,
        #[arg(required = true, trailing_var_arg = true, allow_hyphen_values = true)]
        command: Vec<String>,
    },
    /// Show containers in detail (JSON): config, state, pid, addresses.
    Inspect {
        #[arg(required = true)]
        containers: Vec<String>,
    },
    /// Stop running containers (SIGTERM, then SIGKILL after the timeout).
    Stop {
        /// Seconds to wait before killing.
        #[arg(short = 't', long, default_value_t = 10)]
        time: u64,
        #[arg(required = true)]
        containers: Vec<String>,
    },
    /// Remove containers.
    Rm {
        /// Kill running containers first.
        #[arg(short = 'f', long)]
        force: bool,
        #[arg(required = true)]
        containers: Vec<String>,
    },
    /// Remove containers that are not running.
    #[command(name = "container")]
    Container {
        #[command(subcommand)]
        command: ContainerCommand,
    },
    /// List images.
    Images {
        #[arg(long, value_enum, default_value = "table")]
        format: Format,
    },
    /// Manage images.
    #[command(subcommand)]
    Image(image::ImageCommand),
    /// Manage networks.
    #[command(subcommand)]
    Network(network::NetworkCommand),
    /// Manage network drivers.
    #[command(subcommand)]
    Driver(driver::DriverCommand),
    /// Maintenance.
    #[command(subcommand)]
    System(SystemCommand),
    /// Internal: supervises a detached container.
    #[command(name = "__supervise", hide = true)]
    Supervise { id: String },
}

#[derive(Debug, Subcommand)]
pub enum ContainerCommand {
    /// Remove every container that is not running.
    Prune,
}

#[derive(Debug, Subcommand)]
pub enum SystemCommand {
    /// Reconcile state with the kernel: roll back interrupted operations,
    /// clean up containers whose process died, delete stray links.
    Gc {
        /// Print what would be done without doing it.
        #[arg(long)]
        dry_run: bool,
    },
}

/// Output format of list/inspect commands.
#[derive(Debug, Clone, Copy, clap::ValueEnum, PartialEq, Eq)]
pub enum Format {
    Table,
    Json,
}

/// Runs one parsed command line; returns the process exit code.
pub fn run(cli: Cli) -> Result<i32> {
    let limits = crate::driver::Limits {
        timeout: std::time::Duration::from_millis(cli.driver_timeout_ms),
        memory_bytes: (cli.driver_memory_mb as usize) << 20,
        ..Default::default()
    };
    let rt = Runtime::open_with_limits(&cli.root, limits)
        .map_err(|e| anyhow::anyhow!("cannot open state root {}: {e}", cli.root.display()))?;
    match cli.command {
        Command::Run(args) => return container::run(&rt, args),
        Command::Ps { all, format } => container::ps(&rt, all, format)?,
        Command::Logs { follow, container } => container::logs(&rt, &container, follow)?,
        Command::Exec {
            interactive,
            tty,
            container,
            command,
        } => return container::exec(&rt, &container, interactive, tty, command),
        Command::Inspect { containers } => container::inspect(&rt, &containers)?,
        Command::Stop { time, containers } => container::stop(&rt, &containers, time)?,
        Command::Rm { force, containers } => container::rm(&rt, &containers, force)?,
        Command::Images { format } => image::list(&rt, format)?,
        Command::Container {
            command: ContainerCommand::Prune,
        } => {
            for c in rt.containers()? {
                if !c.alive && !c.status.starter_alive() {
                    rt.remove_container(&c.config.id, false)?;
                    println!("{}", c.config.name);
                }
            }
        }
        Command::Image(cmd) => image::run(&rt, cmd)?,
        Command::Network(cmd) => network::run(&rt, cmd)?,
        Command::Driver(cmd) => driver::run(&rt, cmd)?,
        Command::Supervise { id } => return container::supervise(&rt, &id),
        Command::System(SystemCommand::Gc { dry_run }) => {
            let lines = rt.gc(dry_run)?;
            if lines.is_empty() {
                println!("nothing to recover");
            }
            for line in lines {
                println!("{line}");
            }
        }
    }
    Ok(0)
}

/// Rewrites the article's single-dash long flags (`-net`, `-name`, …) to
/// clap's `--net`, and puts `--` after the image of `run` (and the
/// container of `exec`) so the command's own arguments pass through
/// exactly, whatever they look like.
pub fn normalize_args(args: Vec<String>) -> Vec<String> {
    let mut out = Vec::with_capacity(args.len() + 1);
    let mut it = args.into_iter();
    out.extend(it.next()); // program name
    let mut rest: Vec<String> = it.collect();
    // Global options before the subcommand.
    let mut i = 0;
    while i < rest.len() {
        if rest[i] == "--root" {
            i += 2;
        } else if rest[i].starts_with("--root=") {
            i += 1;
        } else {
            break;
        }
    }
    const RUN_VALUE_FLAGS: &[&str] = &[
        "-e",
        "--env",
        "-v",
        "--volume",
        "-m",
        "--memory",
        "--cpus",
        "--cpuset-cpus",
        "--net",
        "--network",
        "-p",
        "--publish",
        "--name",
        "--hostname",
        "--root",
    ];
    const RUN_SINGLE_DASH: &[&str] = &[
        "-net",
        "-network",
        "-name",
        "-hostname",
        "-rm",
        "-cpus",
        "-memory",
        "-env",
    ];
    let (takes_value, single_dash): (&[&str], &[&str]) = match rest.get(i).map(String::as_str) {
        Some("run") => (RUN_VALUE_FLAGS, RUN_SINGLE_DASH),
        Some("exec") => (&["--root"], &[]),
        _ => {
            out.append(&mut rest);
            return out;
        }
    };
    out.extend(rest.drain(..=i));
    let mut j = 0;
    while j < rest.len() {
        let arg = &rest[j];
        let fixed = match arg.split_once('=') {
            Some((flag, value)) if single_dash.contains(&flag) => format!("-{flag}={value}"),
            _ if single_dash.contains(&arg.as_str()) => format!("-{arg}"),
            _ => arg.clone(),
        };
        if fixed == "--" || !fixed.starts_with('-') {
            // The first positional (image / container): everything after
            // it belongs to the command.
            if fixed != "--" {
                out.push(fixed);
            }
            out.push("--".to_string());
            out.extend(rest.drain(j + 1..));
            return out;
        }
        let needs_value = takes_value.contains(&fixed.as_str());
        out.push(fixed);
        if needs_value && j + 1 < rest.len() {
            out.push(rest[j + 1].clone());
            j += 1;
        }
        j += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::normalize_args;

    fn norm(s: &str) -> Vec<String> {
        normalize_args(s.split_whitespace().map(String::from).collect())
    }

    #[test]
    fn article_spelling_and_passthrough() {
        assert_eq!(
            norm("mydocker run -it -net testbridge busybox sh"),
            [
                "mydocker",
                "run",
                "-it",
                "--net",
                "testbridge",
                "busybox",
                "--",
                "sh"
            ]
        );
        assert_eq!(
            norm("mydocker --root /r run -d -name web -p 8080:80 busybox httpd -f -p 80 -name x"),
            [
                "mydocker", "--root", "/r", "run", "-d", "--name", "web", "-p", "8080:80",
                "busybox", "--", "httpd", "-f", "-p", "80", "-name", "x"
            ]
        );
        assert_eq!(
            norm("mydocker exec -it web ls -la"),
            ["mydocker", "exec", "-it", "web", "--", "ls", "-la"]
        );
        assert_eq!(norm("mydocker network ls"), ["mydocker", "network", "ls"]);
        assert_eq!(
            norm("mydocker run -net=n1 img"),
            ["mydocker", "run", "--net=n1", "img", "--"]
        );
    }
}
