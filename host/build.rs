//! Embeds the built-in drivers (built for wasm32-wasip2 beforehand) into the
//! binary, so `mydocker` works without any file beside it.

use std::path::PathBuf;

/// Drivers embedded in the binary as built-ins.
const BUILTIN_DRIVERS: &[&str] = &["bridge"];

fn main() {
    let manifest = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap());
    let dir = match std::env::var_os("MYDOCKER_DRIVERS_DIR") {
        Some(d) => PathBuf::from(d),
        None => {
            let target = std::env::var_os("CARGO_TARGET_DIR")
                .map(PathBuf::from)
                .unwrap_or_else(|| manifest.join("../target"));
            target.join("wasm32-wasip2/release")
        }
    };
    println!("cargo:rerun-if-env-changed=MYDOCKER_DRIVERS_DIR");
    let out = PathBuf::from(std::env::var("OUT_DIR").unwrap());
    for name in BUILTIN_DRIVERS {
        let src = dir.join(format!("{name}.wasm"));
        println!("cargo:rerun-if-changed={}", src.display());
        if !src.is_file() {
            panic!(
                "built-in driver {} is missing: build the drivers first with \
                 `cargo build --release --target wasm32-wasip2 -p {name}` (scripts/build.sh does it)",
                src.display()
            );
        }
        std::fs::copy(&src, out.join(format!("{name}.wasm"))).unwrap();
    }
}
