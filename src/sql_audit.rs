//! Checks every statement this process sends against the CockroachDB rules
//! (`migration::rules`), when `SQL_AUDIT_DIR` names a directory.
//!
//! PostgreSQL stands in for CockroachDB in the test suite, so a statement
//! only PostgreSQL accepts would pass every test. The suite sets
//! `SQL_AUDIT_DIR`; each process writes the distinct statements it sent to
//! `statements-<pid>.sql` and any that break a rule to
//! `violations-<pid>.txt`, which `scripts/test.sh` checks once the tests are
//! done. Operators can set it on a staging instance the same way. Unset, it
//! costs nothing.
use std::{
    collections::HashSet,
    hash::{DefaultHasher, Hash, Hasher},
    io::Write,
    path::PathBuf,
    sync::{Mutex, OnceLock},
};

use sea_orm::DatabaseConnection;

/// The environment variable naming the directory.
pub const ENV: &str = "SQL_AUDIT_DIR";

/// Distinct statements remembered per process; past this, new ones are
/// still checked but not deduplicated.
const MAX_REMEMBERED: usize = 100_000;

struct Auditor {
    dir: PathBuf,
    seen: Mutex<HashSet<u64>>,
}

impl Auditor {
    fn see(&self, sql: &str) {
        let mut hasher = DefaultHasher::new();
        sql.hash(&mut hasher);
        let key = hasher.finish();
        {
            let Ok(mut seen) = self.seen.lock() else {
                return;
            };
            if seen.contains(&key) {
                return;
            }
            if seen.len() < MAX_REMEMBERED {
                seen.insert(key);
            }
        }
        let pid = std::process::id();
        self.append(
            &format!("statements-{pid}.sql"),
            &format!("{};\n", sql.trim()),
        );
        let broken = migration::rules::check(sql);
        if !broken.is_empty() {
            let rules: Vec<String> = broken.iter().map(ToString::to_string).collect();
            self.append(
                &format!("violations-{pid}.txt"),
                &format!("{}\n    in: {}\n", rules.join("; "), sql.trim()),
            );
            tracing::error!(rules = ?rules, sql, "statement breaks a CockroachDB rule");
        }
    }

    fn append(&self, file: &str, text: &str) {
        let written = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join(file))
            .and_then(|mut f| f.write_all(text.as_bytes()));
        if let Err(err) = written {
            tracing::warn!(%err, dir = %self.dir.display(), "cannot write the SQL audit");
        }
    }
}

fn auditor() -> Option<&'static Auditor> {
    static AUDITOR: OnceLock<Option<Auditor>> = OnceLock::new();
    AUDITOR
        .get_or_init(|| {
            let dir = PathBuf::from(std::env::var_os(ENV)?);
            if let Err(err) = std::fs::create_dir_all(&dir) {
                tracing::warn!(%err, dir = %dir.display(), "cannot create the SQL audit directory");
                return None;
            }
            Some(Auditor {
                dir,
                seen: Mutex::new(HashSet::new()),
            })
        })
        .as_ref()
}

/// Audits every statement sent through `db` (and its transactions), if
/// `SQL_AUDIT_DIR` is set.
pub fn attach(db: &mut DatabaseConnection) {
    if let Some(auditor) = auditor() {
        db.set_metric_callback(move |info| auditor.see(&info.statement.sql));
    }
}
