//! `normalize_args` (argv rewriting before clap): arguments are the input
//! split on NUL and whitespace. It must not panic, must keep the program
//! name, and must only add `--` / a dash; the result then goes through
//! clap's `try_parse_from`, which must return Ok or Err (no panic).
#![no_main]

use clap::Parser;
use libfuzzer_sys::fuzz_target;
use mydocker::cli::{normalize_args, Cli};

fuzz_target!(|data: &[u8]| {
    let s = String::from_utf8_lossy(data);
    let args: Vec<String> = s
        .split(|c: char| c == '\0' || c.is_whitespace())
        .filter(|a| !a.is_empty())
        .map(String::from)
        .collect();
    let out = normalize_args(args.clone());

    assert_eq!(out.first(), args.first(), "program name changed");
    // Nothing is dropped (a user "--" is replaced by ours); at most one
    // "--" is added.
    assert!(
        out.len() == args.len() || out.len() == args.len() + 1,
        "{args:?} -> {out:?}"
    );

    let _ = Cli::try_parse_from(&out);
});
