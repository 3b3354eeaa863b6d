//! `run`, `ps`, `logs`, `exec`, `stop`, `rm` and the hidden supervisor.

use std::fs::File;
use std::io::{BufRead, BufReader, Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::process::CommandExt;
use std::process::Stdio as ProcStdio;
use std::time::Duration;

use anyhow::{anyhow, Context, Result};
use clap::Args;
use serde_json::json;

use super::terminal;
use super::{output, Format};
use crate::runtime::container::{self as ctr, ContainerView, NetMode, RunOptions, State, Stdio};
use crate::runtime::spec;
use crate::runtime::Runtime;

#[derive(Debug, Args)]
pub struct RunArgs {
    /// Keep stdin open.
    #[arg(short = 'i', long)]
    pub interactive: bool,
    /// Give the container a terminal.
    #[arg(short = 't', long)]
    pub tty: bool,
    /// Run in the background and print the container id.
    #[arg(short = 'd', long)]
    pub detach: bool,
    /// Container name.
    #[arg(long)]
    pub name: Option<String>,
    /// Environment variable KEY=VALUE (repeatable).
    #[arg(short = 'e', long = "env")]
    pub env: Vec<String>,
    /// Bind mount HOST:CONTAINER[:ro] (repeatable).
    #[arg(short = 'v', long = "volume")]
    pub volumes: Vec<String>,
    /// Memory limit, e.g. 64m.
    #[arg(short = 'm', long)]
    pub memory: Option<String>,
    /// CPU limit, e.g. 0.5.
    #[arg(long)]
    pub cpus: Option<String>,
    /// CPUs the container may run on, e.g. 0-1.
    #[arg(long)]
    pub cpuset_cpus: Option<String>,
    /// Network: a network name, `none` or `host` (default: bridge).
    #[arg(long = "net", visible_alias = "network")]
    pub net: Option<String>,
    /// Publish a port [HOST-IP:]HOST-PORT:CONTAINER-PORT[/tcp|udp] (repeatable).
    #[arg(short = 'p', long = "publish")]
    pub publish: Vec<String>,
    /// Remove the container when it exits.
    #[arg(long)]
    pub rm: bool,
    /// Hostname inside the container (default: the short id).
    #[arg(long)]
    pub hostname: Option<String>,
    /// Image name.
    pub image: String,
    /// Command and arguments, passed through exactly.
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub command: Vec<String>,
}

fn parse_run(args: &RunArgs) -> Result<RunOptions> {
    let image = spec::parse_image_name(&args.image)?;
    let ncpus = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    Ok(RunOptions {
        name: args
            .name
            .as_deref()
            .map(spec::parse_container_name)
            .transpose()?,
        image,
        command: if args.command.is_empty() {
            vec!["sh".to_string()]
        } else {
            args.command.clone()
        },
        env: args
            .env
            .iter()
            .map(|e| spec::parse_env(e))
            .collect::<Result<_, _>>()?,
        volumes: args
            .volumes
            .iter()
            .map(|v| spec::parse_volume(v))
            .collect::<Result<_, _>>()?,
        memory: args.memory.as_deref().map(spec::parse_memory).transpose()?,
        cpus: args.cpus.as_deref().map(spec::parse_cpus).transpose()?,
        cpuset_cpus: args
            .cpuset_cpus
            .as_deref()
            .map(|c| spec::parse_cpuset(c, ncpus))
            .transpose()?,
        net: args.net.as_deref().map(NetMode::parse),
        ports: args
            .publish
            .iter()
            .map(|p| spec::parse_port(p))
            .collect::<Result<_, _>>()?,
        auto_remove: args.rm,
        hostname: args
            .hostname
            .as_deref()
            .map(spec::parse_hostname)
            .transpose()?,
        tty: args.tty,
        interactive: args.interactive,
        detach: args.detach,
    })
}

/// `mydocker run`. Returns the exit code to leave with.
pub fn run(rt: &Runtime, args: RunArgs) -> Result<i32> {
    let opts = parse_run(&args)?;
    if opts.detach && opts.tty && opts.interactive {
        // Like Docker's -dit: the terminal exists but nobody is attached.
    }
    let cfg = rt.create_container(&opts)?;
    let id = cfg.id.clone();
    if opts.detach {
        return run_detached(rt, &id);
    }
    let pty = if opts.tty {
        Some(terminal::open_pty()?)
    } else {
        None
    };
    let devnull = File::open("/dev/null")?;
    let stdio = match &pty {
        Some(p) => Stdio {
            fds: [p.slave.as_raw_fd(); 3],
        },
        None => Stdio {
            fds: [
                if opts.interactive {
                    0
                } else {
                    devnull.as_raw_fd()
                },
                1,
                2,
            ],
        },
    };
    let pid = match rt.start_container(&id, stdio) {
        Ok(pid) => pid,
        Err(e) => {
            // It never ran: leave no trace, as for any other bad input.
            let _ = rt.remove_container(&id, true);
            return Err(e.into());
        }
    };
    let code = match pty {
        Some(p) => {
            drop(p.slave);
            let raw = if opts.interactive {
                Some(terminal::RawMode::enable())
            } else {
                None
            };
            terminal::forward_signals(pid, Some(p.master.as_raw_fd()));
            let out = terminal::relay(&p.master, opts.interactive);
            let code = rt.wait_container(&id, pid)?;
            let _ = out.join();
            drop(raw);
            code
        }
        None => {
            terminal::forward_signals(pid, None);
            rt.wait_container(&id, pid)?
        }
    };
    Ok(code)
}

fn run_detached(rt: &Runtime, id: &str) -> Result<i32> {
    let supervisor_log = ctr::open_log(&rt.log_path(id).with_file_name("supervisor.log"))?;
    let mut cmd = std::process::Command::new("/proc/self/exe");
    cmd.arg("--root")
        .arg(rt.root())
        .args([SUPERVISE, id])
        .stdin(ProcStdio::null())
        .stdout(ProcStdio::piped())
        .stderr(supervisor_log);
    // SAFETY: setsid is async-signal-safe. A new session keeps the
    // supervisor alive when the user's terminal goes away.
    unsafe {
        cmd.pre_exec(|| {
            nix::unistd::setsid()
                .map(|_| ())
                .map_err(std::io::Error::from)
        });
    }
    let mut child = cmd
        .spawn()
        .context("cannot start the container supervisor")?;
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap()).read_line(&mut line)?;
    if line.starts_with("ok") {
        println!("{id}");
        return Ok(0);
    }
    let _ = child.wait();
    let msg = line
        .trim()
        .strip_prefix("error ")
        .unwrap_or(line.trim())
        .to_string();
    let _ = rt.remove_container(id, true);
    if msg.is_empty() {
        return Err(anyhow!(
            "the container supervisor died; see {}",
            rt.log_path(id).with_file_name("supervisor.log").display()
        ));
    }
    Err(anyhow!(msg))
}

