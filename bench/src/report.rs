//! The run's results: the printed table, the goals, results.json and
//! results.svg.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use serde::Serialize;

use crate::stats::Summary;
use crate::targets::{self, at_most, Target};
use crate::{chart, cni, ipam, netavark};

#[derive(Serialize)]
struct Machine {
    cpu: String,
    cores: usize,
    kernel: String,
    iptables: String,
    cni_plugins: Option<String>,
    netavark: Option<String>,
}

#[derive(Serialize)]
struct ScalePoint {
    system: String,
    first_ms: f64,
    hundredth_ms: Option<f64>,
    last_ms: f64,
    last_index: usize,
    /// Every connect, in order.
    times_ms: Vec<f64>,
}

#[derive(Serialize)]
struct IpamResult {
    layout: String,
    taken: u32,
    allocate_median_us: f64,
    allocate_p95_us: f64,
    persisted_cycle_median_ms: f64,
    bytes_on_disk: u64,
}

#[derive(Serialize)]
pub struct Report {
    reps: usize,
    scale_containers: usize,
    machine: Machine,
    results: Vec<Summary>,
    scale: Vec<ScalePoint>,
    #[serde(skip)]
    pub ipam: Vec<ipam::Measured>,
    #[serde(rename = "ipam")]
    ipam_results: Vec<IpamResult>,
    /// iptables processes per mydocker connect (steady state), per case.
    pub firewall_processes_per_connect: Vec<(String, f64)>,
    targets: Vec<Target>,
    #[serde(skip)]
    scale_times: Vec<(String, Vec<Duration>)>,
}

