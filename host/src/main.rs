use clap::Parser;
use tracing_subscriber::EnvFilter;

/// clap's usage errors span several lines; ours are always one line.
fn one_line_usage_error(e: &clap::Error) -> String {
    let rendered = e.to_string();
    let text: Vec<&str> = rendered
        .lines()
        .map(str::trim)
        .take_while(|l| !l.starts_with("Usage:") && !l.starts_with("For more information"))
        .filter(|l| !l.is_empty())
        .collect();
    let text = text.join(" ");
    let text = text.strip_prefix("error: ").unwrap_or(&text);
    format!("mydocker: {text} (see --help)")
}

fn main() {
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_env("MYDOCKER_LOG").unwrap_or_else(|_| EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .with_target(false)
        .init();
    let cli = match mydocker::cli::Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) if e.use_stderr() => {
            eprintln!("{}", one_line_usage_error(&e));
            std::process::exit(2);
        }
        Err(e) => e.exit(), // --help / --version
    };
    if let Err(e) = mydocker::cli::run(cli) {
        // One line: the whole context chain, outermost first.
        eprintln!("mydocker: {e:#}");
        std::process::exit(1);
    }
}
