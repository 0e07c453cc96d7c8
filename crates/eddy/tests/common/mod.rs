//! Starts the real `eddy` binary on a free loopback port and talks to it over HTTP.

#![allow(dead_code, missing_docs, clippy::unwrap_used)]

use std::io::Read;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

/// A running server.
pub struct Server {
    pub child: Option<Child>,
    pub port: u16,
    pub db: PathBuf,
    pub base: String,
    pub agent: ureq::Agent,
    stderr_path: PathBuf,
    extra: Vec<String>,
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

pub fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(60)))
        .build()
        .into()
}

/// Shared data sets, relative to the repository root.
pub fn data(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/data")
        .join(rel)
}

impl Server {
    /// Starts a server on a new temporary data directory.
    pub fn start(extra: &[&str]) -> (Server, tempfile::TempDir) {
        let dir = tempfile::tempdir().expect("tempdir");
        let server = Server::start_on(&dir.path().join("db"), extra);
        (server, dir)
    }

    /// Starts a server on `db`.
    pub fn start_on(db: &Path, extra: &[&str]) -> Server {
        let port = free_port();
        let stderr_path = db.with_extension(format!("stderr-{port}"));
        let mut server = Server {
            child: None,
            port,
            db: db.to_path_buf(),
            base: format!("http://127.0.0.1:{port}"),
            agent: agent(),
            stderr_path,
            extra: extra.iter().map(|s| s.to_string()).collect(),
        };
        server.spawn();
        server
    }

    fn spawn(&mut self) {
        let stderr = std::fs::File::create(&self.stderr_path).expect("stderr file");
        let child = Command::new(env!("CARGO_BIN_EXE_eddy"))
            .arg("serve")
            .arg("--http-addr")
            .arg(format!("127.0.0.1:{}", self.port))
            .arg("--db-path")
            .arg(&self.db)
            .args(&self.extra)
            .env_remove("MEILI_MASTER_KEY")
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .expect("eddy starts");
        self.child = Some(child);
        self.wait_healthy();
    }

    fn wait_healthy(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Ok(r) = self.agent.get(format!("{}/health", self.base)).call()
                && r.status() == 200
            {
                return;
            }
            if let Some(status) = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                panic!("eddy exited early with {status}: {}", self.stderr());
            }
            assert!(
                Instant::now() < deadline,
                "eddy did not become healthy: {}",
                self.stderr()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn stderr(&self) -> String {
        std::fs::read_to_string(&self.stderr_path).unwrap_or_default()
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("running").id()
    }

    /// SIGKILL, then wait.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// SIGTERM, then wait for the exit status.
    pub fn terminate(&mut self) -> ExitStatus {
        let mut c = self.child.take().expect("running");
        let ok = Command::new("kill")
            .arg("-TERM")
            .arg(c.id().to_string())
            .status()
            .expect("kill runs");
        assert!(ok.success());
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(status) = c.try_wait().expect("wait") {
                return status;
            }
            assert!(Instant::now() < deadline, "eddy did not exit after SIGTERM");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Waits for the exit status of a server already told to stop.
    pub fn terminate_wait(&mut self) -> ExitStatus {
        let mut c = self.child.take().expect("running");
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(status) = c.try_wait().expect("wait") {
                return status;
            }
            assert!(Instant::now() < deadline, "eddy did not exit");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Starts again on the same directory (a new port).
    pub fn restart(&mut self) {
        self.kill();
        self.port = free_port();
        self.base = format!("http://127.0.0.1:{}", self.port);
        self.stderr_path = self.db.with_extension(format!("stderr-{}", self.port));
        self.spawn();
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    pub fn get(&self, path: &str) -> Resp {
        Resp::from(self.agent.get(self.url(path)).call())
    }

    pub fn delete(&self, path: &str) -> Resp {
        Resp::from(self.agent.delete(self.url(path)).call())
    }

    pub fn post_json(&self, path: &str, body: &Value) -> Resp {
        self.send(
            "POST",
            path,
            "application/json",
            body.to_string().as_bytes(),
        )
    }

    pub fn send(&self, method: &str, path: &str, content_type: &str, body: &[u8]) -> Resp {
        self.send_with(method, path, &[("Content-Type", content_type)], body)
    }

    pub fn send_with(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Resp {
        let url = self.url(path);
        let mut req = match method {
            "POST" => self.agent.post(&url),
            "PUT" => self.agent.put(&url),
            "PATCH" => self.agent.patch(&url),
            other => panic!("method {other}"),
        };
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        Resp::from(req.send(body))
    }
}

impl Server {
    /// Any method, any headers, an optional body.
    pub fn request(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<&[u8]>,
    ) -> Resp {
        let url = self.url(path);
        match body {
            Some(body) => {
                let mut req = match method {
                    "POST" => self.agent.post(&url),
                    "PUT" => self.agent.put(&url),
                    "PATCH" => self.agent.patch(&url),
                    "DELETE" => self.agent.delete(&url).force_send_body(),
                    other => panic!("method {other} with a body"),
                };
                for (k, v) in headers {
                    req = req.header(*k, *v);
                }
                Resp::from(req.send(body))
            }
            None => {
                let mut req = match method {
                    "GET" => self.agent.get(&url),
                    "DELETE" => self.agent.delete(&url),
                    other => panic!("method {other} without a body"),
                };
                for (k, v) in headers {
                    req = req.header(*k, *v);
                }
                Resp::from(req.call())
            }
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A response: status, headers we check, body parsed as JSON (Null when empty).
#[derive(Debug)]
pub struct Resp {
    pub status: u16,
    pub retry_after: Option<String>,
    pub body: Value,
    pub text: String,
}

impl From<Result<ureq::http::Response<ureq::Body>, ureq::Error>> for Resp {
    fn from(r: Result<ureq::http::Response<ureq::Body>, ureq::Error>) -> Resp {
        let mut r = r.expect("request completes");
        let status = r.status().as_u16();
        let retry_after = r
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let mut text = String::new();
        r.body_mut()
            .with_config()
            .limit(1 << 30)
            .reader()
            .read_to_string(&mut text)
            .expect("body");
        let body = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or(Value::Null)
        };
        Resp {
            status,
            retry_after,
            body,
            text,
        }
    }
}

impl Resp {
    /// Asserts a Meilisearch error object with this status and code.
    pub fn assert_error(&self, status: u16, code: &str) -> &Resp {
        assert_eq!(self.status, status, "{}", self.text);
        assert_eq!(self.body["code"], code, "{}", self.text);
        assert!(
            self.body["message"].as_str().is_some_and(|m| !m.is_empty()),
            "{}",
            self.text
        );
        assert!(self.body["type"].is_string(), "{}", self.text);
        assert_eq!(
            self.body["link"],
            format!("https://docs.meilisearch.com/errors#{code}"),
            "{}",
            self.text
        );
        self
    }

    /// Asserts a 202 with a summarized task and returns its uid.
    pub fn task_uid(&self) -> u64 {
        assert_eq!(self.status, 202, "{}", self.text);
        for k in ["taskUid", "indexUid", "status", "type", "enqueuedAt"] {
            assert!(
                self.body.get(k).is_some(),
                "summary lacks {k}: {}",
                self.text
            );
        }
        self.body["taskUid"].as_u64().expect("taskUid")
    }
}
