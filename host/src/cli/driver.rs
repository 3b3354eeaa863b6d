use std::collections::BTreeSet;
use std::io::{BufRead, IsTerminal, Write};
use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context, Result};
use clap::Subcommand;
use serde_json::json;

use super::{output, Format};
use crate::runtime::Runtime;

#[derive(Debug, Subcommand)]
pub enum DriverCommand {
    /// List network drivers.
    #[command(alias = "ls")]
    List {
        #[arg(long, value_enum, default_value = "table")]
        format: Format,
    },
    /// Validate, precompile and register a driver component.
    Install {
        /// The .wasm component.
        file: PathBuf,
        /// Register under this name instead of the one its info() gives.
        #[arg(long)]
        name: Option<String>,
        /// Capabilities to grant, comma separated (default: ask, or all it declares with --yes).
        #[arg(long, value_delimiter = ',')]
        allow: Option<Vec<String>>,
        /// Grant every capability the driver declares without asking.
        #[arg(short = 'y', long)]
        yes: bool,
    },
    /// Show a driver's info(), options, granted capabilities, file and cache state (JSON).
    Inspect { name: String },
    /// Remove an installed driver (refused while a network uses it).
    #[command(alias = "rm")]
    Remove { name: String },
    /// Scaffold a driver crate that builds to wasm32-wasip2 with the SDK.
    New {
        /// Driver name (a-z, 0-9, '-', '_').
        name: String,
        /// Directory to create the crate in (default: ./NAME).
        #[arg(long)]
        path: Option<PathBuf>,
        /// The SDK crate to depend on (default: the one this mydocker was built with).
        #[arg(long)]
        sdk: Option<PathBuf>,
    },
}

pub fn run(rt: &Runtime, cmd: DriverCommand) -> Result<()> {
    match cmd {
        DriverCommand::List { format } => list(rt, format),
        DriverCommand::Install {
            file,
            name,
            allow,
            yes,
        } => install(rt, &file, name.as_deref(), allow, yes),
        DriverCommand::Inspect { name } => inspect(rt, &name),
        DriverCommand::Remove { name } => {
            let users: Vec<String> = rt.networks_using_driver(&name)?.into_iter().collect();
            rt.registry()?.remove(&name, &users)?;
            println!("{name}");
            Ok(())
        }
        DriverCommand::New { name, path, sdk } => scaffold(&name, path, sdk),
    }
}

fn list(rt: &Runtime, format: Format) -> Result<()> {
    let registry = rt.registry()?;
    let drivers = registry.list();
    match format {
        Format::Json => {
            let v: Vec<_> = drivers
                .iter()
                .map(|(name, d)| match d {
                    Ok(d) => json!({
                        "name": name,
                        "version": d.info.version,
                        "api": d.info.api_version,
                        "description": d.info.description,
                        "capabilities": d.info.capabilities,
                        "granted": d.granted,
                        "sha256": d.sha256,
                        "source": d.source,
                    }),
                    Err(e) => json!({ "name": name, "error": e.to_string() }),
                })
                .collect();
            println!("{}", serde_json::to_string_pretty(&v)?);
        }
        Format::Table => {
            let rows: Vec<Vec<String>> = drivers
                .iter()
                .map(|(name, d)| match d {
                    Ok(d) => vec![
                        name.clone(),
                        d.info.version.clone(),
                        d.info.api_version.clone(),
                        d.info.capabilities.join(","),
                        d.sha256[..12].to_string(),
                        format!("{:?}", d.source).to_lowercase(),
                    ],
                    Err(e) => vec![
                        name.clone(),
                        "-".into(),
                        "-".into(),
                        "-".into(),
                        "-".into(),
                        format!("error: {e}"),
                    ],
                })
                .collect();
            print!(
                "{}",
                output::table(
                    &["NAME", "VERSION", "API", "CAPABILITIES", "SHA256", "SOURCE"],
                    &rows
                )
            );
        }
    }
    Ok(())
}

