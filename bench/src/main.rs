//! Container network setup, side by side on one machine, inside sandbox
//! namespaces this program creates (and the kernel destroys when it exits):
//! the floor, mydocker's library, the CNI reference plugins and netavark.
//! Run it with `bench/run.sh` (installs the peers first); see
//! docs/performance.md for the method.

mod chart;
mod cni;
mod driver_load;
mod floor;
mod ipam;
mod mydocker;
mod netavark;
mod report;
mod sandbox;
mod stats;
mod targets;

use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, ValueEnum};
use mydocker_tests::Sandbox;
use report::Report;
use stats::Summary;

#[derive(Parser)]
#[command(about = "Benchmark mydocker's network setup against the floor, CNI and netavark")]
struct Args {
    /// Repetitions per case.
    #[arg(default_value_t = 50)]
    reps: usize,
    /// Containers connected one after another in the scale case.
    #[arg(long, default_value_t = 500)]
    scale: usize,
    /// Where results.json and results.svg are written.
    #[arg(long, default_value = "bench/results")]
    out: PathBuf,
    /// Run only these sections (repeatable; default: all).
    #[arg(long, value_enum)]
    only: Vec<Section>,
    /// Run only these systems (repeatable; default: all installed).
    #[arg(long, value_enum)]
    system: Vec<System>,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Section {
    /// Connect and disconnect, without and with 2 published ports.
    Connect,
    /// mydocker network create / remove.
    Network,
    /// 1st, 100th, ..., Nth connect on one network.
    Scale,
    /// IPAM on a /8 with 1M addresses taken.
    Ipam,
    /// bridge.wasm load, cold and warm.
    Driver,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum System {
    Floor,
    Mydocker,
    Cni,
    Netavark,
}

impl System {
    fn label(self) -> &'static str {
        match self {
            System::Floor => "floor",
            System::Mydocker => "mydocker",
            System::Cni => "CNI bridge",
            System::Netavark => "netavark",
        }
    }

    fn installed(self) -> bool {
        match self {
            System::Floor | System::Mydocker => true,
            System::Cni => cni::installed(),
            System::Netavark => netavark::installed(),
        }
    }

    fn connect_disconnect(
        self,
        sb: &Sandbox,
        reps: usize,
        ports: bool,
    ) -> (Vec<Duration>, Vec<Duration>, Option<f64>) {
        match self {
            System::Floor => {
                let (u, d) = floor::connect_disconnect(sb, reps, ports);
                (u, d, None)
            }
            System::Mydocker => {
                let run = mydocker::connect_disconnect(sb, reps, ports);
                (run.up, run.down, Some(run.firewall_per_connect))
            }
            System::Cni => {
                let (u, d) = cni::connect_disconnect(sb, reps, ports);
                (u, d, None)
            }
            System::Netavark => {
                let (u, d) = netavark::connect_disconnect(sb, reps, ports);
                (u, d, None)
            }
        }
    }

    fn scale(self, sb: &Sandbox, n: usize) -> Vec<Duration> {
        match self {
            System::Floor => floor::scale(sb, n),
            System::Mydocker => mydocker::scale(sb, n),
            System::Cni => cni::scale(sb, n),
            System::Netavark => netavark::scale(sb, n),
        }
    }
}

fn main() {
    let args = Args::parse();
    let reps = args.reps.max(2);
    let n = args.scale.max(20);
    let runs = |s: Section| args.only.is_empty() || args.only.contains(&s);
    let all = [
        System::Floor,
        System::Mydocker,
        System::Cni,
        System::Netavark,
    ];
    let systems: Vec<System> = all
        .into_iter()
        .filter(|s| args.system.is_empty() || args.system.contains(s))
        .filter(|s| s.installed())
        .collect();
    let mut report = Report::new(reps, n);
    report.print_header();

    let sb = Sandbox::new();
    if runs(Section::Connect) {
        for ports in [false, true] {
            let label = if ports { " +2 ports" } else { "" };
            for &system in &systems {
                eprintln!("running: {}, connect/disconnect{label}", system.label());
                let (up, down, firewall) = system.connect_disconnect(&sb, reps, ports);
                report.add(Summary::new(&format!("connect{label}"), system.label(), up));
                report.add(Summary::new(
                    &format!("disconnect{label}"),
                    system.label(),
                    down,
                ));
                if let Some(f) = firewall {
                    report
                        .firewall_processes_per_connect
                        .push((label.trim().to_string(), f));
                }
            }
        }
    }
    if runs(Section::Network) && systems.contains(&System::Mydocker) {
        eprintln!("running: mydocker, network create/remove");
        let (create, remove) = mydocker::create_remove(&sb, reps);
        report.add(Summary::new("network create", "mydocker", create));
        report.add(Summary::new("network remove", "mydocker", remove));
    }
    if runs(Section::Scale) {
        for &system in &systems {
            eprintln!("running: {}, scale ({n} containers)", system.label());
            report.add_scale(system.label(), system.scale(&sb, n));
        }
    }
    if runs(Section::Ipam) {
        eprintln!("running: IPAM on a /8 with 1M taken");
        report.ipam = ipam::run(reps.max(1000));
    }
    if runs(Section::Driver) {
        eprintln!("running: driver load");
        let load = driver_load::run(reps, 5);
        report.add(Summary::new(
            "driver: engine create",
            "mydocker",
            load.engine_create,
        ));
        report.add(Summary::new("driver: cold load", "mydocker", load.cold));
        report.add(Summary::new("driver: warm load", "mydocker", load.warm));
    }
    let peers: Vec<&str> = systems
        .iter()
        .filter(|s| matches!(s, System::Cni | System::Netavark))
        .map(|s| s.label())
        .collect();
    report.finish(&peers, &args.out);
}
