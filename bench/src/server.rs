//! The server under test, run as a child process of the release binary so
//! its memory can be read from /proc and nothing of the driver is measured:
//! the production `studysync` binary, or `bench-server` for a comparison
//! write mode.
use std::{
    path::{Path, PathBuf},
    process::Stdio,
    time::{Duration, Instant},
};

use anyhow::{bail, Context};
use bench::WriteMode;
use tokio::process::{Child, Command};

/// How to reach the databases; shared by every process the bench starts.
#[derive(Clone)]
pub struct Env {
    /// The production binary, `studysync`.
    pub bin: PathBuf,
    /// `bench-server`: the same server with a comparison write mode.
    pub bench_server: PathBuf,
    pub database_url: String,
    pub mongodb_uri: String,
    pub mongodb_db: String,
    pub jwt_secret: String,
    pub log_dir: PathBuf,
}

impl Env {
    fn command(
        &self,
        bin: &Path,
        args: &[&str],
        vars: &[(&str, String)],
        log: &str,
    ) -> anyhow::Result<Command> {
        let mut cmd = Command::new(bin);
        cmd.args(args)
            .env("DATABASE_URL", &self.database_url)
            .env("MONGODB_URI", &self.mongodb_uri)
            .env("MONGODB_DB", &self.mongodb_db)
            .env("JWT_SECRET", &self.jwt_secret)
            .env("RUST_LOG", "warn")
            .kill_on_drop(true)
            .stdin(Stdio::null());
        for (k, v) in vars {
            cmd.env(k, v);
        }
        std::fs::create_dir_all(&self.log_dir)?;
        let file = std::fs::File::create(self.log_dir.join(format!("{log}.log")))?;
        cmd.stdout(Stdio::from(file.try_clone()?))
            .stderr(Stdio::from(file));
        Ok(cmd)
    }
}

pub struct Process {
    child: Child,
    pub url: String,
}

impl Process {
    /// `studysync serve` on a free port; returns once `/healthz` answers.
    pub async fn serve(env: &Env, vars: &[(&str, String)], log: &str) -> anyhow::Result<Self> {
        Self::start_server(env, &env.bin, &["serve"], vars, log).await
    }

    /// `bench-server` with `mode` (it never runs a worker), as
    /// [`serve`](Self::serve).
    pub async fn serve_comparison(
        env: &Env,
        mode: WriteMode,
        vars: &[(&str, String)],
        log: &str,
    ) -> anyhow::Result<Self> {
        let args = ["--write-mode", mode.name()];
        Self::start_server(env, &env.bench_server, &args, vars, log).await
    }

    async fn start_server(
        env: &Env,
        bin: &Path,
        args: &[&str],
        vars: &[(&str, String)],
        log: &str,
    ) -> anyhow::Result<Self> {
        let port = free_port()?;
        let mut vars = vars.to_vec();
        vars.push(("BIND_ADDR", format!("127.0.0.1:{port}")));
        let child = env
            .command(bin, args, &vars, log)?
            .spawn()
            .context("starting the server")?;
        let mut process = Self {
            child,
            url: format!("http://127.0.0.1:{port}"),
        };
        let client = reqwest::Client::new();
        let started = Instant::now();
        loop {
            if let Ok(r) = client.get(format!("{}/healthz", process.url)).send().await {
                if r.status().is_success() {
                    return Ok(process);
                }
            }
            if let Some(status) = process.child.try_wait()? {
                bail!(
                    "server exited with {status}; see {}",
                    env.log_dir.join(format!("{log}.log")).display()
                );
            }
            if started.elapsed() > Duration::from_secs(60) {
                bail!("server did not answer /healthz within 60 s");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// `studysync worker` (a separate sync worker process).
    pub async fn worker(env: &Env, vars: &[(&str, String)], log: &str) -> anyhow::Result<Self> {
        let mut child = env
            .command(&env.bin, &["worker"], vars, log)?
            .spawn()
            .context("starting the worker")?;
        tokio::time::sleep(Duration::from_millis(300)).await;
        if let Some(status) = child.try_wait()? {
            bail!(
                "worker exited with {status}; see {}",
                env.log_dir.join(format!("{log}.log")).display()
            );
        }
        Ok(Self {
            child,
            url: String::new(),
        })
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.id()
    }

    /// Peak resident set size so far (VmHWM), in MiB.
    pub fn peak_rss_mib(&self) -> Option<f64> {
        self.status_mib("VmHWM:")
    }

    /// Resident set size now (VmRSS), in MiB.
    pub fn rss_mib(&self) -> Option<f64> {
        self.status_mib("VmRSS:")
    }

    fn status_mib(&self, field: &str) -> Option<f64> {
        status_mib(self.child.id()?, field)
    }

    /// Starts the peak (VmHWM) over from the current RSS, so the next
    /// [`peak_rss_mib`](Self::peak_rss_mib) is the peak of what follows
    /// (`echo 5 > /proc/<pid>/clear_refs`, Linux 4.0 and later). Returns
    /// whether the kernel took it: afterwards VmHWM equals VmRSS.
    pub fn reset_peak_rss(&self) -> bool {
        let Some(pid) = self.child.id() else {
            return false;
        };
        if std::fs::write(format!("/proc/{pid}/clear_refs"), "5").is_err() {
            return false;
        }
        match (self.peak_rss_mib(), self.rss_mib()) {
            // The RSS may have grown by a page or two in between.
            (Some(peak), Some(now)) => peak <= now + 1.0,
            _ => false,
        }
    }

    pub async fn stop(mut self) {
        let _ = self.child.start_kill();
        let _ = self.child.wait().await;
    }
}

/// A memory figure of `/proc/<pid>/status` (`VmRSS:`, `VmHWM:`), in MiB.
pub fn status_mib(pid: u32, field: &str) -> Option<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with(field))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}

fn free_port() -> anyhow::Result<u16> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(listener.local_addr()?.port())
}
