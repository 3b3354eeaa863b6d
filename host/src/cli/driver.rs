use anyhow::Result;
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
}

pub fn run(rt: &Runtime, cmd: DriverCommand) -> Result<()> {
    match cmd {
        DriverCommand::List { format } => {
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
                                d.sha256[..12].to_string(),
                                format!("{:?}", d.source).to_lowercase(),
                            ],
                            Err(e) => vec![
                                name.clone(),
                                "-".into(),
                                "-".into(),
                                "-".into(),
                                format!("error: {e}"),
                            ],
                        })
                        .collect();
                    print!(
                        "{}",
                        output::table(&["NAME", "VERSION", "API", "SHA256", "SOURCE"], &rows)
                    );
                }
            }
        }
    }
    Ok(())
}
