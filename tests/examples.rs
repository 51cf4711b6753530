//! The example programs keep the README's promise: bad arguments print the usage (which
//! lists every environment variable the program reads) and exit with status 2; errors at
//! run time print one line and exit with status 1.
//!
//! Runs the real binaries, which `cargo test` builds next to this test
//! (`target/<profile>/examples/`). Every case fails before a device is looked up: nothing
//! here reads /sys or needs hugepages.

use std::path::{Path, PathBuf};
use std::process::Command;

/// What every program that opens a device reads from the environment.
const DEVICE_ENV: &[&str] = &[
    "IXY_PROMISC",
    "IXY_FORCE_UNBIND",
    "IXY_INTERRUPT_TIMEOUT_MS",
    "IXY_HUGEPAGE_DIR",
    "IXY_VFIO",
    "IXY_VIRTIO_MODERN",
    "RUST_LOG",
];

/// The example binary `name`, from `target/<profile>/examples/`.
///
/// Under cargo (`CARGO` is set) this is next to the test's own directory, and is brought
/// up to date once per run by `cargo build --examples` (a no-op after a whole `cargo test`,
/// which builds the examples; `cargo test --test examples` alone does not). A test binary
/// run by itself (`.ci/fresh-machine-tests` runs a copy as another user) uses the target
/// directory it was built in.
fn example(name: &str) -> PathBuf {
    static BUILD: std::sync::Once = std::sync::Once::new();
    let profile = if cfg!(debug_assertions) {
        "debug"
    } else {
        "release"
    };
    let profile_dir = match std::env::var_os("CARGO") {
        Some(cargo) => {
            // This test runs from target/<profile>/deps/.
            let exe = std::env::current_exe().unwrap();
            let profile_dir = exe.parent().unwrap().parent().unwrap().to_path_buf();
            BUILD.call_once(|| {
                let mut build = Command::new(cargo);
                build
                    .args(["build", "--quiet", "--examples"])
                    .current_dir(env!("CARGO_MANIFEST_DIR"));
                if profile == "release" {
                    build.arg("--release");
                }
                assert!(
                    build.status().unwrap().success(),
                    "cargo build --examples failed"
                );
            });
            profile_dir
        }
        None => Path::new(env!("CARGO_TARGET_TMPDIR"))
            .join("..")
            .join(profile),
    };
    let path = profile_dir.join("examples").join(name);
    assert!(
        path.exists(),
        "{} is missing: build the examples (`cargo build --examples`)",
        path.display()
    );
    path
}

/// Runs example `name` with `args` and `env` (nothing else inherited) and returns its exit
/// status and the lines of its standard error.
fn run(name: &str, args: &[&str], env: &[(&str, &str)]) -> (i32, Vec<String>) {
    let out = Command::new(example(name))
        .args(args)
        .env_clear()
        .envs(env.iter().copied())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    (
        out.status.code().expect("exited, not killed by a signal"),
        stderr.lines().map(str::to_string).collect(),
    )
}

/// Checks a usage error: status 2, an `error: ` line naming `fact` first, then the usage of
/// `name` and the environment variables it reads (`own` and, for programs that open devices,
/// DEVICE_ENV).
fn usage_error(name: &str, args: &[&str], env: &[(&str, &str)], fact: &str, own: &[&str]) {
    let (status, lines) = run(name, args, env);
    assert_eq!(status, 2, "{name} {args:?}: {lines:?}");
    assert!(
        lines[0].starts_with("error: ") && lines[0].contains(fact),
        "{name} {args:?}: {lines:?}"
    );
    assert!(
        lines[1].starts_with(&format!("usage: {name} ")),
        "{lines:?}"
    );
    let device_env = if name == "list" { &[][..] } else { DEVICE_ENV };
    let text = lines[2..].join("\n");
    for var in own.iter().chain(device_env) {
        assert!(
            text.contains(&format!("{var}=")),
            "{name}: usage leaves out {var}: {text}"
        );
    }
    if name == "list" {
        assert_eq!(text, "environment: none read");
    }
}

#[test]
fn generator_usage_errors_exit_2() {
    let own = ["IXY_DST_MAC", "IXY_FLOWS"];
    usage_error(
        "generator",
        &[],
        &[],
        "error: expected a PCI address and an optional packet count",
        &own,
    );
    usage_error(
        "generator",
        &["not-a-pci"],
        &[],
        "invalid PCI address 'not-a-pci': missing '.function'",
        &own,
    );
    usage_error(
        "generator",
        &["0000:00:04.0", "many"],
        &[],
        "error: 'many' is not a packet count",
        &own,
    );
    usage_error(
        "generator",
        &["0000:00:04.0"],
        &[("IXY_DST_MAC", "10:10:10")],
        "error: IXY_DST_MAC=10:10:10 is not a MAC address",
        &own,
    );
    usage_error(
        "generator",
        &["0000:00:04.0"],
        &[("IXY_INTERRUPT_TIMEOUT_MS", "soon")],
        "error: IXY_INTERRUPT_TIMEOUT_MS=soon is not a number from -1 to 32767",
        &own,
    );
    usage_error(
        "generator",
        &["0000:00:04.0"],
        &[("IXY_FLOWS", "0")],
        "error: IXY_FLOWS=0 is not a number from 1 to 65494",
        &own,
    );
}

#[test]
fn forwarder_usage_errors_exit_2() {
    usage_error(
        "forwarder",
        &["0000:00:04.0"],
        &[],
        "error: expected two PCI addresses",
        &["IXY_QUEUES"],
    );
    usage_error(
        "forwarder",
        &["0000:00:04.0", "0000:00:05.0"],
        &[("IXY_QUEUES", "0")],
        "error: IXY_QUEUES=0 is not a number from 1 to 65535",
        &["IXY_QUEUES"],
    );
    // The same device, written two ways.
    usage_error(
        "forwarder",
        &["0000:00:04.0", "00:04.0"],
        &[],
        "error: the two ports must be different devices",
        &["IXY_QUEUES"],
    );
    usage_error(
        "forwarder",
        &["0000:00:04.0", "0000:00:04.9"],
        &[],
        "invalid PCI address '0000:00:04.9': function must be one digit 0-7",
        &["IXY_QUEUES"],
    );
}

#[test]
fn pcap_usage_errors_exit_2() {
    usage_error(
        "pcap",
        &["0000:00:04.0"],
        &[],
        "error: expected a PCI address, a file and an optional count",
        &[],
    );
    usage_error(
        "pcap",
        &["0000:00:04.0", "out.pcap", "-1"],
        &[],
        "error: '-1' is not a packet count",
        &[],
    );
}

#[test]
fn list_usage_error_exits_2() {
    usage_error(
        "list",
        &["0000:00:04.0"],
        &[],
        "error: list takes no arguments",
        &[],
    );
}

#[test]
fn a_run_time_error_is_one_line_and_exit_1() {
    // pcap creates its output file before it looks for the device.
    let (status, lines) = run("pcap", &["0000:00:04.0", "/nonexistent/ixy/out.pcap"], &[]);
    assert_eq!(status, 1, "{lines:?}");
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert!(
        lines[0].starts_with("error: cannot create /nonexistent/ixy/out.pcap"),
        "{lines:?}"
    );
}