fn install(
    rt: &Runtime,
    file: &Path,
    name: Option<&str>,
    allow: Option<Vec<String>>,
    yes: bool,
) -> Result<()> {
    let registry = rt.registry()?;
    let allow: Option<BTreeSet<String>> = match (allow, yes) {
        (Some(list), _) => Some(list.into_iter().filter(|c| !c.is_empty()).collect()),
        (None, true) => None,
        (None, false) => {
            // Validate first so the question is about a real driver.
            let probe = registry.probe(file)?;
            let asked = probe.info.capabilities.clone();
            if asked.is_empty() {
                None
            } else if std::io::stdin().is_terminal() {
                eprint!(
                    "driver {} asks for capabilities: {}. Grant them? [y/N] ",
                    probe.info.name,
                    asked.join(", ")
                );
                std::io::stderr().flush()?;
                let mut answer = String::new();
                std::io::stdin().lock().read_line(&mut answer)?;
                if !matches!(answer.trim(), "y" | "Y" | "yes") {
                    bail!("driver {} was not installed", probe.info.name);
                }
                None
            } else {
                bail!(
                    "driver {} asks for capabilities {}: grant them with --allow {} or --yes",
                    probe.info.name,
                    asked.join(", "),
                    asked.join(",")
                );
            }
        }
    };
    let driver = registry
        .install_with(file, name, allow.as_ref())
        .with_context(|| format!("cannot install {}", file.display()))?;
    let granted: Vec<&str> = driver.granted.iter().map(String::as_str).collect();
    println!(
        "installed {} {} (api {}, sha256 {}); capabilities: {}",
        driver.info.name,
        driver.info.version,
        driver.info.api_version,
        &driver.sha256[..12],
        if granted.is_empty() {
            "none".to_string()
        } else {
            granted.join(", ")
        }
    );
    Ok(())
}

fn inspect(rt: &Runtime, name: &str) -> Result<()> {
    let registry = rt.registry()?;
    let driver = registry.get(name)?;
    let (file, installed_from) = match registry.files(name) {
        Some((f, o)) => (Some(f.display().to_string()), Some(o)),
        None => (None, None),
    };
    let cache = registry.engine().cache_path(&driver.sha256);
    let networks: Vec<String> = rt.networks_using_driver(name)?.into_iter().collect();
    let v = json!({
        "name": driver.info.name,
        "version": driver.info.version,
        "api_version": driver.info.api_version,
        "description": driver.info.description,
        "source": driver.source,
        "sha256": driver.sha256,
        "capabilities": driver.info.capabilities,
        "granted": driver.granted,
        "options": driver.info.options.iter().map(|(n, d)| json!({"name": n, "description": d})).collect::<Vec<_>>(),
        "file": file,
        "installed_from": installed_from,
        "cache": { "file": cache.display().to_string(), "present": cache.is_file() },
        "networks": networks,
    });
    println!("{}", serde_json::to_string_pretty(&v)?);
    Ok(())
}

/// Where the SDK was when this binary was built.
fn default_sdk() -> Option<PathBuf> {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("../sdk");
    p.join("Cargo.toml")
        .is_file()
        .then(|| p.canonicalize().unwrap_or(p))
}

fn scaffold(name: &str, path: Option<PathBuf>, sdk: Option<PathBuf>) -> Result<()> {
    if name.is_empty()
        || name.len() > 64
        || !name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
        || !name.as_bytes()[0].is_ascii_lowercase()
    {
        bail!("invalid driver name '{name}': use a-z, 0-9, '-' and '_', starting with a letter");
    }
    let sdk = match sdk.or_else(default_sdk) {
        Some(s) if s.join("Cargo.toml").is_file() => s.canonicalize().unwrap_or(s),
        Some(s) => bail!(
            "{} is not the SDK crate (no Cargo.toml); pass --sdk PATH",
            s.display()
        ),
        None => bail!("cannot find the mydocker driver SDK; pass --sdk PATH/TO/mydocker/sdk"),
    };
    let dir = path.unwrap_or_else(|| PathBuf::from(name));
    if dir.exists() {
        bail!("{} already exists; choose another --path", dir.display());
    }
    let files = super::scaffold::files(name, &sdk);
    let made = (|| -> Result<()> {
        for (rel, content) in &files {
            let p = dir.join(rel);
            std::fs::create_dir_all(p.parent().expect("relative file"))?;
            std::fs::write(&p, content).with_context(|| format!("writing {}", p.display()))?;
        }
        Ok(())
    })();
    if let Err(e) = made {
        let _ = std::fs::remove_dir_all(&dir);
        return Err(anyhow!("cannot create {}: {e:#}", dir.display()));
    }
    println!("created driver crate {} in {}", name, dir.display());
    println!(
        "  cd {} && cargo test && cargo build --release --target wasm32-wasip2",
        dir.display()
    );
    println!(
        "  mydocker driver install --yes target/wasm32-wasip2/release/{}.wasm",
        name.replace('-', "_")
    );
    Ok(())
}
