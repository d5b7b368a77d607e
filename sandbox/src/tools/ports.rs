//! `open-port`, `close-port`, `opened-ports` (juju/juju `jujuc/ports.go`, `opened-ports.go`;
//! parsing and checks from `core/network/portrange.go`).

use super::env::PortRange;
use super::{check_empty, switch, usage, value, Call, Fail, Res, Tool, FORMAT, OLD_FORMAT, OUTPUT};

/// The port tools.
pub(crate) const TOOLS: &[Tool] = &[
    Tool {
        name: "open-port",
        args: PORT_ARGS,
        purpose: "Register a request to open a port or port range.",
        flags: PORT_FLAGS,
        run: open_port,
    },
    Tool {
        name: "close-port",
        args: PORT_ARGS,
        purpose: "Register a request to close a port or port range.",
        flags: PORT_FLAGS,
        run: close_port,
    },
    Tool {
        name: "opened-ports",
        args: "",
        purpose: "List all ports or port ranges opened by the unit.",
        flags: &[
            FORMAT,
            OUTPUT,
            switch(
                &["endpoints"],
                "display the list of target application endpoints for each port range",
            ),
        ],
        run: opened_ports,
    },
];

const PORT_ARGS: &str = "<port>[/<protocol>] or <from>-<to>[/<protocol>] or icmp";
const PORT_FLAGS: &[super::Flag] = &[
    OLD_FORMAT,
    value(
        &["endpoints"],
        "",
        "a comma-delimited list of application endpoints to target with this operation",
    ),
];

/// Go's `strconv.Atoi` with its error text.
fn atoi(s: &str) -> Result<i64, String> {
    let digits = s.strip_prefix(['+', '-']).unwrap_or(s);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!(
            "strconv.Atoi: parsing {}: invalid syntax",
            super::args::go_quote(s)
        ));
    }
    s.parse().map_err(|_| {
        format!(
            "strconv.Atoi: parsing {}: value out of range",
            super::args::go_quote(s)
        )
    })
}

/// Juju's `network.ParsePortRange` of the lower-cased argument, then `Validate`.
pub(crate) fn parse_port_range(arg: &str) -> Result<PortRange, String> {
    let arg = arg.to_lowercase();
    let (ports, protocol) = arg.split_once('/').unwrap_or((&arg, "tcp"));
    let parts: Vec<&str> = ports.split('-').collect();
    let (from, to) = match parts.as_slice() {
        ["icmp"] => (-1, -1),
        [one] => {
            let p = atoi(one)
                .map_err(|e| format!("invalid port {}: {e}", super::args::go_quote(ports)))?;
            (p, p)
        }
        [a, b] => {
            let port = |s: &str| {
                atoi(s).map_err(|e| format!("invalid port {}: {e}", super::args::go_quote(s)))
            };
            (port(a)?, port(b)?)
        }
        _ => {
            return Err(format!(
                "invalid port range {}",
                super::args::go_quote(ports)
            ))
        }
    };
    let protocol = if from == -1 { "icmp" } else { protocol };
    match protocol {
        "icmp" if from == -1 && to == -1 => {
            return Ok(PortRange {
                from: 0,
                to: 0,
                protocol: "icmp".into(),
            });
        }
        "icmp" => {
            return Err(format!(
                "protocol \"icmp\" doesn't support any ports; got \"{from}\""
            ))
        }
        "tcp" | "udp" => {}
        other => {
            let q = super::args::go_quote(other);
            return Err(format!(
                "invalid protocol {q}, expected \"tcp\", \"udp\", or \"icmp\""
            ));
        }
    }
    if from > to {
        return Err(format!("invalid port range {from}-{to}/{protocol}"));
    }
    if !(0..=65535).contains(&from) || !(0..=65535).contains(&to) {
        return Err(format!(
            "port range bounds must be between 0 and 65535, got {from}-{to}"
        ));
    }
    Ok(PortRange {
        from: from as u16,
        to: to as u16,
        protocol: protocol.into(),
    })
}

/// The checked range and `--endpoints` (absent or empty means all endpoints).
fn port_args(c: &Call) -> Result<(PortRange, Option<Vec<String>>), Fail> {
    let Some((arg, rest)) = c.args().split_first() else {
        return Err(usage("no port or range specified"));
    };
    let range = parse_port_range(arg).map_err(Fail::Usage)?;
    check_empty(rest)?;
    let endpoints = c
        .flags
        .value("endpoints")
        .filter(|e| !e.is_empty())
        .map(|e| e.split(',').map(|s| s.trim().to_string()).collect());
    Ok((range, endpoints))
}

fn open_port(c: &mut Call) -> Res {
    change_port(c, true)
}

fn close_port(c: &mut Call) -> Res {
    change_port(c, false)
}

/// `open-port` (`open`) or `close-port`.
fn change_port(c: &mut Call, open: bool) -> Res {
    let (range, endpoints) = port_args(c)?;
    c.warn_old_format();
    Ok(c.env.change_port(open, range, endpoints)?)
}

/// Committed ranges sorted by protocol then ports; with `--endpoints` each is followed by
/// `(*)` (the environment reports ranges opened for all endpoints).
fn opened_ports(c: &mut Call) -> Res {
    check_empty(c.args())?;
    let mut ranges = c.env.opened_ports()?;
    ranges.sort_by(|a, b| (&a.protocol, a.from, a.to).cmp(&(&b.protocol, b.from, b.to)));
    ranges.dedup();
    let suffix = if c.flags.on("endpoints") { " (*)" } else { "" };
    let lines = ranges.iter().map(|r| format!("{r}{suffix}")).collect();
    c.write(Some(super::format::Out::Strings(lines)))
}
