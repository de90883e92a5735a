//! A throw-away PostgreSQL cluster for the tests: `initdb` and `pg_ctl` in a temporary
//! directory, on a free loopback port, started once per test process and stopped (and its
//! directory removed) when the process ends. `OFFPAY_TEST_POSTGRES=postgres://...` names a
//! server to use instead. Each test gets a database of its own.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, Ordering};

const MISSING: &str = "these tests need PostgreSQL (initdb, pg_ctl, postgres): install the \
    Debian package `postgresql` (apt-get install postgresql; scripts/test-all.sh does), or set \
    OFFPAY_TEST_POSTGRES=postgres://USER@HOST:PORT/DB to use a server that runs";

/// A running PostgreSQL server.
pub struct Cluster {
    /// `postgres://USER@HOST:PORT` (no database).
    pub base: String,
    /// The cluster's directory, when this process started it.
    pub dir: Option<PathBuf>,
    /// Where its binaries are.
    bin: PathBuf,
}

static SHARED: OnceLock<Cluster> = OnceLock::new();
static NEXT_DB: AtomicU32 = AtomicU32::new(0);

/// The cluster this test process shares.
pub fn shared() -> &'static Cluster {
    SHARED.get_or_init(|| match std::env::var("OFFPAY_TEST_POSTGRES") {
        Ok(url) => Cluster {
            base: url
                .rsplit_once('/')
                .map_or(url.clone(), |(b, _)| b.to_string()),
            dir: None,
            bin: PathBuf::new(),
        },
        Err(_) => Cluster::start(),
    })
}

fn bin_dir() -> PathBuf {
    if let Ok(out) = Command::new("pg_config").arg("--bindir").output()
        && out.status.success()
    {
        let p = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
        if p.join("initdb").exists() {
            return p;
        }
    }
    let mut found: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .map(|d| d.flatten().map(|e| e.path().join("bin")).collect())
        .unwrap_or_default();
    found.retain(|p| p.join("initdb").exists() && p.join("pg_ctl").exists());
    found.sort();
    found.pop().unwrap_or_else(|| panic!("{MISSING}"))
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

/// A command run as the cluster's owner (PostgreSQL refuses to run as root).
fn as_owner(program: &Path) -> Command {
    if is_root() {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(program);
        c
    } else {
        Command::new(program)
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn run(mut c: Command, what: &str) {
    let out = c
        .output()
        .unwrap_or_else(|e| panic!("{what}: {e}; {MISSING}"));
    assert!(
        out.status.success(),
        "{what} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

impl Cluster {
    /// Starts a cluster of this process's own, stopped when the process ends.
    pub fn start() -> Cluster {
        let bin = bin_dir();
        let dir = std::env::temp_dir().join(format!(
            "offpay-pg-{}-{}",
            std::process::id(),
            NEXT_DB.fetch_add(1, Ordering::SeqCst)
        ));
        std::fs::create_dir_all(&dir).unwrap();
        if is_root() {
            run(
                {
                    let mut c = Command::new("chown");
                    c.arg("postgres").arg(&dir);
                    c
                },
                "chown",
            );
        }
        let data = dir.join("data");
        let mut init = as_owner(&bin.join("initdb"));
        init.arg("-D").arg(&data).args([
            "-U",
            "postgres",
            "-A",
            "trust",
            "-E",
            "UTF8",
            "--no-sync",
        ]);
        run(init, "initdb");
        let port = free_port();
        let cluster = Cluster {
            base: format!("postgres://postgres@127.0.0.1:{port}"),
            dir: Some(dir.clone()),
            bin,
        };
        let conf = format!(
            "port = {port}\nlisten_addresses = '127.0.0.1'\nunix_socket_directories = '{}'\n\
             max_connections = 300\nfsync = on\nsynchronous_commit = on\n",
            dir.display()
        );
        std::fs::OpenOptions::new()
            .append(true)
            .open(data.join("postgresql.conf"))
            .and_then(|mut f| std::io::Write::write_all(&mut f, conf.as_bytes()))
            .unwrap();
        cluster.pg_ctl(&["start", "-w", "-t", "60"]);
        // Stops the cluster and removes it once this process has ended, however it ends: the
        // watcher outlives this process on purpose, so it is never waited for.
        let pg_ctl = cluster.bin.join("pg_ctl");
        let stop = format!(
            "while kill -0 {pid} 2>/dev/null; do sleep 1; done; {owner}{pg_ctl} -D {data} -m immediate stop >/dev/null 2>&1; rm -rf {dir}",
            pid = std::process::id(),
            owner = if is_root() {
                "runuser -u postgres -- "
            } else {
                ""
            },
            pg_ctl = pg_ctl.display(),
            data = data.display(),
            dir = dir.display(),
        );
        #[allow(clippy::zombie_processes)]
        Command::new("sh")
            .args(["-c", &stop])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        cluster
    }

    fn pg_ctl(&self, args: &[&str]) {
        let dir = self.dir.as_ref().expect("a cluster of this process's own");
        let mut c = as_owner(&self.bin.join("pg_ctl"));
        c.arg("-D")
            .arg(dir.join("data"))
            .arg("-l")
            .arg(dir.join("log"))
            .args(args);
        run(c, &format!("pg_ctl {}", args.join(" ")));
    }

    /// Stops the server at once, as a crash would (no checkpoint), and starts it again.
    pub fn crash_and_restart(&self) {
        self.pg_ctl(&["stop", "-m", "immediate", "-w"]);
        self.pg_ctl(&["start", "-w", "-t", "60"]);
    }

    /// A new empty database; its URL.
    pub fn database(&self) -> String {
        let name = format!(
            "offpay_{}_{}",
            std::process::id(),
            NEXT_DB.fetch_add(1, Ordering::SeqCst)
        );
        let mut admin =
            postgres::Client::connect(&format!("{}/postgres", self.base), postgres::NoTls)
                .unwrap_or_else(|e| panic!("cannot reach PostgreSQL at {}: {e}", self.base));
        admin
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .unwrap();
        format!("{}/{name}", self.base)
    }
}
