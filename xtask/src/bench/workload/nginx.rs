//! nginx from the distribution as section 9's real server: its own config in a fresh directory,
//! listening on 127.0.0.1 only, one worker, run as `nobody`; never the system service.

use std::{
    net::{TcpListener, TcpStream},
    os::unix::{fs::PermissionsExt, process::CommandExt},
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    thread,
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

use anyhow::{Context, Result, bail};

use crate::bench::{results::Server, sys};

/// The traced functions: nginx's per-request entry once the request header is read (it runs the
/// handler phases, here the static file, and sends the response) and the finalizer it calls.
/// Debian's binary is stripped, but it exports these in its dynamic symbol table (for dynamic
/// modules), so every tracer finds them without a debug file.
pub const FUNCTIONS: [&str; 2] = ["ngx_http_process_request", "ngx_http_finalize_request"];

/// The unprivileged user nginx runs as: it never holds root, even for its master process.
const USER: &str = "nobody";

/// A running nginx: master and its one worker, stopped and its directory removed when dropped.
pub struct Nginx {
    master: Child,
    pub worker: u32,
    pub port: u16,
    dir: PathBuf,
}

/// The binary, its version and the traced functions' first instructions.
pub fn describe(binary: &Path) -> Result<Server, String> {
    let (_, version) = sys::tool_at(binary, "-v")?;
    let symbols = if sys::has_symbol_table(binary) {
        "the symbol table".to_string()
    } else {
        "the dynamic symbol table (the binary is stripped; nginx exports its functions for dynamic modules)".into()
    };
    let functions: Vec<(String, Result<String, String>)> = FUNCTIONS
        .iter()
        .map(|f| (f.to_string(), sys::first_instruction(binary, f).map_err(|e| format!("{e:#}"))))
        .collect();
    if let Some((f, Err(e))) = functions.iter().find(|(_, insn)| insn.is_err()) {
        return Err(format!("skipped: {f} not found in {}: {e}", binary.display()));
    }
    Ok(Server { version, binary: binary.display().to_string(), symbols, functions })
}

impl Nginx {
    /// Writes the config and the page into a new directory under the temp dir, starts nginx on a
    /// free port and waits until its worker answers.
    pub fn start(binary: &Path) -> Result<Nginx> {
        let (uid, gid) = sys::user_ids(USER).with_context(|| format!("no user {USER} to run nginx as"))?;
        let dir = fresh_dir()?;
        let port = free_port()?;
        let run = dir.join("run");
        std::fs::create_dir(&run).with_context(|| format!("creating {}", run.display()))?;
        // Only `run/` (pid, logs, temp files) is the server's to write; the config and page are root's.
        std::os::unix::fs::chown(&run, Some(uid), Some(gid)).context("handing run/ to nginx's user")?;
        std::fs::create_dir(dir.join("html"))?;
        std::fs::write(dir.join("html/index.html"), PAGE)?;
        std::fs::write(dir.join("nginx.conf"), config(&dir, port))?;
        let stderr = std::fs::File::create(run.join("stderr.log"))?;
        let mut cmd = Command::new(binary);
        // SAFETY: the closure runs in the child between fork and exec and only calls prctl(2),
        // which is async-signal-safe; it runs after the switch to nginx's user, which would
        // otherwise clear the setting.
        unsafe {
            // If the bench dies without stopping it (Ctrl-C), the master is told to stop too.
            cmd.pre_exec(|| match libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM) {
                0 => Ok(()),
                _ => Err(std::io::Error::last_os_error()),
            });
        }
        let master = cmd
            .arg("-p")
            .arg(&dir)
            .arg("-c")
            .arg(dir.join("nginx.conf"))
            // Its default error log (/var/log/nginx) is opened before the config is read.
            .arg("-e")
            .arg(run.join("error.log"))
            .uid(uid)
            .gid(gid)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .with_context(|| format!("starting {}", binary.display()))?;
        let mut nginx = Nginx { master, worker: 0, port, dir };
        nginx.worker = nginx.wait_until_serving()?;
        Ok(nginx)
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}/", self.port)
    }

    /// User + system CPU of the master and the worker.
    pub fn cpu_time_s(&self) -> Option<f64> {
        Some(sys::cpu_time_s(self.master.id())? + sys::cpu_time_s(self.worker)?)
    }

    /// The worker's pid, once it accepts connections.
    fn wait_until_serving(&mut self) -> Result<u32> {
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Some(status) = self.master.try_wait()? {
                let log = |f: &str| std::fs::read_to_string(self.dir.join("run").join(f)).unwrap_or_default();
                bail!("nginx exited ({status}): {}{}", log("stderr.log").trim(), log("error.log").trim());
            }
            let worker = sys::children(self.master.id()).first().copied();
            if let Some(worker) = worker
                && TcpStream::connect(("127.0.0.1", self.port)).is_ok()
            {
                return Ok(worker);
            }
            thread::sleep(Duration::from_millis(50));
        }
        bail!("nginx did not answer on 127.0.0.1:{} within 10 s", self.port)
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        // SIGTERM: the master stops its worker, then exits; a stuck one is killed with its worker.
        sys::signal(self.master.id(), libc::SIGTERM);
        let deadline = Instant::now() + Duration::from_secs(5);
        while matches!(self.master.try_wait(), Ok(None)) && Instant::now() < deadline {
            thread::sleep(Duration::from_millis(20));
        }
        if matches!(self.master.try_wait(), Ok(None)) {
            sys::signal(self.worker, libc::SIGKILL);
            let _ = self.master.kill();
            let _ = self.master.wait();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A new directory of the bench's own (mkdir fails rather than reuse one someone else made).
fn fresh_dir() -> Result<PathBuf> {
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.subsec_nanos());
    let dir = std::env::temp_dir().join(format!("perf-ebpf-bench-nginx-{}-{nanos}", std::process::id()));
    std::fs::create_dir(&dir).with_context(|| format!("creating {}", dir.display()))?;
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755))?;
    Ok(dir)
}

