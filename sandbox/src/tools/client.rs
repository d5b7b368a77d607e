//! The hook-tool client: one binary installed under every tool name, run by charms inside a
//! machine. It sends the call to the controller over the unit's socket and prints the answer.
//!
//! Wire: one line of JSON `{"tool": ToolRequest}` (see [`crate::api::Wire`]), answered by one
//! line of JSON [`ToolResponse`]. Files named by `--file` (relation-set, state-set) are read
//! here, where the charm's working directory and standard input are.

use super::{ToolRequest, ToolResponse};
use crate::api::Wire;
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::net::UnixStream;

/// Tools whose `--file` the client reads.
const FILE_TOOLS: &[&str] = &["relation-set", "state-set", "secret-add", "secret-set"];
/// Tools whose `key#file=path` arguments the client reads.
const KEY_FILE_TOOLS: &[&str] = &["secret-add", "secret-set"];

/// Runs hook tool `tool` with this process's arguments; answers the exit code.
pub fn main_as_tool(tool: &str) -> i32 {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match call(tool, args, &|name| std::env::var(name).ok()) {
        Ok(resp) => finish(resp),
        Err(msg) => {
            eprintln!("ERROR {msg}");
            1
        }
    }
}

/// The values of `--file X` / `--file=X` before a `--`, and with `key_files` the paths of
/// `key#file=path` arguments.
fn file_args(args: &[String], key_files: bool) -> Vec<String> {
    let mut paths = vec![];
    let mut it = args.iter().take_while(|a| *a != "--");
    while let Some(a) = it.next() {
        if a == "--file" {
            paths.extend(it.next().cloned());
        } else if let Some(p) = a.strip_prefix("--file=") {
            paths.push(p.to_string());
        } else if let Some((_, p)) = a
            .split_once("#file=")
            .filter(|(k, _)| key_files && !k.contains('='))
        {
            paths.push(p.to_string());
        }
    }
    paths
}

/// Reads the files a call names; unreadable ones are left out for the tool to report.
fn read_files(tool: &str, args: &[String]) -> BTreeMap<String, Vec<u8>> {
    let mut files = BTreeMap::new();
    if !FILE_TOOLS.contains(&tool) {
        return files;
    }
    for path in file_args(args, KEY_FILE_TOOLS.contains(&tool)) {
        if files.contains_key(&path) {
            continue;
        }
        let mut data = vec![];
        let read = if path == "-" {
            std::io::stdin().read_to_end(&mut data).map(|_| ())
        } else {
            std::fs::File::open(&path)
                .and_then(|mut f| f.read_to_end(&mut data))
                .map(|_| ())
        };
        if read.is_ok() {
            files.insert(path, data);
        }
    }
    files
}

/// Looks up an environment variable.
type Vars<'a> = &'a dyn Fn(&str) -> Option<String>;

fn env_var(vars: Vars, name: &str, tool: &str) -> Result<String, String> {
    vars(name).filter(|v| !v.is_empty()).ok_or_else(|| {
        format!("{name} not set: {tool} must be run from inside a Juju hook or action")
    })
}

fn connect(address: &str) -> std::io::Result<UnixStream> {
    if let Some(name) = address.strip_prefix('@') {
        use std::os::linux::net::SocketAddrExt;
        let addr = std::os::unix::net::SocketAddr::from_abstract_name(name)?;
        return UnixStream::connect_addr(&addr);
    }
    UnixStream::connect(address)
}

/// Sends the call and reads the answer.
fn call(tool: &str, args: Vec<String>, vars: Vars) -> Result<ToolResponse, String> {
    let context_id = env_var(vars, "JUJU_CONTEXT_ID", tool)?;
    let address = env_var(vars, "JUJU_AGENT_SOCKET_ADDRESS", tool)?;
    let network = vars("JUJU_AGENT_SOCKET_NETWORK").unwrap_or_else(|| "unix".into());
    if network != "unix" {
        return Err(format!(
            "unsupported JUJU_AGENT_SOCKET_NETWORK {network:?}: only \"unix\" is"
        ));
    }
    let files = read_files(tool, &args);
    let req = ToolRequest {
        context_id,
        tool: tool.to_string(),
        args,
        files,
    };
    let conn =
        connect(&address).map_err(|e| format!("cannot reach the unit agent at {address}: {e}"))?;
    round_trip(conn, &Wire::Tool(req), tool)
}

