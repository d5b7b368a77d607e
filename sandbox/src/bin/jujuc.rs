//! The hook tools and `juju-exec` as the sandbox installs them in a machine (Juju's `jujuc`):
//! the tool client alone, without the command line, so each call of a hook starts fast.

fn main() {
    let argv0 = std::env::args().next().unwrap_or_default();
    let name = std::path::Path::new(&argv0)
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("");
    let code = if sandbox::tools::juju_exec::is_runner(name) {
        sandbox::tools::juju_exec::main(name)
    } else if sandbox::tools::TOOL_NAMES.contains(&name) {
        sandbox::tools::client::main_as_tool(name)
    } else {
        eprintln!(
            "ERROR jujuc runs as a hook tool (one of its links, e.g. is-leader), not as {name:?}"
        );
        2
    };
    std::process::exit(code);
}
