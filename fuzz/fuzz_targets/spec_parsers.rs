//! `mydocker run` flag-value parsers: every input yields Ok or a SpecError,
//! never a panic; accepted values round-trip through their canonical form.
//!
//! Input: first byte = `ncpus` for `parse_cpuset`, the rest (lossy UTF-8) is
//! fed to every parser.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mydocker::runtime::spec::{
    parse_container_name, parse_cpus, parse_cpuset, parse_env, parse_hostname, parse_image_name,
    parse_memory, parse_port, parse_volume,
};

fuzz_target!(|data: &[u8]| {
    let (ncpus, rest) = match data.split_first() {
        Some((&n, rest)) => (n as usize, rest),
        None => (0, data),
    };
    let s = String::from_utf8_lossy(rest);
    let s = s.as_ref();

    // Every error message is a single line (documented contract).
    fn one_line<T>(r: &Result<T, mydocker::runtime::spec::SpecError>) {
        if let Err(e) = r {
            assert!(!e.message.contains('\n'), "multi-line error: {:?}", e.message);
        }
    }

    // -p: Display is "IP:HOST->CTR/PROTO"; with "->" turned back into ':' it
    // is a valid -p value that parses to the same mapping.
    let r = parse_port(s);
    one_line(&r);
    if let Ok(p) = r {
        let canon = p.to_string().replace("->", ":");
        assert_eq!(parse_port(&canon), Ok(p), "port round-trip via {canon:?}");
    }

    // -v (touches the file system only after the syntax checks pass).
    let r = parse_volume(s);
    one_line(&r);
    if let Ok(v) = r {
        let canon = format!(
            "{}:{}{}",
            v.host.to_str().unwrap(),
            v.container.to_str().unwrap(),
            if v.read_only { ":ro" } else { "" }
        );
        assert_eq!(parse_volume(&canon), Ok(v), "volume round-trip via {canon:?}");
    }

    // -m
    let r = parse_memory(s);
    one_line(&r);
    if let Ok(n) = r {
        assert!(n >= mydocker::runtime::spec::MIN_MEMORY_BYTES);
        assert_eq!(parse_memory(&n.to_string()), Ok(n));
    }

    // --cpus
    let r = parse_cpus(s);
    one_line(&r);
    if let Ok(v) = r {
        assert!((0.01..=1024.0).contains(&v), "cpus {v} out of range");
        assert_eq!(parse_cpus(&v.to_string()), Ok(v));
    }

    // --cpuset-cpus: the normalized list is a fixed point.
    let r = parse_cpuset(s, ncpus);
    one_line(&r);
    if let Ok(norm) = r {
        assert_eq!(parse_cpuset(&norm, ncpus).as_deref(), Ok(norm.as_str()));
    }

    // -e
    let r = parse_env(s);
    one_line(&r);
    if let Ok((k, v)) = r {
        assert_eq!(format!("{k}={v}"), s);
    }

    // --name / --hostname / image: accepted values are returned verbatim.
    for (r, f) in [
        (parse_container_name(s), parse_container_name as fn(&str) -> _),
        (parse_hostname(s), parse_hostname as fn(&str) -> _),
        (parse_image_name(s), parse_image_name as fn(&str) -> _),
    ] {
        one_line(&r);
        if let Ok(v) = r {
            assert_eq!(v, s);
            assert_eq!(f(&v), Ok(v.clone()));
        }
    }
});