/// Hidden subcommand run by `run -d`: starts the container, reports "ok"
/// or "error …" on stdout, then waits for it and cleans up.
pub const SUPERVISE: &str = "__supervise";

pub fn supervise(rt: &Runtime, id: &str) -> Result<i32> {
    let log = ctr::open_log(&rt.log_path(id))?;
    let devnull = File::open("/dev/null")?;
    let stdio = Stdio {
        fds: [devnull.as_raw_fd(), log.as_raw_fd(), log.as_raw_fd()],
    };
    let mut stdout = std::io::stdout();
    match rt.start_container(id, stdio) {
        Ok(pid) => {
            writeln!(stdout, "ok {pid}")?;
            stdout.flush()?;
            // Release the pipe so `run -d` returns.
            // SAFETY: dup2 of a descriptor we own onto stdout.
            unsafe { libc::dup2(devnull.as_raw_fd(), 1) };
            drop(log);
            Ok(rt.wait_container(id, pid)?)
        }
        Err(e) => {
            writeln!(stdout, "error {:#}", anyhow::Error::from(e))?;
            Ok(1)
        }
    }
}

fn ago(secs: u64) -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let d = now.saturating_sub(secs);
    match d {
        0..=1 => "Less than a second".into(),
        2..=59 => format!("{d} seconds"),
        60..=3599 => format!("{} minutes", d / 60),
        3600..=86399 => format!("{} hours", d / 3600),
        _ => format!("{} days", d / 86400),
    }
}

