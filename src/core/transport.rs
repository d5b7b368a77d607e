/*!
The transport the cluster is to run, TLS or plain http: the `tls` option, except across a refresh.

A refresh must never change the transport by itself, yet an option the operator never set takes
the new charm's default, and Juju fires `config-changed` only when the resolved value changes:
the charm cannot tell a default from a value set. So when the leader, in `upgrade-charm`, finds
the option differing from the transport in force (and no switch under way), it records the value
the option reads ([`keys::TLS_KEPT`]) and the cluster keeps its transport while the option reads
that. The next real change of the option clears the record: `tls=false` then acknowledges plain
http, and a later `tls=true` switches through the rolling switch ([`crate::core::plan`]).

[`wanted`] is the transport every plan is made for (the `tls` option, or the transport kept);
[`record`] is the leader's leader-data change; [`shown`] is what the status says.
*/

use crate::core::config::CharmConfig;
use crate::core::effect::Effect;
use crate::core::observed::{keys, Leadership, Observed};
use crate::core::status::Transport;
use crate::juju::Settings;

/// The value the `tls` option reads, when the config is valid.
fn option(o: &Observed) -> Option<bool> {
    o.config.as_ref().ok().map(|c| c.tls)
}

/// The recorded value, if any.
fn recorded(o: &Observed) -> Option<bool> {
    o.leader_data.get(keys::TLS_KEPT).map(|v| v == "true")
}

/// This pass is the leader's `upgrade-charm` and the option differs from the transport in
/// force, with no member moved to the option's scheme yet: the transport is kept.
fn keeps_now(o: &Observed) -> bool {
    let (Some(tls), Some(in_force)) = (option(o), o.tls_in_force()) else {
        return false;
    };
    let scheme = if in_force { "https://" } else { "http://" };
    let members = o.members.as_deref().unwrap_or(&[]);
    let unmoved = members
        .iter()
        .flat_map(|m| &m.peer_urls)
        .all(|u| u.starts_with(scheme));
    o.leadership == Leadership::Leader
        && o.hook.name() == "upgrade-charm"
        && tls != in_force
        && o.leader_data.get(keys::TLS_SWITCHING).is_none()
        && unmoved
}

/// The transport kept against the option, when it is.
fn kept(o: &Observed) -> Option<bool> {
    let in_force = o.tls_in_force()?;
    let tls = option(o)?;
    let keeps = recorded(o) == Some(tls) || keeps_now(o);
    (keeps && in_force != tls).then_some(in_force)
}

/// The transport the cluster is to run: the one kept, else the `tls` option's.
pub fn wanted(o: &Observed) -> Option<bool> {
    kept(o).or_else(|| option(o))
}

/// `cfg` (the valid config of `o`) with `tls` as [`wanted`].
pub fn config(o: &Observed, cfg: &CharmConfig) -> CharmConfig {
    CharmConfig {
        tls: wanted(o).unwrap_or(cfg.tls),
        ..cfg.clone()
    }
}

/// The leader's change to leader data: the record set in the `upgrade-charm` that keeps the
/// transport, cleared once the option reads otherwise.
pub fn record(o: &Observed) -> Option<Effect> {
    if o.leadership != Leadership::Leader {
        return None;
    }
    let tls = option(o)?;
    let mut set = Settings::new();
    if keeps_now(o) && recorded(o) != Some(tls) {
        set.insert(keys::TLS_KEPT.to_string(), tls.to_string());
    }
    if recorded(o).is_some_and(|r| r != tls) {
        set.insert(keys::TLS_KEPT.to_string(), String::new());
    }
    (!set.is_empty()).then_some(Effect::LeaderSet(set))
}

/// What an `active` status says of the transport.
pub fn shown(o: &Observed) -> Transport {
    match (kept(o), option(o)) {
        (Some(_), Some(option)) => Transport::Kept { option },
        (None, Some(false)) => Transport::Plain,
        _ => Transport::Tls,
    }
}
