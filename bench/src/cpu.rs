//! CPU time per component, read from /proc: what each process on this
//! machine spent while a measurement ran. On two shared cores, a mutation's
//! latency under load follows the CPU that every component spends on it.
use std::collections::HashMap;

/// The parts of the system CPU time is charged to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Part {
    /// The server process under test (API and, when it runs one, its worker).
    Server,
    /// Every PostgreSQL process (the CockroachDB stand-in).
    Sql,
    /// The MongoDB-wire server (mongod or SecantusDB).
    Mongo,
    /// This benchmark process (the load generator).
    Load,
}

impl Part {
    pub const ALL: [Part; 4] = [Part::Server, Part::Sql, Part::Mongo, Part::Load];

    pub fn label(self) -> &'static str {
        match self {
            Part::Server => "server",
            Part::Sql => "PostgreSQL",
            Part::Mongo => "MongoDB server",
            Part::Load => "load generator",
        }
    }
}

/// Cumulative CPU seconds (user + system) per process, keyed by pid.
#[derive(Debug, Clone, Default)]
pub struct Snapshot(HashMap<u32, (Option<Part>, f64)>);

/// Reads every process's CPU time; `server` is the pid charged as
/// [`Part::Server`] (other servers' pids are charged to nothing).
pub fn snapshot(server: Option<u32>) -> Snapshot {
    let ticks = clock_ticks();
    let me = std::process::id();
    let mut map = HashMap::new();
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Snapshot(map);
    };
    for entry in dir.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<u32>().ok())
        else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        // "pid (comm) state ppid ..."; comm may hold spaces, so split at
        // the last ')'. utime and stime are fields 14 and 15.
        let Some((head, rest)) = stat.rsplit_once(')') else {
            continue;
        };
        let comm = head.split_once('(').map_or("", |(_, c)| c);
        let fields: Vec<&str> = rest.split_whitespace().collect();
        let (Some(utime), Some(stime)) = (fields.get(11), fields.get(12)) else {
            continue;
        };
        let (Ok(utime), Ok(stime)) = (utime.parse::<f64>(), stime.parse::<f64>()) else {
            continue;
        };
        let part = if Some(pid) == server {
            Some(Part::Server)
        } else if pid == me {
            Some(Part::Load)
        } else if comm == "postgres" {
            Some(Part::Sql)
        } else if comm.starts_with("secantusd") || comm == "mongod" {
            Some(Part::Mongo)
        } else {
            None
        };
        map.insert(pid, (part, (utime + stime) / ticks));
    }
    Snapshot(map)
}

/// Clock ticks per second of /proc's CPU times (`getconf CLK_TCK`).
fn clock_ticks() -> f64 {
    static TICKS: std::sync::OnceLock<f64> = std::sync::OnceLock::new();
    *TICKS.get_or_init(|| {
        std::process::Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|o| String::from_utf8(o.stdout).ok())
            .and_then(|s| s.trim().parse::<f64>().ok())
            .filter(|t| *t > 0.0)
            .unwrap_or(100.0)
    })
}

/// CPU seconds per part between two snapshots. A process that appeared
/// in between counts from zero; one that ended is not counted.
pub fn spent(before: &Snapshot, after: &Snapshot) -> HashMap<Part, f64> {
    let mut out = HashMap::new();
    for (pid, (part, secs)) in &after.0 {
        let Some(part) = part else { continue };
        let earlier = before.0.get(pid).map_or(0.0, |(_, s)| *s);
        *out.entry(*part).or_insert(0.0) += (secs - earlier).max(0.0);
    }
    out
}

/// CPU milliseconds `part` spent per request, of `n` requests answered.
pub fn per_request_ms(spent: &HashMap<Part, f64>, part: Part, n: usize) -> f64 {
    spent.get(&part).copied().unwrap_or(0.0) * 1e3 / n.max(1) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_is_charged_for_the_cpu_it_burns() {
        // Spins until the snapshots charge 0.2 s of CPU to the load
        // generator; on a busy machine that takes longer, never forever.
        let before = snapshot(None);
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        let mut x = 0u64;
        let spent = loop {
            let slice = std::time::Instant::now();
            while slice.elapsed() < std::time::Duration::from_millis(50) {
                x = std::hint::black_box(x.wrapping_mul(6364136223846793005).wrapping_add(1));
            }
            let spent = spent(&before, &snapshot(None));
            let load = spent.get(&Part::Load).copied().unwrap_or(0.0);
            if load >= 0.2 || std::time::Instant::now() > deadline {
                break spent;
            }
        };
        let load = spent.get(&Part::Load).copied().unwrap_or(0.0);
        assert!(load >= 0.2, "load generator charged {load} s in 60 s");
        assert!(
            !spent.contains_key(&Part::Server),
            "no server pid was named"
        );
    }

    #[test]
    fn a_named_pid_is_charged_as_the_server() {
        let me = std::process::id();
        let snap = snapshot(Some(me));
        assert_eq!(
            snap.0.get(&me).and_then(|(part, _)| *part),
            Some(Part::Server)
        );
    }
}
