use std::path::PathBuf;

use anyhow::Result;
use clap::Subcommand;
use serde_json::json;

use super::{output, Format};
use crate::runtime::Runtime;

#[derive(Debug, Subcommand)]
pub enum ImageCommand {
    /// Import a rootfs tarball as an image.
    Import {
        /// The .tar file (e.g. from scripts/make-busybox-image.sh).
        file: PathBuf,
        /// Image name.
        name: String,
    },
    /// List images.
    #[command(alias = "list")]
    Ls {
        #[arg(long, value_enum, default_value = "table")]
        format: Format,
    },
    /// Remove images (refused while containers use them).
    #[command(alias = "remove")]
    Rm {
        #[arg(required = true)]
        names: Vec<String>,
    },
}

fn human_size(bytes: u64) -> String {
    const UNITS: [&str; 4] = ["B", "kB", "MB", "GB"];
    let mut v = bytes as f64;
    let mut u = 0;
    while v >= 1000.0 && u < UNITS.len() - 1 {
        v /= 1000.0;
        u += 1;
    }
    if u == 0 {
        format!("{bytes}B")
    } else {
        format!("{v:.1}{}", UNITS[u])
    }
}

pub fn list(rt: &Runtime, format: Format) -> Result<()> {
    let images = rt.images().list()?;
    match format {
        Format::Json => println!("{}", serde_json::to_string_pretty(&json!(images))?),
        Format::Table => {
            let rows: Vec<Vec<String>> = images
                .iter()
                .map(|i| {
                    vec![
                        i.name.clone(),
                        i.sha256[..12].to_string(),
                        human_size(i.size),
                        i.source.clone(),
                    ]
                })
                .collect();
            print!(
                "{}",
                output::table(&["NAME", "SHA256", "SIZE", "SOURCE"], &rows)
            );
        }
    }
    Ok(())
}

pub fn run(rt: &Runtime, cmd: ImageCommand) -> Result<()> {
    match cmd {
        ImageCommand::Import { file, name } => {
            let name = crate::runtime::spec::parse_image_name(&name)?;
            let image = rt.images().import(&file, &name)?;
            println!("{}", image.name);
        }
        ImageCommand::Ls { format } => list(rt, format)?,
        ImageCommand::Rm { names } => {
            for name in names {
                let users: Vec<String> = rt
                    .containers()?
                    .into_iter()
                    .filter(|c| c.config.image == name)
                    .map(|c| c.config.name)
                    .collect();
                rt.images().remove(&name, &users)?;
                println!("{name}");
            }
        }
    }
    Ok(())
}