fn output(program: &str, args: &[&str]) -> Option<String> {
    let out = Command::new(program).args(args).output().ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

fn package_version(package: &str) -> Option<String> {
    output("dpkg-query", &["-W", "-f=${Version}", package]).filter(|v| !v.is_empty())
}

fn machine() -> Machine {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let installed = |yes: bool, package: &str| {
        yes.then(|| package_version(package).unwrap_or_else(|| "installed".into()))
    };
    Machine {
        cpu: cpuinfo
            .lines()
            .find_map(|l| l.strip_prefix("model name"))
            .map(|l| l.trim_start_matches([' ', '\t', ':']).to_string())
            .unwrap_or_else(|| "unknown".into()),
        cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
        kernel: output("uname", &["-r"]).unwrap_or_default(),
        iptables: output("iptables", &["--version"]).unwrap_or_default(),
        cni_plugins: installed(cni::installed(), "containernetworking-plugins"),
        netavark: installed(netavark::installed(), "netavark"),
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn human(ms: f64) -> String {
    if ms < 1.0 {
        format!("{:.1} µs", ms * 1000.0)
    } else {
        format!("{ms:.2} ms")
    }
}

/// The connects numbered `from..=to` (1-based), so that one scheduler
/// hiccup does not decide the scale goal.
fn window(times: &[Duration], from: usize, to: usize) -> Vec<Duration> {
    times[from - 1..to.min(times.len())].to_vec()
}

impl Report {
    pub fn new(reps: usize, scale_containers: usize) -> Report {
        Report {
            reps,
            scale_containers,
            machine: machine(),
            results: Vec::new(),
            scale: Vec::new(),
            ipam: Vec::new(),
            ipam_results: Vec::new(),
            firewall_processes_per_connect: Vec::new(),
            targets: Vec::new(),
            scale_times: Vec::new(),
        }
    }

    pub fn print_header(&self) {
        let m = &self.machine;
        println!(
            "mydocker network benchmark: {} repetitions per case, {} containers in the scale case",
            self.reps, self.scale_containers
        );
        println!(
            "machine: {} ({} cores), kernel {}, {}",
            m.cpu, m.cores, m.kernel, m.iptables
        );
        match &m.cni_plugins {
            Some(v) => println!("peer: CNI reference plugins {v} ({})", cni::PLUGIN_DIR),
            None => println!("peer: CNI reference plugins NOT INSTALLED (apt-get install containernetworking-plugins): skipped"),
        }
        match &m.netavark {
            Some(v) => println!("peer: netavark {v} ({})", netavark::BINARY),
            None => println!("peer: netavark NOT INSTALLED (apt-get install netavark): skipped"),
        }
    }

    pub fn add(&mut self, summary: Summary) {
        self.results.push(summary);
    }

    pub fn add_scale(&mut self, system: &str, times: Vec<Duration>) {
        let n = times.len();
        self.scale.push(ScalePoint {
            system: system.to_string(),
            first_ms: ms(times[0]),
            hundredth_ms: times.get(99).copied().map(ms),
            last_ms: ms(times[n - 1]),
            last_index: n,
            times_ms: times.iter().copied().map(ms).collect(),
        });
        self.add(Summary::new(
            "scale: connects 1-10",
            system,
            window(&times, 1, 10),
        ));
        if n >= 105 {
            self.add(Summary::new(
                "scale: connects 96-105",
                system,
                window(&times, 96, 105),
            ));
        }
        self.add(Summary::new(
            &format!("scale: connects {}-{n}", n - 9),
            system,
            window(&times, n - 9, n),
        ));
        self.scale_times.push((system.to_string(), times));
    }

    fn print_table(&self) {
        println!();
        println!(
            "{:<26} {:<11} {:>11} {:>11} {:>11}",
            "case", "system", "median", "p95", "min"
        );
        for r in &self.results {
            let vs = match targets::median(&self.results, &r.case, "floor") {
                Some(f) if r.system != "floor" => format!("{:.2}× floor", r.median_ms / f),
                _ => String::new(),
            };
            println!(
                "{:<26} {:<11} {:>11} {:>11} {:>11}  {vs}",
                r.case,
                r.system,
                human(r.median_ms),
                human(r.p95_ms),
                human(r.min_ms)
            );
        }
        for p in &self.scale {
            let hundredth = p.hundredth_ms.map_or("-".into(), human);
            println!(
                "scale {:<11} connect #1 {}   #100 {hundredth}   #{} {}",
                p.system,
                human(p.first_ms),
                p.last_index,
                human(p.last_ms)
            );
        }
        for r in &self.ipam_results {
            println!(
                "IPAM /8, {:<13}  allocate+release median {:.2} µs (p95 {:.2} µs); read+allocate+write ipam.json {:.2} ms; file {} bytes",
                r.layout, r.allocate_median_us, r.allocate_p95_us, r.persisted_cycle_median_ms, r.bytes_on_disk
            );
        }
        for (case, f) in &self.firewall_processes_per_connect {
            let case = if case.is_empty() { "no ports" } else { case };
            println!("firewall processes per mydocker connect ({case}, steady state): {f:.2}");
        }
    }

    fn evaluate(&mut self, peers: &[&str]) {
        let mut goals = targets::network_targets(&self.results, peers);
        if let Some((_, times)) = self.scale_times.iter().find(|(s, _)| s == "mydocker") {
            let n = times.len();
            let first = Summary::new("", "", window(times, 1, 10)).median_ms;
            let last = Summary::new("", "", window(times, n - 9, n)).median_ms;
            goals.push(Target {
                goal: format!(
                    "scale: connects {}-{n} ≤ 1.3× connects 1-10 (medians)",
                    n - 9
                ),
                measured: format!("{last:.2} ms vs {first:.2} ms = {:.2}×", last / first),
                met: last <= 1.3 * first,
            });
        }
        if let Some(w) = targets::median(&self.results, "driver: warm load", "mydocker") {
            goals.push(at_most(
                "driver: warm load (cache hit + instantiate + info)",
                w,
                1.0,
                "ms",
            ));
        }
        if let Some(c) = targets::median(&self.results, "driver: cold load", "mydocker") {
            goals.push(at_most(
                "driver: cold load (compile + cache write)",
                c,
                200.0,
                "ms",
            ));
        }
        for r in &self.ipam_results {
            goals.push(at_most(
                &format!("IPAM {}: allocate", r.layout),
                r.allocate_median_us,
                100.0,
                "µs",
            ));
            goals.push(at_most(
                &format!("IPAM {}: ipam.json size", r.layout),
                r.bytes_on_disk as f64 / 1e6,
                10.0,
                "MB",
            ));
        }
        let most = self
            .firewall_processes_per_connect
            .iter()
            .map(|(_, f)| *f)
            .reduce(f64::max);
        if let Some(f) = most {
            goals.push(at_most(
                "firewall processes per connect",
                f,
                1.0,
                "processes",
            ));
        }
        self.targets = goals;
    }

    /// Prints everything, checks the goals and writes the files.
    pub fn finish(mut self, peers: &[&str], out: &Path) {
        for m in std::mem::take(&mut self.ipam) {
            let a = Summary::new("ipam allocate", "mydocker", m.allocate);
            let c = Summary::new("ipam persisted", "mydocker", m.persisted_cycle);
            self.ipam_results.push(IpamResult {
                layout: m.layout.to_string(),
                taken: ipam::TAKEN,
                allocate_median_us: a.median_ms * 1000.0,
                allocate_p95_us: a.p95_ms * 1000.0,
                persisted_cycle_median_ms: c.median_ms,
                bytes_on_disk: m.bytes_on_disk,
            });
        }
        self.print_table();
        self.evaluate(peers);
        println!("\ntargets:");
        for t in &self.targets {
            println!(
                "  [{}] {:<58} {}",
                if t.met { "met " } else { "MISS" },
                t.goal,
                t.measured
            );
        }
        self.write(out);
    }

    /// The results and goals as Markdown tables (for docs/performance.md).
    fn markdown(&self) -> String {
        let mut out = String::from(
            "| case | system | median | p95 | min | vs floor |\n|---|---|---|---|---|---|\n",
        );
        for r in &self.results {
            let vs = match targets::median(&self.results, &r.case, "floor") {
                Some(f) if r.system != "floor" => format!("{:.2}×", r.median_ms / f),
                _ => String::new(),
            };
            out.push_str(&format!(
                "| {} | {} | {} | {} | {} | {vs} |\n",
                r.case,
                r.system,
                human(r.median_ms),
                human(r.p95_ms),
                human(r.min_ms)
            ));
        }
        for r in &self.ipam_results {
            out.push_str(&format!(
                "| IPAM /8, {} | mydocker | allocate+release {:.2} µs; read+allocate+write {:.2} ms; file {} bytes | | | |\n",
                r.layout, r.allocate_median_us, r.persisted_cycle_median_ms, r.bytes_on_disk
            ));
        }
        for (case, f) in &self.firewall_processes_per_connect {
            let case = if case.is_empty() { "no ports" } else { case };
            out.push_str(&format!(
                "| firewall processes per connect ({case}) | mydocker | {f:.2} | | | |\n"
            ));
        }
        out.push_str("\n| goal | measured | |\n|---|---|---|\n");
        for t in &self.targets {
            let met = if t.met { "met" } else { "**missed**" };
            out.push_str(&format!("| {} | {} | {met} |\n", t.goal, t.measured));
        }
        out
    }

    fn write(&self, dir: &Path) {
        if let Err(e) = std::fs::create_dir_all(dir) {
            eprintln!("cannot create {}: {e}; results not written", dir.display());
            return;
        }
        let json = dir.join("results.json");
        let text = serde_json::to_string_pretty(self).expect("serialize report");
        match std::fs::write(&json, text) {
            Ok(()) => println!("\nwrote {}", json.display()),
            Err(e) => eprintln!("cannot write {}: {e}", json.display()),
        }
        let md = dir.join("results.md");
        match std::fs::write(&md, self.markdown()) {
            Ok(()) => println!("wrote {}", md.display()),
            Err(e) => eprintln!("cannot write {}: {e}", md.display()),
        }
        let machine = format!("{}, {} cores", self.machine.cpu, self.machine.cores);
        let charts = [
            (
                "results.svg",
                format!(
                    "Connect and disconnect, median of {} runs ({machine})",
                    self.reps
                ),
                "connect|disconnect",
            ),
            (
                "results-scale.svg",
                format!(
                    "Connects on one network as it fills up to {} containers ({machine})",
                    self.scale_containers
                ),
                "scale",
            ),
        ];
        for (file, title, prefixes) in charts {
            let rows: Vec<&Summary> = self
                .results
                .iter()
                .filter(|r| prefixes.split('|').any(|p| r.case.starts_with(p)))
                .collect();
            if rows.is_empty() {
                continue;
            }
            let path = dir.join(file);
            match std::fs::write(&path, chart::svg(&title, &rows)) {
                Ok(()) => println!("wrote {}", path.display()),
                Err(e) => eprintln!("cannot write {}: {e}", path.display()),
            }
        }
    }
}
