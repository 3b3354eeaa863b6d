//! A driver that loops, exhausts memory, overflows its stack, panics or
//! fails halfway is stopped and reported as an error; whatever it changed
//! is rolled back and mydocker itself keeps working.

use mydocker_tests::{driver_wasm, Sandbox};

#[test]
fn misbehaving_driver_calls_become_errors_and_are_rolled_back() {
    let sb = Sandbox::new();
    let driver = driver_wasm("misbehaving_driver");
    let links_before = sb.host.links();

    let cases = [
        (
            "loop",
            "driver misbehaving failed: it exceeded its time limit of 1000 ms",
        ),
        ("oom", "driver misbehaving failed:"),
        (
            "stack",
            "driver misbehaving failed: it overflowed its 512 KiB stack",
        ),
        ("panic", "driver misbehaving failed: it panicked: "),
        ("halfway", "driver misbehaving: failed halfway on purpose"),
    ];
    for (mode, expected) in cases {
        let opt = format!("mode={mode}");
        let err = sb.mydocker_err(&[
            "network",
            "create",
            "--driver",
            &driver,
            "--subnet",
            "10.10.0.0/24",
            "-o",
            &opt,
            "bad",
        ]);
        assert!(err.contains(expected), "mode {mode}: {err}");
        if mode == "panic" {
            assert!(err.contains("gave up on purpose"), "{err}");
        }
        if mode == "oom" {
            assert!(err.contains("memory"), "{err}");
        }
        // Nothing was left: no link (the halfway bridge is rolled back), no network.
        assert_eq!(sb.host.links(), links_before, "mode {mode}");
        assert!(!sb.root.path().join("networks/bad").exists(), "mode {mode}");
    }

    // The limits are configurable.
    let opt = "mode=loop";
    let err = sb.mydocker_err(&[
        "--driver-timeout-ms",
        "200",
        "network",
        "create",
        "--driver",
        &driver,
        "--subnet",
        "10.10.0.0/24",
        "-o",
        opt,
        "bad",
    ]);
    assert!(err.contains("time limit of 200 ms"), "{err}");

    // The same driver, behaving, works: the host is unharmed.
    sb.mydocker_ok(&[
        "network",
        "create",
        "--driver",
        &driver,
        "--subnet",
        "10.10.0.0/24",
        "good",
    ]);
    let list = sb.mydocker_ok(&["driver", "list"]);
    assert!(
        list.lines()
            .any(|l| l.starts_with("misbehaving ") && l.trim_end().ends_with("installed")),
        "{list}"
    );
    sb.mydocker_ok(&["network", "rm", "good"]);
    assert_eq!(sb.host.links(), links_before);
}
