use anyhow::{Context, Result};
use clap::Subcommand;
use serde_json::json;

use super::{output, Format};
use crate::runtime::{CreateNetwork, NetworkRecord, Runtime};

#[derive(Debug, Subcommand)]
pub enum NetworkCommand {
    /// Create a network.
    Create {
        /// Driver: a registered name (see `mydocker driver list`) or a path to a .wasm file.
        #[arg(short = 'd', long, default_value = "bridge")]
        driver: String,
        /// Subnet in CIDR form, e.g. 10.0.0.0/24 (host bits are ignored).
        #[arg(long)]
        subnet: String,
        /// Gateway address (default: the first usable address of the subnet).
        #[arg(long)]
        gateway: Option<String>,
        /// Driver option KEY=VALUE (repeatable), e.g. -o bridge_name=mybr0.
        #[arg(short = 'o', long = "opt")]
        options: Vec<String>,
        /// Run the driver against a recording host and print what it would do; change nothing.
        #[arg(long)]
        dry_run: bool,
        /// Network name.
        name: String,
    },
    /// List networks.
    #[command(alias = "ls")]
    List {
        #[arg(long, value_enum, default_value = "table")]
        format: Format,
    },
    /// Show networks in detail, as JSON.
    Inspect {
        #[arg(required = true)]
        names: Vec<String>,
    },
    /// Connect a running container to a network (it gets the next ethN).
    Connect { network: String, container: String },
    /// Disconnect a running container from a network.
    Disconnect { network: String, container: String },
    /// Remove every network without endpoints.
    Prune,
    /// Remove networks (refused while containers are connected).
    #[command(alias = "rm")]
    Remove {
        #[arg(required = true)]
        names: Vec<String>,
    },
}

fn inspect_json(rt: &Runtime, net: &NetworkRecord) -> Result<serde_json::Value> {
    let endpoints = rt.endpoints(&net.name)?;
    Ok(json!({
        "name": net.name,
        "id": net.id,
        "driver": net.driver,
        "subnet": net.subnet.to_string(),
        "gateway": net.gateway.to_string(),
        "bridge": net.bridge(),
        "options": net.options.iter().cloned().collect::<std::collections::BTreeMap<_, _>>(),
        "driver_data": net.driver_data.iter().cloned().collect::<std::collections::BTreeMap<_, _>>(),
        "created": net.created,
        "endpoints": endpoints.iter().map(|e| json!({
            "container_id": e.container_id,
            "interface": e.interface,
            "address": format!("{}/{}", e.address, e.prefix_len),
            "mac": e.mac,
            "host_interface": e.host_interface,
            "ports": e.port_mappings.iter().map(|p| p.to_string()).collect::<Vec<_>>(),
        })).collect::<Vec<_>>(),
    }))
}

pub fn run(rt: &Runtime, cmd: NetworkCommand) -> Result<()> {
    match cmd {
        NetworkCommand::Create {
            driver,
            subnet,
            gateway,
            options,
            dry_run,
            name,
        } => {
            let req = CreateNetwork {
                name: name.clone(),
                driver,
                subnet,
                gateway,
                options,
            };
            if dry_run {
                let plan = rt
                    .plan_network(&req)
                    .with_context(|| format!("cannot create network {name}"))?;
                println!("network {name} would be created by:");
                for step in plan {
                    println!("  {step}");
                }
            } else {
                let rec = rt
                    .create_network(&req)
                    .with_context(|| format!("cannot create network {name}"))?;
                println!("{}", rec.name);
            }
        }
        NetworkCommand::List { format } => {
            let nets = rt.networks()?;
            match format {
                Format::Json => {
                    let v: Vec<_> = nets
                        .iter()
                        .map(|n| {
                            json!({
                                "name": n.name,
                                "id": n.id,
                                "driver": n.driver.name,
                                "subnet": n.subnet.to_string(),
                                "gateway": n.gateway.to_string(),
                            })
                        })
                        .collect();
                    println!("{}", serde_json::to_string_pretty(&v)?);
                }
                Format::Table => {
                    let rows: Vec<Vec<String>> = nets
                        .iter()
                        .map(|n| {
                            vec![
                                n.name.clone(),
                                n.driver.name.clone(),
                                n.subnet.to_string(),
                                n.gateway.to_string(),
                            ]
                        })
                        .collect();
                    print!(
                        "{}",
                        output::table(&["NAME", "DRIVER", "SUBNET", "GATEWAY"], &rows)
                    );
                }
            }
        }
        NetworkCommand::Inspect { names } => {
            // Validate every name before printing anything.
            let nets = names
                .iter()
                .map(|n| rt.network(n))
                .collect::<Result<Vec<_>, _>>()?;
            let v = nets
                .iter()
                .map(|n| inspect_json(rt, n))
                .collect::<Result<Vec<_>>>()?;
            println!("{}", serde_json::to_string_pretty(&v)?);
        }
        NetworkCommand::Connect { network, container } => {
            rt.network(&network)?;
            let id = rt.find_container(&container)?;
            rt.connect_container(&network, &id)
                .with_context(|| format!("cannot connect {container} to network {network}"))?;
        }
        NetworkCommand::Disconnect { network, container } => {
            rt.network(&network)?;
            let id = rt.find_container(&container)?;
            rt.disconnect_container(&network, &id)
                .with_context(|| format!("cannot disconnect {container} from network {network}"))?;
        }
        NetworkCommand::Prune => {
            for net in rt.networks()? {
                if rt.endpoints(&net.name)?.is_empty() {
                    match rt.remove_network(&net.name) {
                        Ok(()) => println!("{}", net.name),
                        // Someone connected to it meanwhile: keep it.
                        Err(crate::runtime::NetworkError::HasEndpoints { .. }) => {}
                        Err(e) => return Err(e.into()),
                    }
                }
            }
        }
        NetworkCommand::Remove { names } => {
            let mut failed = None;
            for name in &names {
                match rt.remove_network(name) {
                    Ok(()) => println!("{name}"),
                    Err(e) => {
                        let e =
                            anyhow::Error::from(e).context(format!("cannot remove network {name}"));
                        if failed.is_some() {
                            eprintln!("mydocker: {e:#}");
                        } else {
                            failed = Some(e);
                        }
                    }
                }
            }
            if let Some(e) = failed {
                return Err(e);
            }
        }
    }
    Ok(())
}