fn status_text(v: &ContainerView) -> String {
    if v.alive {
        return format!("Up {}", ago(v.status.started.unwrap_or(v.config.created)));
    }
    match v.status.state {
        State::Created => "Created".into(),
        State::Running => "Exited (unknown)".into(),
        State::Exited => format!(
            "Exited ({}) {} ago",
            v.status
                .exit_code
                .map(|c| c.to_string())
                .unwrap_or_else(|| "?".into()),
            ago(v.status.finished.unwrap_or(v.config.created))
        ),
    }
}

fn ips(v: &ContainerView) -> String {
    v.status
        .attachments
        .iter()
        .map(|a| a.address.to_string())
        .collect::<Vec<_>>()
        .join(",")
}

fn ports(v: &ContainerView) -> String {
    v.config
        .ports
        .iter()
        .map(|p| p.to_string())
        .collect::<Vec<_>>()
        .join(",")
}

pub fn ps(rt: &Runtime, all: bool, format: Format) -> Result<()> {
    let list: Vec<ContainerView> = rt
        .containers()?
        .into_iter()
        .filter(|v| all || v.alive)
        .collect();
    match format {
        Format::Json => {
            let v: Vec<_> = list
                .iter()
                .map(|v| {
                    json!({
                        "id": v.config.id,
                        "name": v.config.name,
                        "image": v.config.image,
                        "state": if v.alive { "running" } else if v.status.state == State::Created { "created" } else { "exited" },
                        "status": status_text(v),
                        "exit_code": v.status.exit_code,
                        "pid": if v.alive { v.status.pid } else { None },
                        "ips": v.status.attachments.iter().map(|a| json!({"network": a.network, "interface": a.interface, "address": a.address.to_string()})).collect::<Vec<_>>(),
                        "ports": v.config.ports.iter().map(|p| p.to_string()).collect::<Vec<_>>(),
                        "command": v.config.command,
                        "created": v.config.created,
                        "oom_killed": v.status.oom_killed,
                        "error": v.status.error,
                    })
                })
                .collect();
            println!("{}", serde_json::to_string_pretty(&v)?);
        }
        Format::Table => {
            let rows: Vec<Vec<String>> = list
                .iter()
                .map(|v| {
                    let mut cmd = v.config.command.join(" ");
                    if cmd.chars().count() > 30 {
                        cmd = cmd.chars().take(29).collect::<String>() + "…";
                    }
                    vec![
                        v.config.id[..12].to_string(),
                        v.config.name.clone(),
                        v.config.image.clone(),
                        status_text(v),
                        ips(v),
                        ports(v),
                        format!("\"{cmd}\""),
                        format!("{} ago", ago(v.config.created)),
                    ]
                })
                .collect();
            print!(
                "{}",
                output::table(
                    &["ID", "NAME", "IMAGE", "STATUS", "IP", "PORTS", "COMMAND", "CREATED"],
                    &rows
                )
            );
        }
    }
    Ok(())
}

pub fn inspect(rt: &Runtime, names: &[String]) -> Result<()> {
    let ids = names
        .iter()
        .map(|n| rt.find_container(n))
        .collect::<Result<Vec<_>, _>>()?;
    let all = rt.containers()?;
    let v: Vec<_> = ids
        .iter()
        .filter_map(|id| all.iter().find(|c| &c.config.id == id))
        .map(|c| {
            json!({
                "id": c.config.id,
                "name": c.config.name,
                "state": if c.alive { "running" } else if c.status.state == State::Created { "created" } else { "exited" },
                "config": c.config,
                "status": c.status,
                "networks": c.status.attachments,
            })
        })
        .collect();
    println!("{}", serde_json::to_string_pretty(&v)?);
    Ok(())
}

