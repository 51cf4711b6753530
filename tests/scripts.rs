//! `setup-hugetlbfs.sh` and `scripts/rebind-kernel.sh` against fake /sys and /proc trees
//! (`IXY_ROOT`), with `mount`, `umount` and `modprobe` replaced by fakes that log their
//! calls: nothing here touches the machine's hugepages, mounts or devices. (Inside a QEMU
//! guest, `vm/test.sh` runs both scripts for real: scenarios `rebind-kernel` and
//! `setup-hugetlbfs`.)

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::RwLock;

/// Writing the fake commands excludes running scripts: a child forked by another test
/// thread while a fake is open for writing would keep it open, and executing that fake
/// would then fail with ETXTBSY ("text file busy"), now and then.
static FORK: RwLock<()> = RwLock::new(());

// Directories that clean up after themselves, shared with the unit tests.
#[allow(dead_code)]
#[path = "support/testing.rs"]
mod testing;
use testing::TempDir;

const ADDR: &str = "0000:03:00.0";

/// Fake commands: each logs `name args` to `$IXY_ROOT/calls`; `mount` adds its last
/// argument to the fake /proc/mounts, `umount` removes it (or fails while `$IXY_ROOT/busy`
/// exists).
const FAKES: &[(&str, &str)] = &[
    (
        "mount",
        "for last; do :; done\n\
         echo \"hugetlbfs $last hugetlbfs rw,pagesize=2M 0 0\" >>\"$IXY_ROOT/proc/mounts\"\n",
    ),
    (
        "umount",
        "[ -e \"$IXY_ROOT/busy\" ] && exit 32\n\
         grep -v \" $1 \" \"$IXY_ROOT/proc/mounts\" >\"$IXY_ROOT/mounts.new\"\n\
         mv \"$IXY_ROOT/mounts.new\" \"$IXY_ROOT/proc/mounts\"\n",
    ),
    ("modprobe", ""),
];

/// A fresh fake root `<tmp>/ixy-scripts-<tag>-<pid>-<n>`, removed when dropped (also when
/// the test fails), with the fake commands in `bin/`, an empty /proc/mounts and hugepage
/// counters `nr`, `free`, `resv`.
fn fake_root(tag: &str, nr: u32, free: u32, resv: u32) -> TempDir {
    let root = TempDir::new(&format!("scripts-{tag}"));
    let hp = root.join("sys/kernel/mm/hugepages/hugepages-2048kB");
    fs::create_dir_all(&hp).unwrap();
    for (name, value) in [("nr", nr), ("free", free), ("resv", resv)] {
        fs::write(hp.join(format!("{name}_hugepages")), format!("{value}\n")).unwrap();
    }
    fs::create_dir_all(root.join("proc")).unwrap();
    fs::write(root.join("proc/mounts"), "").unwrap();
    fs::create_dir_all(root.join("bin")).unwrap();
    let _no_fork = FORK.write().unwrap();
    for (name, body) in FAKES {
        let path = root.join("bin").join(name);
        let log = format!("echo \"{name} $*\" >>\"$IXY_ROOT/calls\"\n");
        fs::write(&path, format!("#!/bin/sh\n{log}{body}")).unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o755)).unwrap();
    }
    fs::write(root.join("calls"), "").unwrap();
    root
}

struct Run {
    status: i32,
    stdout: String,
    stderr: String,
}

impl Run {
    /// Asserts that the script refused or failed (status 1) saying `why`.
    fn failed_with(&self, why: &str) {
        assert_eq!(self.status, 1, "{}", self.stderr);
        assert!(self.stderr.contains(why), "{}", self.stderr);
    }

    /// Asserts that the script succeeded (status 0) saying `what`.
    fn said(&self, what: &str) {
        assert_eq!(self.status, 0, "{}", self.stderr);
        assert!(self.stdout.contains(what), "{}", self.stdout);
    }
}

