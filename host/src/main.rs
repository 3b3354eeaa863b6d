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
    // Hidden entry points that must run before anything else (and, for
    // __nsexec, while the process is still single-threaded).
    let mut args = std::env::args();
    match args.nth(1).as_deref() {
        Some(mydocker::sys::container::INIT_ARG) => mydocker::sys::container::init_main(),
        Some(mydocker::sys::nsexec::NSEXEC_ARG) => {
            let spec = args.next().unwrap_or_default();
            mydocker::sys::nsexec::nsexec_main(&spec)
        }
        _ => {}
    }
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_env("MYDOCKER_LOG").unwrap_or_else(|_| EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .with_target(false)
        .init();
    let argv = mydocker::cli::normalize_args(std::env::args().collect());
    let cli = match mydocker::cli::Cli::try_parse_from(argv) {
        Ok(cli) => cli,
        Err(e) if e.use_stderr() => {
            eprintln!("{}", one_line_usage_error(&e));
            std::process::exit(2);
        }
        Err(e) => e.exit(), // --help / --version
    };
    match mydocker::cli::run(cli) {
        Ok(code) => std::process::exit(code),
        Err(e) => {
            // One line: the whole context chain, outermost first.
            eprintln!("mydocker: {e:#}");
            std::process::exit(1);
        }
    }
}