pub fn logs(rt: &Runtime, container: &str, follow: bool) -> Result<()> {
    let id = rt.find_container(container)?;
    let path = rt.log_path(&id);
    let mut file = match File::open(&path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let cfg = rt.container_config(&id)?;
            if !cfg.detach {
                return Err(anyhow!(
                    "container {} ran in the foreground; its output went to the terminal and was not logged",
                    cfg.name
                ));
            }
            return Ok(());
        }
        Err(e) => return Err(anyhow!("{}: {e}", path.display())),
    };
    let mut stdout = std::io::stdout();
    let mut buf = Vec::new();
    loop {
        buf.clear();
        file.read_to_end(&mut buf)?;
        stdout.write_all(&buf)?;
        stdout.flush()?;
        if !follow {
            return Ok(());
        }
        let running = rt
            .containers()?
            .into_iter()
            .any(|v| v.config.id == id && v.alive);
        if !running {
            // One last read for what was written while exiting.
            buf.clear();
            file.read_to_end(&mut buf)?;
            stdout.write_all(&buf)?;
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

pub fn exec(
    rt: &Runtime,
    container: &str,
    interactive: bool,
    tty: bool,
    command: Vec<String>,
) -> Result<i32> {
    let id = rt.find_container(container)?;
    let spec = rt.exec_spec(&id, command, tty)?;
    let mut cmd = std::process::Command::new("/proc/self/exe");
    cmd.args(crate::sys::nsexec::helper_args(&spec));
    let pty = if tty {
        Some(terminal::open_pty()?)
    } else {
        None
    };
    if let Some(p) = &pty {
        cmd.stdin(File::from(p.slave.try_clone()?))
            .stdout(File::from(p.slave.try_clone()?))
            .stderr(File::from(p.slave.try_clone()?));
    } else if !interactive {
        cmd.stdin(ProcStdio::null());
    }
    let mut child = cmd.spawn().context("cannot start exec helper")?;
    let code = match pty {
        Some(p) => {
            drop(p.slave);
            let raw = if interactive {
                Some(terminal::RawMode::enable())
            } else {
                None
            };
            terminal::forward_signals(child.id() as i32, Some(p.master.as_raw_fd()));
            let out = terminal::relay(&p.master, interactive);
            let status = child.wait()?;
            let _ = out.join();
            drop(raw);
            status
        }
        None => {
            terminal::forward_signals(child.id() as i32, None);
            child.wait()?
        }
    };
    use std::os::unix::process::ExitStatusExt;
    Ok(code
        .code()
        .unwrap_or_else(|| 128 + code.signal().unwrap_or(0)))
}

pub fn stop(rt: &Runtime, names: &[String], timeout: u64) -> Result<()> {
    each(names, |name| {
        let id = rt.find_container(name)?;
        rt.stop_container(&id, Duration::from_secs(timeout))?;
        Ok(())
    })
}

pub fn rm(rt: &Runtime, names: &[String], force: bool) -> Result<()> {
    each(names, |name| {
        let id = rt.find_container(name)?;
        rt.remove_container(&id, force)?;
        Ok(())
    })
}

/// Applies `f` to every name, printing each success; reports the first
/// failure as the error and the others on stderr, like Docker.
fn each(names: &[String], mut f: impl FnMut(&str) -> Result<()>) -> Result<()> {
    let mut first = None;
    for name in names {
        match f(name) {
            Ok(()) => println!("{name}"),
            Err(e) => {
                if first.is_some() {
                    eprintln!("mydocker: {e:#}");
                } else {
                    first = Some(e);
                }
            }
        }
    }
    match first {
        Some(e) => Err(e),
        None => Ok(()),
    }
}
