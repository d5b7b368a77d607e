//! Network, port, state, log and resource tools.

use super::{check, fails, prints, run_ok, run_with, settings, FakeEnv};
use crate::tools::env::PortRange;

#[test]
fn unit_get_and_network_get() {
    let yaml = "bind-addresses:\n- macaddress: 00:16:3e:aa:bb:cc\n  interfacename: eth0\n  addresses:\n  \
                - hostname: \"\"\n    address: 10.40.3.11\n    cidr: 10.40.3.0/24\negress-subnets:\n- 10.40.3.11/32\n\
                ingress-addresses:\n- 10.40.3.11\n";
    let json = "{\"bind-addresses\":[{\"mac-address\":\"00:16:3e:aa:bb:cc\",\"interface-name\":\"eth0\",\
                \"addresses\":[{\"hostname\":\"\",\"value\":\"10.40.3.11\",\"cidr\":\"10.40.3.0/24\"}]}],\
                \"egress-subnets\":[\"10.40.3.11/32\"],\"ingress-addresses\":[\"10.40.3.11\"]}\n";
    check(FakeEnv::new, &[
        prints(&["unit-get", "private-address"], "10.40.3.11\n"),
        prints(&["unit-get", "public-address", "--format=json"], "\"192.0.2.10\"\n"),
        fails(&["unit-get"], 2, "ERROR no setting specified\n"),
        fails(&["unit-get", "address"], 2, "ERROR unknown setting \"address\"\n"),
        (&["network-get", "db"], 0, yaml, ""),
        (&["network-get", "db", "--format=json"], 0, json, ""),
        prints(&["network-get", "db", "--ingress-address"], "10.40.3.11\n"),
        prints(&["network-get", "db", "--bind-address", "--format=json"], "\"10.40.3.11\"\n"),
        prints(&["network-get", "db", "--egress-subnets"], "10.40.3.11/32\n"),
        (&["network-get", "db", "--egress-subnets", "--ingress-address"], 0,
            "egress-subnets:\n- 10.40.3.11/32\ningress-address: 10.40.3.11\n", ""),
        prints(&["network-get", "-r", "7", "cluster", "--primary-address"], "10.40.3.11\n"),
        (&["network-get", "db", "--primary-address", "--bind-address"], 1, "",
            "ERROR --primary-address must be the only flag specified\n"),
        fails(&["network-get"], 2, "ERROR no arguments specified\n"),
        fails(&["network-get", ""], 2, "ERROR no binding name specified\n"),
        fails(&["network-get", "db", "-r", "5"], 2, "ERROR invalid value \"5\" for option -r: relation not found\n"),
        (&["network-get", "nope"], 1, "",
            "ERROR undefined for unit charm: binding name \"nope\" not defined by the unit's charm\n"),
    ]);
}

#[test]
fn open_and_close_port() {
    let mut env = FakeEnv::new();
    for args in [
        &["open-port", "2379"][..],
        &["open-port", "2379/TCP", "--endpoints", "db, cluster"],
        &["open-port", "8000-8080/udp"],
        &["close-port", "icmp"],
        &["open-port", "0/tcp"],
    ] {
        assert_eq!(
            run_with(&mut env, args, &[]),
            (0, String::new(), String::new(), None),
            "{args:?}"
        );
    }
    let eps = Some(vec!["db".to_string(), "cluster".to_string()]);
    let want = vec![
        (true, "2379/tcp".to_string(), None),
        (true, "2379/tcp".into(), eps),
        (true, "8000-8080/udp".into(), None),
        (false, "icmp".into(), None),
        (true, "0/tcp".into(), None),
    ];
    assert_eq!(env.port_ops, want);
    check(
        FakeEnv::new,
        &[
            fails(&["open-port"], 2, "ERROR no port or range specified\n"),
            fails(
                &["open-port", "http"],
                2,
                "ERROR invalid port \"http\": strconv.Atoi: parsing \"http\": invalid syntax\n",
            ),
            fails(
                &["open-port", "80/sctp"],
                2,
                "ERROR invalid protocol \"sctp\", expected \"tcp\", \"udp\", or \"icmp\"\n",
            ),
            fails(
                &["open-port", "80/icmp"],
                2,
                "ERROR protocol \"icmp\" doesn't support any ports; got \"80\"\n",
            ),
            fails(
                &["open-port", "90-80"],
                2,
                "ERROR invalid port range 90-80/tcp\n",
            ),
            fails(
                &["open-port", "1-2-3"],
                2,
                "ERROR invalid port range \"1-2-3\"\n",
            ),
            fails(
                &["open-port", "70000"],
                2,
                "ERROR port range bounds must be between 0 and 65535, got 70000-70000\n",
            ),
            fails(
                &["close-port", "80", "81"],
                2,
                "ERROR unrecognized args: [\"81\"]\n",
            ),
            (
                &["open-port", "--format=json", "80"],
                0,
                "",
                "--format flag deprecated for command \"open-port\"",
            ),
        ],
    );
}

