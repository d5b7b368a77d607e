//! `unit-get` and `network-get` (juju/juju `jujuc/unit-get.go`, `network-get.go`; the output
//! shape is `params.NetworkInfoResult` in `rpc/params/network.go`).
//!
//! Note Juju's field names differ between JSON and YAML: an address is `value` in JSON but
//! `address` in YAML, and an interface's `mac-address`/`interface-name` are `macaddress`/
//! `interfacename` in YAML.

use super::args::go_quote;
use super::env::NetworkInfo;
use super::format::{Field, Out};
use super::{check_empty, fail, switch, usage, Call, Res, Tool, FORMAT, OUTPUT, RELATION};

/// The network tools.
pub(crate) const TOOLS: &[Tool] = &[
    Tool {
        name: "unit-get",
        args: "<setting>",
        purpose: "print public-address or private-address",
        flags: &[FORMAT, OUTPUT],
        run: unit_get,
    },
    Tool {
        name: "network-get",
        args: "<binding-name> [--ingress-address] [--bind-address] [--egress-subnets]",
        purpose: "get network config",
        flags: &[
            FORMAT,
            OUTPUT,
            switch(
                &["primary-address"],
                "(deprecated) get the primary address for the binding",
            ),
            switch(
                &["bind-address"],
                "get the address for the binding on which the unit should listen",
            ),
            switch(
                &["ingress-address"],
                "get the ingress address for the binding",
            ),
            switch(
                &["egress-subnets"],
                "get the egress subnets for the binding",
            ),
            RELATION,
        ],
        run: network_get,
    },
];

fn unit_get(c: &mut Call) -> Res {
    let Some((which, rest)) = c.args().split_first() else {
        return Err(usage("no setting specified"));
    };
    if which != "private-address" && which != "public-address" {
        return Err(usage(format!("unknown setting {}", go_quote(which))));
    }
    check_empty(rest)?;
    let which = which.clone();
    let address = c.env.unit_address(&which)?;
    c.write(Some(Out::Str(address)))
}

fn field(json: &'static str, yaml: &'static str, value: Out) -> Field {
    Field { json, yaml, value }
}

/// What Juju reports for a machine's one address: the interface with its address (hostname is
/// only set when the address was a resolved host name), the address as ingress address, and
/// the address as a /32 egress subnet.
fn network_info(n: &NetworkInfo) -> Out {
    let address = Out::Struct(vec![
        field("hostname", "hostname", Out::Str(String::new())),
        field("value", "address", Out::Str(n.address.clone())),
        field("cidr", "cidr", Out::Str(n.cidr.clone())),
    ]);
    let interface = Out::Struct(vec![
        field("mac-address", "macaddress", Out::Str(n.mac.clone())),
        field(
            "interface-name",
            "interfacename",
            Out::Str(n.interface.clone()),
        ),
        field("addresses", "addresses", Out::List(vec![address])),
    ]);
    Out::Struct(vec![
        field(
            "bind-addresses",
            "bind-addresses",
            Out::List(vec![interface]),
        ),
        field(
            "egress-subnets",
            "egress-subnets",
            Out::Strings(vec![egress_subnet(&n.address)]),
        ),
        field(
            "ingress-addresses",
            "ingress-addresses",
            Out::Strings(vec![n.address.clone()]),
        ),
    ])
}

/// The single-host subnet of an address: `10.0.0.5/32`, `fd00::5/128`.
fn egress_subnet(address: &str) -> String {
    let bits = if address.contains(':') { 128 } else { 32 };
    format!("{address}/{bits}")
}

fn network_get(c: &mut Call) -> Res {
    let Some((binding, rest)) = c.args().split_first() else {
        return Err(usage("no arguments specified"));
    };
    if binding.is_empty() {
        return Err(usage("no binding name specified"));
    }
    let keys: Vec<&str> = ["bind-address", "ingress-address", "egress-subnets"]
        .into_iter()
        .filter(|k| c.flags.on(k))
        .collect();
    check_empty(rest)?;
    let binding = binding.clone();
    let info = c.env.network_get(&binding)?;
    if c.flags.on("primary-address") {
        if !keys.is_empty() {
            return Err(fail("--primary-address must be the only flag specified"));
        }
        return c.write(Some(Out::Str(info.address)));
    }
    let value = |key: &str| match key {
        "egress-subnets" => Out::Strings(vec![egress_subnet(&info.address)]),
        _ => Out::Str(info.address.clone()),
    };
    let out = match keys.as_slice() {
        [] => network_info(&info),
        [key] => value(key),
        _ => Out::Map(keys.iter().map(|k| (k.to_string(), value(k))).collect()),
    };
    c.write(Some(out))
}
