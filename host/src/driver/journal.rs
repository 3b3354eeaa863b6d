//! The rollback journal: every change a driver call (or the operation around
//! it) makes is written here, as its inverse, *before* it is applied.
//!
//! One file per operation, `<root>/journal/<pid>-<random>.jsonl`, held under
//! an exclusive flock by the process doing the operation. A finished
//! operation deletes its file. A file whose lock can be taken belongs to a
//! process that died mid-way: the next mydocker invocation applies its
//! inverses in reverse order and deletes it.
//!
//! Entries are written without fsync on purpose: they protect kernel state
//! (links, rules, addresses) against the death of the *process*, and all of
//! that kernel state is gone anyway after a machine crash.

use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::net::Ipv4Addr;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use fs4::fs_std::FileExt;
use serde::{Deserialize, Serialize};

use crate::sys::firewall::Rule;
use crate::sys::sysctl::Sysctl;

/// The inverse of one change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "undo", rename_all = "snake_case")]
pub enum Undo {
    /// A link created in the host namespace (or in a container's, where it
    /// dies with the namespace if the process that knew it is gone).
    DeleteLink {
        container: bool,
        name: String,
    },
    DeleteAddress {
        container: bool,
        name: String,
        addr: Ipv4Addr,
        prefix: u8,
    },
    DeleteDefaultRoute {
        container: bool,
        gateway: Ipv4Addr,
    },
    /// Firewall rules to add back / take away.
    Firewall {
        add: Vec<Rule>,
        remove: Vec<Rule>,
    },
    Sysctl {
        key: Sysctl,
        old: String,
    },
    /// An address handed out by IPAM before the driver's connect.
    ReleaseAddress {
        network: String,
        address: Ipv4Addr,
    },
    /// First entry of every journal: what the operation was, so recovery
    /// can tell a finished one (its record exists) from an interrupted one.
    Operation {
        kind: OperationKind,
        network: String,
        container: Option<String>,
    },
}

/// Operations that journal their changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum OperationKind {
    CreateNetwork,
    Connect,
}

/// An open journal of one operation in progress.
#[derive(Debug)]
pub struct Journal {
    file: File,
    path: PathBuf,
}

impl Journal {
    /// Starts a journal under `dir` (created 0700 if needed).
    pub fn begin(dir: &Path) -> std::io::Result<Journal> {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode_0700()
            .create(dir)?;
        let mut rand = [0u8; 8];
        getrandom::fill(&mut rand).map_err(|e| std::io::Error::other(e.to_string()))?;
        let name = format!("{}-{}", std::process::id(), hex::encode(rand));
        // Created and locked under a name recovery ignores, then renamed:
        // nobody can mistake a journal being born for an abandoned one.
        let tmp = dir.join(format!("{name}.new"));
        let path = dir.join(format!("{name}.jsonl"));
        let file = OpenOptions::new()
            .create_new(true)
            .append(true)
            .mode(0o600)
            .open(&tmp)?;
        file.lock_exclusive()?;
        std::fs::rename(&tmp, &path)?;
        Ok(Journal { file, path })
    }

    /// Writes an inverse; the change it undoes may be applied after this.
    pub fn record(&mut self, step: &Undo) -> std::io::Result<()> {
        let mut line = serde_json::to_vec(step).map_err(std::io::Error::other)?;
        line.push(b'\n');
        self.file.write_all(&line)
    }

    /// The operation is over (committed or rolled back): forget it.
    pub fn finish(self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

trait DirBuilderExt0700 {
    fn mode_0700(&mut self) -> &mut Self;
}

impl DirBuilderExt0700 for std::fs::DirBuilder {
    fn mode_0700(&mut self) -> &mut Self {
        std::os::unix::fs::DirBuilderExt::mode(self, 0o700)
    }
}

/// Journals left by processes that died mid-operation, each with its
/// entries in the order they were written. Files still locked by a live
/// process are skipped. The caller applies the entries in reverse, then
/// calls [`Orphan::done`].
pub fn orphans(dir: &Path) -> Vec<Orphan> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for e in entries.flatten() {
        let path = e.path();
        if path.extension().is_none_or(|x| x != "jsonl") {
            continue;
        }
        let Ok(file) = OpenOptions::new().read(true).write(true).open(&path) else {
            continue;
        };
        // Held by its (live) owner: not ours to touch.
        if !matches!(FileExt::try_lock_exclusive(&file), Ok(true)) {
            continue;
        }
        let steps = BufReader::new(&file)
            .lines()
            .map_while(Result::ok)
            // A torn last line (killed mid-write) was never applied.
            .filter_map(|l| serde_json::from_str::<Undo>(&l).ok())
            .collect();
        out.push(Orphan {
            path,
            steps,
            _lock: file,
        });
    }
    out
}

/// One abandoned journal, locked by us while we recover it.
pub struct Orphan {
    pub path: PathBuf,
    pub steps: Vec<Undo>,
    _lock: File,
}

impl Orphan {
    pub fn done(self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn live_journals_are_not_orphans_and_finished_ones_vanish() {
        let dir = tempfile::tempdir().unwrap();
        let mut j = Journal::begin(dir.path()).unwrap();
        j.record(&Undo::DeleteLink {
            container: false,
            name: "br0".into(),
        })
        .unwrap();
        assert!(
            orphans(dir.path()).is_empty(),
            "locked by us: not an orphan"
        );
        let path = j.path.clone();
        // Simulate the owner dying: its lock goes away with its descriptor.
        drop(j.file);
        let found = orphans(dir.path());
        assert_eq!(found.len(), 1);
        assert_eq!(
            found[0].steps,
            [Undo::DeleteLink {
                container: false,
                name: "br0".into()
            }]
        );
        for o in found {
            o.done();
        }
        assert!(!path.exists());
    }

    #[test]
    fn torn_last_line_is_ignored() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("1-x.jsonl"),
            "{\"undo\":\"delete_link\",\"container\":false,\"name\":\"a\"}\n{\"undo\":\"dele",
        )
        .unwrap();
        let found = orphans(dir.path());
        assert_eq!(found[0].steps.len(), 1);
    }
}
