//! The command line's side of the controller socket.

use crate::api::{Request, Response, Wire};
use anyhow::{bail, Context};
use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};

/// The sandbox home: `$SANDBOX_HOME`, else `/var/lib/etcd-sandbox`.
pub fn home() -> PathBuf {
    std::env::var_os("SANDBOX_HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/var/lib/etcd-sandbox"))
}

/// Sends one request; a controller-side error becomes an `Err` with its message.
pub fn call(home: &Path, req: Request) -> anyhow::Result<serde_json::Value> {
    let resp = call_raw(home, req)?;
    match resp.error {
        Some(e) => bail!("{e}"),
        None => Ok(resp.data),
    }
}

/// Sends one request and returns the controller's answer as is.
pub fn call_raw(home: &Path, req: Request) -> anyhow::Result<Response> {
    let sock = crate::controller::socket_path(home);
    let mut conn = UnixStream::connect(&sock).with_context(|| {
        format!(
            "no sandbox controller is running at {}: run `sandbox bootstrap` first",
            home.display()
        )
    })?;
    let mut line = serde_json::to_string(&Wire::Cli(req))?;
    line.push('\n');
    conn.write_all(line.as_bytes())?;
    let mut reply = String::new();
    BufReader::new(conn).read_line(&mut reply)?;
    if reply.is_empty() {
        bail!(
            "the sandbox controller closed the connection: see {}",
            home.join("logs/controller.log").display()
        );
    }
    Ok(serde_json::from_str(&reply)?)
}