/// Sends one request line over `conn` and reads the one-line answer; `what` names the request
/// in errors.
pub(crate) fn round_trip(
    mut conn: UnixStream,
    wire: &Wire,
    what: &str,
) -> Result<ToolResponse, String> {
    let mut line = serde_json::to_string(wire).map_err(|e| e.to_string())?;
    line.push('\n');
    conn.write_all(line.as_bytes())
        .map_err(|e| format!("cannot send {what} to the unit agent: {e}"))?;
    let mut reply = String::new();
    BufReader::new(conn)
        .read_line(&mut reply)
        .map_err(|e| format!("cannot read the unit agent's answer: {e}"))?;
    serde_json::from_str(&reply)
        .map_err(|e| format!("bad answer from the unit agent: {e}: {reply:?}"))
}

/// Prints (or, for `-o`, writes) the answer; returns its code.
fn finish(resp: ToolResponse) -> i32 {
    if let Some(path) = &resp.output_file {
        if let Err(e) = std::fs::write(path, resp.stdout.as_bytes()) {
            eprintln!("ERROR open {path}: {e}");
            return 1;
        }
    } else {
        let mut out = std::io::stdout();
        let _ = out
            .write_all(resp.stdout.as_bytes())
            .and_then(|()| out.flush());
    }
    let mut err = std::io::stderr();
    let _ = err
        .write_all(resp.stderr.as_bytes())
        .and_then(|()| err.flush());
    resp.code
}

#[cfg(test)]
mod tests {
    use super::{call, file_args, ToolResponse};
    use crate::api::Wire;
    use std::io::{BufRead, BufReader, Write};
    use std::os::unix::net::UnixListener;

    fn strings(items: &[&str]) -> Vec<String> {
        items.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn finds_file_flags_before_double_dash() {
        let args = strings(&["--file", "a.yaml", "x=1", "--file=-", "--", "--file", "no"]);
        assert_eq!(file_args(&args, false), strings(&["a.yaml", "-"]));
        let args = strings(&["ca#file=/tmp/ca.pem", "--file", "-", "key=v#file=x"]);
        assert_eq!(file_args(&args, true), strings(&["/tmp/ca.pem", "-"]));
    }

    #[test]
    fn sends_one_line_and_reads_one_answer() {
        let dir = std::env::temp_dir().join(format!("tools-client-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let (sock, file) = (dir.join("agent.sock"), dir.join("settings.yaml"));
        std::fs::write(&file, "a: b\n").expect("file");
        let _ = std::fs::remove_file(&sock);
        let listener = UnixListener::bind(&sock).expect("bind");
        let server = std::thread::spawn(move || {
            let (mut conn, _) = listener.accept().expect("accept");
            let mut line = String::new();
            BufReader::new(&conn).read_line(&mut line).expect("read");
            let Ok(Wire::Tool(req)) = serde_json::from_str::<Wire>(&line) else {
                panic!("{line}")
            };
            let answer = ToolResponse {
                code: 0,
                stdout: format!("{}:{:?}", req.context_id, req.files),
                ..Default::default()
            };
            let reply = serde_json::to_string(&answer).expect("json") + "\n";
            conn.write_all(reply.as_bytes()).expect("write");
        });
        let path = file.to_string_lossy().into_owned();
        let vars = |name: &str| match name {
            "JUJU_CONTEXT_ID" => Some("ctx-1".to_string()),
            "JUJU_AGENT_SOCKET_ADDRESS" => Some(sock.to_string_lossy().into_owned()),
            _ => None,
        };
        let resp = call("relation-set", strings(&["--file", &path, "c=d"]), &vars).expect("call");
        server.join().expect("server");
        assert_eq!(
            resp.stdout,
            format!("ctx-1:{{{path:?}: [97, 58, 32, 98, 10]}}")
        );
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn refuses_to_run_outside_a_hook() {
        let err = call("is-leader", vec![], &|_| None).expect_err("no context");
        assert_eq!(
            err,
            "JUJU_CONTEXT_ID not set: is-leader must be run from inside a Juju hook or action"
        );
    }
}
