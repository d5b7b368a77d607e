/*!
A Juju machine charm for etcd, as one small binary.

# Layout

- [`juju`]: the Juju boundary: the [`juju::Juju`] trait; [`juju::hooktools`] is the only place
  that runs Juju's hook tools; [`juju::context`] is the `JUJU_*` environment.
- [`etcd`]: the etcd boundary: the [`etcd::Etcd`] trait; [`etcd::client`] the real v3 client.
- [`machine`]: the machine boundary: files, systemd, installing etcd, TLS files, local state.
- [`core`]: the pure core: observed facts → a plan of effects, rendering, config, statuses.
- [`reconcile`]: observe → plan → apply, the path of every hook.
- [`actions`]: the actions (health, snapshot, restore, ...); [`clock`]: time, as waits see it.
- [`trace`]: a hook's time per phase, to `juju-log` at DEBUG when asked for.

**Architecture invariants:** `core` does no IO and cannot fail; only `juju::hooktools` spawns
Juju tools; only the Juju leader changes Raft membership, except a departing unit removing
itself.
*/

pub mod actions;
pub mod clock;
pub mod core;
pub mod etcd;
pub mod juju;
pub mod machine;
pub mod paths;
pub mod reconcile;
pub mod trace;

#[cfg(test)]
pub(crate) mod fakes;

#[cfg(test)]
mod architecture {
    //! Invariants of the layout, checked on the source.

    /// What the pure core may not name: the effectful modules, and std's IO, processes, threads,
    /// environment and clock.
    const EFFECTFUL: &[&str] = &[
        "crate::actions",
        "crate::etcd::client",
        "crate::juju::hooktools",
        "crate::machine",
        "crate::reconcile",
        "etcd_client",
        "std::env",
        "std::fs",
        "std::io",
        "std::net::TcpStream",
        "std::process",
        "std::thread",
        "std::time::Instant",
        "std::time::SystemTime",
        "tokio",
    ];

    fn sources(dir: &str) -> Vec<(String, String)> {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(dir);
        let mut files: Vec<(String, String)> = std::fs::read_dir(&root)
            .unwrap()
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "rs"))
            .map(|p| {
                (
                    p.display().to_string(),
                    std::fs::read_to_string(&p).unwrap(),
                )
            })
            .collect();
        files.sort();
        files
    }

    /// The code of a source file: its module doc block and its comments blanked (they may name
    /// what they please), lines kept.
    fn code(text: &str) -> String {
        let doc_lines = match text.starts_with("/*!") {
            true => text.find("*/").map_or(0, |i| text[..i].lines().count()),
            false => 0,
        };
        let lines = text
            .lines()
            .enumerate()
            .map(|(n, line)| match n < doc_lines {
                true => "",
                false => line.split("//").next().unwrap_or(""),
            });
        lines.collect::<Vec<_>>().join("\n")
    }

    #[test]
    fn the_core_names_no_effectful_module() {
        let files = sources("src/core");
        assert!(files.len() >= 8, "{files:?}");
        for (path, text) in files {
            for (n, line) in code(&text).lines().enumerate() {
                let code = line;
                for bad in EFFECTFUL {
                    assert!(!code.contains(bad), "{path}:{}: {bad} in {line:?}", n + 1);
                }
            }
        }
    }

    #[test]
    fn the_core_modules_import_each_other_without_a_cycle() {
        let files = sources("src/core");
        let name = |path: &str| {
            let file = path.rsplit('/').next().unwrap_or("");
            file.trim_end_matches(".rs").to_string()
        };
        let modules: Vec<String> = files.iter().map(|(p, _)| name(p)).collect();
        // Module → the core modules it names (`crate::core::x`).
        let deps: Vec<Vec<usize>> = files
            .iter()
            .map(|(path, text)| {
                let own = name(path);
                let code = code(text);
                let named = |m: &&String| **m != own && code.contains(&format!("crate::core::{m}"));
                let indices = modules.iter().enumerate().filter(|(_, m)| named(m));
                indices.map(|(i, _)| i).collect()
            })
            .collect();
        // Depth-first search; a module met again on the current path closes a cycle.
        fn visit(i: usize, deps: &[Vec<usize>], path: &mut Vec<usize>, done: &mut Vec<bool>) {
            if done[i] {
                return;
            }
            assert!(!path.contains(&i), "import cycle through {path:?} → {i}");
            path.push(i);
            for &d in &deps[i] {
                visit(d, deps, path, done);
            }
            path.pop();
            done[i] = true;
        }
        let mut done = vec![false; modules.len()];
        for i in 0..modules.len() {
            visit(i, &deps, &mut Vec::new(), &mut done);
        }
        assert!(deps.iter().any(|d| !d.is_empty()), "{modules:?}");
    }

    #[test]
    fn only_hooktools_spawns_juju_tools() {
        for dir in [
            "src",
            "src/core",
            "src/etcd",
            "src/machine",
            "src/reconcile",
            "src/actions",
        ] {
            for (path, text) in sources(dir) {
                let names_tools = ["\"status-set\"", "\"relation-set\"", "\"leader-set\""]
                    .iter()
                    .any(|t| text.contains(t));
                assert!(!names_tools, "{path} runs a hook tool");
            }
        }
    }
}
