//! `objstore`: the crate's client on the command line, for tests and for operators checking a
//! store by hand. Everything about the store comes from the environment, never from argv:
//! `S3_ENDPOINT`, `S3_BUCKET`, `S3_REGION`, `S3_URI_STYLE` (`path` or `host`), `S3_CA_FILE`
//! (PEM), `S3_ACCESS_KEY`, `S3_SECRET_KEY`.
//!
//! ```text
//! objstore check | put KEY FILE [NAME=VALUE…] | get KEY FILE | list [PREFIX] | head KEY | delete KEY
//! ```
//! Exits 1 with the error on stderr; 2 for a usage error.

use objstore::{Config, Error, Store, UrlStyle};
use std::path::Path;

fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_default()
}

fn config() -> Result<Config, Error> {
    let ca_file = env("S3_CA_FILE");
    let ca_chain = if ca_file.is_empty() {
        vec![]
    } else {
        vec![std::fs::read_to_string(&ca_file).map_err(|e| Error::Io {
            path: ca_file.clone(),
            source: e,
        })?]
    };
    Ok(Config {
        endpoint: env("S3_ENDPOINT"),
        bucket: env("S3_BUCKET"),
        region: env("S3_REGION"),
        url_style: UrlStyle::from_interface(&env("S3_URI_STYLE"))?,
        access_key: env("S3_ACCESS_KEY"),
        secret_key: env("S3_SECRET_KEY"),
        ca_chain,
    })
}

async fn run(args: &[String]) -> Result<(), Error> {
    let store = Store::new(&config()?)?;
    let arg = |i: usize| args.get(i).map(String::as_str).unwrap_or("");
    match arg(0) {
        "check" => store.check().await?,
        "put" => {
            // Metadata as NAME=VALUE after the file (tests write foreign or damaged backups).
            let meta: Vec<(&str, &str)> =
                args[3..].iter().filter_map(|a| a.split_once('=')).collect();
            let t = store.put_file(arg(1), Path::new(arg(2)), &meta).await?;
            println!("{} {} {}", t.size, t.sha256, t.parts);
        }
        "get" => {
            let t = store.get_file(arg(1), Path::new(arg(2))).await?;
            println!("{} {}", t.size, t.sha256);
        }
        "list" => {
            for o in store.list(arg(1)).await? {
                println!("{} {}", o.key, o.size);
            }
        }
        "head" => match store.head(arg(1)).await? {
            Some(h) => println!("{} {:?}", h.size, h.metadata),
            None => println!("absent"),
        },
        "delete" => store.delete(arg(1)).await?,
        _ => unreachable!("checked in main"),
    }
    Ok(())
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let want = match args.first().map(String::as_str) {
        Some("check") => 1,
        Some("list") => args.len().clamp(1, 2),
        Some("put") => args.len().max(3),
        Some("get") => 3,
        Some("head" | "delete") => 2,
        _ => 0,
    };
    if want == 0 || args.len() != want {
        eprintln!("usage: objstore check | put KEY FILE [NAME=VALUE…] | get KEY FILE | list [PREFIX] | head KEY | delete KEY");
        std::process::exit(2);
    }
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    if let Err(e) = rt.block_on(run(&args)) {
        eprintln!("objstore: {e}");
        std::process::exit(1);
    }
}