/// A port nothing listens on now (the kernel's pick for port 0).
fn free_port() -> Result<u16> {
    let listener = TcpListener::bind(("127.0.0.1", 0)).context("finding a free port")?;
    Ok(listener.local_addr()?.port())
}

/// Debian's defaults where they matter (sendfile, keep-alive), one worker, an access log line
/// written per request as a logging server does, to /dev/null so runs do not fill a disk.
fn config(dir: &Path, port: u16) -> String {
    let (dir, run) = (dir.display(), dir.join("run").display().to_string());
    format!(
        "worker_processes 1;
daemon off;
master_process on;
pid {run}/nginx.pid;
error_log {run}/error.log warn;
events {{ worker_connections 1024; }}
http {{
    default_type text/html;
    sendfile on;
    tcp_nopush on;
    keepalive_timeout 65;
    access_log /dev/null;
    client_body_temp_path {run}/client_body;
    proxy_temp_path {run}/proxy;
    fastcgi_temp_path {run}/fastcgi;
    uwsgi_temp_path {run}/uwsgi;
    scgi_temp_path {run}/scgi;
    server {{
        listen 127.0.0.1:{port};
        root {dir}/html;
        index index.html;
    }}
}}
"
    )
}

/// The page every request gets: about the size of nginx's own welcome page.
const PAGE: &str = "<!DOCTYPE html>
<html>
<head>
<title>perf-ebpf bench</title>
<style>
html { color-scheme: light dark; }
body { width: 35em; margin: 0 auto; font-family: Tahoma, Verdana, Arial, sans-serif; }
</style>
</head>
<body>
<h1>perf-ebpf bench</h1>
<p>This page is served by nginx while <code>cargo xtask bench</code> measures what tracing costs a
real server: requests per second, the p99 the client sees, and CPU time per request, untraced and
under each tracer.</p>
<p>It lives in a temporary directory and is removed when the bench ends.</p>
</body>
</html>
";
