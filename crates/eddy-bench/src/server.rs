//! The real `eddy` binary on a free loopback port with a temporary data directory, and the
//! few HTTP calls the benchmarks make to it.
//!
//! The binary is `target/release/eddy` next to this benchmark's executable (`scripts/bench`
//! builds both), or `EDDY_BIN`.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use serde_json::{Value, json};

/// A running server; killed and its data directory removed on drop.
pub struct Server {
    child: Child,
    dir: PathBuf,
    base: String,
    agent: ureq::Agent,
}

fn binary() -> Result<PathBuf> {
    if let Some(bin) = std::env::var_os("EDDY_BIN") {
        return Ok(PathBuf::from(bin));
    }
    let exe = std::env::current_exe()?;
    let bin = exe.with_file_name("eddy");
    if !bin.exists() {
        bail!(
            "{} not found: build it (`cargo build --release -p eddy`) or set EDDY_BIN",
            bin.display()
        );
    }
    Ok(bin)
}

impl Server {
    /// Starts a server and waits until `/health` answers.
    ///
    /// # Errors
    /// When the binary is missing, exits early or does not become healthy within a minute.
    pub fn start(name: &str) -> Result<Server> {
        let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let dir = std::env::temp_dir().join(format!("eddy-bench-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir)?;
        let stderr = std::fs::File::create(dir.join("stderr"))?;
        let child = Command::new(binary()?)
            .arg("serve")
            .arg("--http-addr")
            .arg(format!("127.0.0.1:{port}"))
            .arg("--db-path")
            .arg(dir.join("db"))
            .arg("--log-level")
            .arg("warn")
            .env_remove("RUST_LOG")
            .env_remove("MEILI_MASTER_KEY")
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .context("start eddy")?;
        let mut server = Server {
            child,
            dir,
            base: format!("http://127.0.0.1:{port}"),
            agent: ureq::Agent::config_builder()
                .http_status_as_error(false)
                .timeout_global(Some(Duration::from_secs(300)))
                .build()
                .into(),
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Ok(r) = server.agent.get(format!("{}/health", server.base)).call()
                && r.status() == 200
            {
                return Ok(server);
            }
            if let Some(status) = server.child.try_wait()? {
                bail!("eddy exited early with {status}: {}", server.stderr());
            }
            if Instant::now() > deadline {
                bail!("eddy did not become healthy: {}", server.stderr());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn stderr(&self) -> String {
        std::fs::read_to_string(self.dir.join("stderr")).unwrap_or_default()
    }

    /// Sends a request with a body and returns the status and the JSON answer.
    fn send(&self, method: &str, path: &str, content_type: &str, body: &[u8]) -> Result<Value> {
        let url = format!("{}{path}", self.base);
        let request = match method {
            "POST" => self.agent.post(&url),
            "PATCH" => self.agent.patch(&url),
            "PUT" => self.agent.put(&url),
            other => bail!("unsupported method {other}"),
        };
        let mut response = request
            .header("Content-Type", content_type)
            .send(body)
            .with_context(|| format!("{method} {path}"))?;
        let status = response.status().as_u16();
        let text = response.body_mut().read_to_string()?;
        if !(200..300).contains(&status) {
            bail!("{method} {path}: {status} {text}");
        }
        Ok(serde_json::from_str(&text)?)
    }

    fn get(&self, path: &str) -> Result<Value> {
        let mut response = self.agent.get(format!("{}{path}", self.base)).call()?;
        let status = response.status().as_u16();
        let text = response.body_mut().read_to_string()?;
        if status != 200 {
            bail!("GET {path}: {status} {text}");
        }
        Ok(serde_json::from_str(&text)?)
    }

    /// Waits for the task a write returned.
    fn wait(&self, task: &Value) -> Result<()> {
        let uid = task["taskUid"]
            .as_u64()
            .with_context(|| format!("no taskUid in {task}"))?;
        let deadline = Instant::now() + Duration::from_secs(600);
        loop {
            let t = self.get(&format!("/tasks/{uid}"))?;
            match t["status"].as_str() {
                Some("succeeded") => return Ok(()),
                Some("failed" | "canceled") => bail!("task {uid} failed: {t}"),
                _ if Instant::now() > deadline => bail!("task {uid} did not finish: {t}"),
                _ => std::thread::sleep(Duration::from_millis(10)),
            }
        }
    }

    /// Updates an index's settings and waits for the task.
    ///
    /// # Errors
    /// HTTP errors and failed tasks.
    pub fn update_settings(&self, index: &str, settings: &Value) -> Result<()> {
        let task = self.send(
            "PATCH",
            &format!("/indexes/{index}/settings"),
            "application/json",
            settings.to_string().as_bytes(),
        )?;
        self.wait(&task)
    }

    /// Adds NDJSON documents in batches of `batch` lines and waits for every task.
    ///
    /// # Errors
    /// HTTP errors and failed tasks.
    pub fn add_ndjson(
        &self,
        index: &str,
        primary_key: &str,
        lines: &[String],
        batch: usize,
    ) -> Result<()> {
        for chunk in lines.chunks(batch.max(1)) {
            let task = self.send(
                "POST",
                &format!("/indexes/{index}/documents?primaryKey={primary_key}"),
                "application/x-ndjson",
                chunk.join("\n").as_bytes(),
            )?;
            self.wait(&task)?;
        }
        Ok(())
    }

    /// Searches `q` and returns the primary keys of the first `limit` hits, best first.
    ///
    /// # Errors
    /// HTTP errors.
    pub fn search_ids(
        &self,
        index: &str,
        primary_key: &str,
        q: &str,
        limit: usize,
    ) -> Result<Vec<String>> {
        let body = json!({"q": q, "limit": limit, "attributesToRetrieve": [primary_key]});
        let answer = self.send(
            "POST",
            &format!("/indexes/{index}/search"),
            "application/json",
            body.to_string().as_bytes(),
        )?;
        let hits = answer["hits"]
            .as_array()
            .with_context(|| format!("no hits in {answer}"))?;
        Ok(hits
            .iter()
            .map(|h| match &h[primary_key] {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            })
            .collect())
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
