//! `sandbox`: the command line, and — when invoked under a hook tool's name inside a machine —
//! that hook tool.

use clap::Parser;

fn main() {
    let argv0 = std::env::args().next().unwrap_or_default();
    let name = std::path::Path::new(&argv0)
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("")
        .to_string();
    if sandbox::tools::TOOL_NAMES.contains(&name.as_str()) {
        std::process::exit(sandbox::tools::client::main_as_tool(&name));
    }
    if sandbox::tools::juju_exec::is_runner(&name) {
        std::process::exit(sandbox::tools::juju_exec::main(&name));
    }
    let cli = sandbox::cli::Cli::parse();
    match sandbox::cli::run(cli) {
        Ok(code) => std::process::exit(code),
        Err(e) => {
            eprintln!("ERROR {e:#}");
            std::process::exit(1);
        }
    }
}