#[test]
fn opened_ports() {
    let opened = || {
        let range = |from, to, protocol: &str| PortRange {
            from,
            to,
            protocol: protocol.into(),
        };
        let ports = vec![
            range(2380, 2380, "tcp"),
            range(0, 0, "icmp"),
            range(2379, 2379, "tcp"),
            range(9, 10, "udp"),
        ];
        FakeEnv {
            ports,
            ..FakeEnv::new()
        }
    };
    check(
        opened,
        &[
            prints(&["opened-ports"], "icmp\n2379/tcp\n2380/tcp\n9-10/udp\n"),
            prints(
                &["opened-ports", "--format=json"],
                "[\"icmp\",\"2379/tcp\",\"2380/tcp\",\"9-10/udp\"]\n",
            ),
            prints(
                &["opened-ports", "--endpoints"],
                "icmp (*)\n2379/tcp (*)\n2380/tcp (*)\n9-10/udp (*)\n",
            ),
        ],
    );
    check(
        FakeEnv::new,
        &[
            prints(&["opened-ports"], ""),
            prints(&["opened-ports", "--format=json"], "[]\n"),
        ],
    );
}

fn with_state() -> FakeEnv {
    FakeEnv {
        state: settings(&[("member-id", "8e9e05c52164694d"), ("n", "1")]),
        ..FakeEnv::new()
    }
}

#[test]
fn state_tools() {
    check(
        with_state,
        &[
            prints(
                &["state-get"],
                "member-id: 8e9e05c52164694d\n\"n\": \"1\"\n",
            ),
            prints(&["state-get", "member-id"], "8e9e05c52164694d\n"),
            prints(&["state-get", "missing"], ""),
            prints(&["state-get", "--format=json", "missing"], "\"\"\n"),
            fails(
                &["state-get", "--strict", "missing"],
                1,
                "ERROR \"missing\" not found\n",
            ),
            fails(
                &["state-set", "novalue"],
                2,
                "ERROR expected \"key=value\", got \"novalue\"\n",
            ),
            fails(
                &["state-delete", "a", "b"],
                2,
                "ERROR unrecognized args: [\"b\"]\n",
            ),
        ],
    );
    let mut env = FakeEnv::new();
    run_ok(
        &mut env,
        &["state-set", "--file", "-", "b=cli"],
        &[("-", "a: 1\nb: file\n")],
    );
    assert_eq!(env.state, settings(&[("a", "1"), ("b", "cli")]));
    run_ok(&mut env, &["state-delete", "a"], &[]);
    run_ok(&mut env, &["state-delete"], &[]);
    assert_eq!(env.state_deleted, vec!["a".to_string()]);
}

#[test]
fn juju_log_resource_get_and_reboot() {
    let mut env = FakeEnv::in_db_hook();
    for args in [
        &["juju-log", "hello", "world"][..],
        &["juju-log", "-l", "warn", "careful"],
        &["juju-log", "--log-level=ERROR", "--", "-x"],
        &["juju-log", "--debug", "details"],
        &["juju-log", "-l", "LOUD", "what"],
    ] {
        run_ok(&mut env, args, &[]);
    }
    let logs: Vec<(&str, &str)> = env
        .logs
        .iter()
        .map(|(l, m)| (l.as_str(), m.as_str()))
        .collect();
    assert_eq!(
        logs,
        vec![
            ("INFO", "db:7: hello world"),
            ("WARNING", "db:7: careful"),
            ("ERROR", "db:7: -x"),
            ("DEBUG", "db:7: details"),
            ("WARNING", "Specified log level of \"LOUD\" is not valid"),
            ("INFO", "db:7: what"),
        ]
    );
    check(
        FakeEnv::new,
        &[
            fails(&["juju-log"], 2, "ERROR no message specified\n"),
            prints(
                &["resource-get", "snapshot"],
                "/var/lib/juju/agents/unit-etcd-0/resources/snapshot/snap.db",
            ),
            fails(
                &["resource-get"],
                2,
                "ERROR missing required resource name\n",
            ),
            fails(
                &["resource-get", "other"],
                1,
                "ERROR could not download resource: resource \"other\" not found\n",
            ),
            fails(
                &["juju-reboot", "--now"],
                1,
                "ERROR juju-reboot is not supported in the sandbox\n",
            ),
        ],
    );
}