/// Runs `script` (relative to the repository) with `args` against the fake root.
fn run(root: &Path, script: &str, args: &[&str]) -> Run {
    let path = format!(
        "{}:{}",
        root.join("bin").display(),
        std::env::var("PATH").unwrap()
    );
    let _forks = FORK.read().unwrap();
    let out = Command::new("sh")
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join(script))
        .args(args)
        .env("IXY_ROOT", root)
        .env("PATH", path)
        .output()
        .unwrap();
    Run {
        status: out.status.code().unwrap(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

fn read(root: &Path, file: &str) -> String {
    fs::read_to_string(root.join(file)).unwrap()
}

const NR: &str = "sys/kernel/mm/hugepages/hugepages-2048kB/nr_hugepages";
const SETUP: &str = "setup-hugetlbfs.sh";

#[test]
fn setup_reserves_and_mounts_once_then_changes_nothing() {
    let root = fake_root("setup", 0, 0, 0);
    let mnt = root.join("mnt/huge-x").display().to_string();
    let r = run(&root, SETUP, &["16", &mnt]);
    r.said("reserved 16 hugepages of 2 MiB (before: 0)");
    r.said(&format!("mounted hugetlbfs at {mnt}"));
    r.said(&format!("IXY_HUGEPAGE_DIR={mnt}"));
    assert_eq!(read(&root, NR), "16\n");
    let mount = format!("mount -t hugetlbfs -o pagesize=2M hugetlbfs {mnt}\n");
    assert_eq!(read(&root, "calls"), mount);

    let again = run(&root, SETUP, &["16", &mnt]);
    again.said("16 hugepages of 2 MiB already reserved");
    again.said("hugetlbfs already mounted at");
    assert_eq!(read(&root, "calls"), mount, "no second mount");
}

#[test]
fn setup_never_shrinks_below_the_pages_in_use() {
    // 512 reserved, 500 free of which 4 are promised to a mapping: 16 in use.
    let root = fake_root("shrink", 512, 500, 4);
    let mnt = root.join("mnt/huge").display().to_string();
    run(&root, SETUP, &["8", &mnt])
        .failed_with("refusing to shrink the reservation from 512 to 8 hugepages: 16 are in use");
    assert_eq!(read(&root, NR), "512\n");
    assert_eq!(read(&root, "calls"), "", "refused before mounting");
    run(&root, SETUP, &["16", &mnt]).said("reserved 16 hugepages of 2 MiB (before: 512)");
    assert_eq!(read(&root, NR), "16\n");
}

#[test]
fn undo_unmounts_and_releases_but_not_while_pages_are_held() {
    let root = fake_root("undo", 16, 16, 0);
    let mnt = root.join("mnt/huge").display().to_string();
    run(&root, SETUP, &["16", &mnt]).said("mounted hugetlbfs");
    fs::write(root.join("busy"), "").unwrap();
    run(&root, SETUP, &["--undo", &mnt]).failed_with(&format!("cannot unmount {mnt}"));
    assert_eq!(read(&root, NR), "16\n", "reservation kept");

    fs::remove_file(root.join("busy")).unwrap();
    let r = run(&root, SETUP, &["--undo", &mnt]);
    r.said(&format!("unmounted {mnt}"));
    r.said("reserved 0 hugepages of 2 MiB (before: 16)");
    assert_eq!(read(&root, NR), "0\n");
    assert_eq!(read(&root, "proc/mounts"), "");
    assert!(
        !Path::new(&mnt).exists(),
        "the empty mount point is removed"
    );

    // Nothing mounted, but 8 pages held by someone else: the reservation stays.
    fs::write(root.join(NR), "16\n").unwrap();
    let free = "sys/kernel/mm/hugepages/hugepages-2048kB/free_hugepages";
    fs::write(root.join(free), "8\n").unwrap();
    let r = run(&root, SETUP, &["--undo", &mnt]);
    r.failed_with("8 are in use");
    assert!(
        r.stdout.contains(&format!("nothing mounted at {mnt}")),
        "{}",
        r.stdout
    );
    assert_eq!(read(&root, NR), "16\n");
}

#[test]
fn setup_leaves_other_filesystems_alone_and_rejects_bad_arguments() {
    let root = fake_root("args", 0, 0, 0);
    let mnt = root.join("mnt/tmp").display().to_string();
    fs::write(
        root.join("proc/mounts"),
        format!("tmpfs {mnt} tmpfs rw 0 0\n"),
    )
    .unwrap();
    run(&root, SETUP, &["0", &mnt]).failed_with(&format!("{mnt} is a tmpfs mount, not hugetlbfs"));
    for (args, why) in [
        (&["many"][..], "'many' is not a number of pages"),
        (
            &["16", "mnt/huge"],
            "the mount point must be an absolute path, not 'mnt/huge'",
        ),
        (&["16", "/mnt/huge", "me", "more"], "too many arguments"),
        (
            &["--undo", "/a", "/b"],
            "--undo takes at most a mount point",
        ),
    ] {
        let r = run(&root, SETUP, args);
        assert_eq!(r.status, 2, "{args:?}");
        let first = format!("setup-hugetlbfs: {why}\nusage: ");
        assert!(r.stderr.starts_with(&first), "{}", r.stderr);
    }
    assert_eq!(read(&root, "calls"), "");
}

const REBIND: &str = "scripts/rebind-kernel.sh";

/// A fake PCI device `ADDR` (an 82599) bound to `driver`, with empty `drivers_probe` and
/// `driver_override` files.
fn fake_device(tag: &str, driver: Option<&str>) -> (TempDir, PathBuf) {
    let root = fake_root(tag, 0, 0, 0);
    let pci = root.join("sys/bus/pci");
    let dev = pci.join("devices").join(ADDR);
    fs::create_dir_all(&dev).unwrap();
    fs::write(dev.join("config"), [0u8; 64]).unwrap();
    fs::write(
        dev.join("modalias"),
        "pci:v00008086d000010FBsv00008086sd0000000Cbc02sc00i00\n",
    )
    .unwrap();
    fs::write(dev.join("driver_override"), "(null)\n").unwrap();
    fs::write(pci.join("drivers_probe"), "").unwrap();
    if let Some(driver) = driver {
        let drv = pci.join("drivers").join(driver);
        fs::create_dir_all(&drv).unwrap();
        fs::write(drv.join("unbind"), "").unwrap();
        std::os::unix::fs::symlink(&drv, dev.join("driver")).unwrap();
    }
    (root, dev)
}

#[test]
fn rebind_probes_an_unbound_device_with_an_empty_override() {
    let (root, dev) = fake_device("rebind-none", None);
    let r = run(&root, REBIND, &["03:00.0"]);
    // The fake kernel binds nothing, so the script must say so.
    r.failed_with(&format!("no kernel driver took {ADDR}"));
    assert_eq!(read(&dev, "driver_override"), "\n", "override cleared");
    assert_eq!(
        read(&root, "sys/bus/pci/drivers_probe"),
        format!("{ADDR}\n")
    );
    assert_eq!(
        read(&root, "calls"),
        "modprobe pci:v00008086d000010FBsv00008086sd0000000Cbc02sc00i00\n"
    );

    // With a driver named: the override names it for the probe, then is cleared again.
    let (root, dev) = fake_device("rebind-named", None);
    let r = run(&root, REBIND, &[ADDR, "ixgbe"]);
    r.failed_with("is ixgbe the right driver?");
    assert_eq!(read(&root, "calls"), "modprobe ixgbe\n");
    assert_eq!(read(&dev, "driver_override"), "\n");
}

#[test]
fn rebind_takes_the_device_from_vfio_pci_first() {
    let (root, _) = fake_device("rebind-vfio", Some("vfio-pci"));
    let r = run(&root, REBIND, &[ADDR]);
    assert_eq!(
        read(&root, "sys/bus/pci/drivers/vfio-pci/unbind"),
        format!("{ADDR}\n")
    );
    // The fake unbind leaves the link: the script notices instead of probing.
    r.failed_with("still bound to vfio-pci after unbind");
    assert_eq!(read(&root, "sys/bus/pci/drivers_probe"), "");
}

#[test]
fn rebind_leaves_a_device_with_a_kernel_driver_alone() {
    let (root, dev) = fake_device("rebind-bound", Some("ixgbe"));
    let r = run(&root, REBIND, &[ADDR]);
    r.said("already bound to kernel driver ixgbe");
    let r = run(&root, REBIND, &[ADDR, "igb"]);
    r.failed_with("bound to ixgbe, not igb; left alone");
    assert_eq!(read(&root, "sys/bus/pci/drivers/ixgbe/unbind"), "");
    assert_eq!(read(&root, "sys/bus/pci/drivers_probe"), "");
    assert_eq!(read(&dev, "driver_override"), "(null)\n");
}

#[test]
fn rebind_rejects_bad_addresses_and_missing_devices() {
    let (root, _) = fake_device("rebind-args", None);
    for args in [&[][..], &["0000:03:00"], &["0000:03:00.0", "ixgbe", "more"]] {
        let r = run(&root, REBIND, args);
        assert_eq!(r.status, 2, "{args:?}");
        assert!(r.stderr.contains("\nusage: "), "{}", r.stderr);
    }
    let r = run(&root, REBIND, &["0000:04:00.0"]);
    r.failed_with("no PCI device at 0000:04:00.0");
    assert_eq!(read(&root, "calls"), "");
}
