/*!
Where a hook's time goes: `tracing` spans around its phases (the context, each hook tool, the
etcd runtime, each etcd connect and call, observe, plan, apply, the status), summed per phase
and written once, at the end of the hook, as one `juju-log --log-level DEBUG` message with a
line per phase (`juju debug-log --level DEBUG` shows it).

Off unless asked for ([`wanted`]): then no subscriber is installed, every span is a disabled
callsite, and the hook makes no extra tool call. A phase's time is its span's life, from
creation to close, so calls that run at once (the status round) each count in full.
*/

use crate::juju::{Juju, Level};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id};
use tracing::subscriber::Interest;
use tracing::{Metadata, Subscriber};
use tracing_subscriber::layer::{Context, Layer, SubscriberExt};
use tracing_subscriber::registry::LookupSpan;

/// The environment variable that turns the timings on for one run (any value but `0`).
pub const ENV: &str = "ETCD_CHARM_TRACE";

/// The file whose presence turns them on for every hook of the unit.
pub const FLAG_FILE: &str = "/var/lib/etcd-charm/trace";

/// True when this run should time its phases: [`ENV`] is set (and not `0`), or [`FLAG_FILE`]
/// exists.
pub fn wanted(env: Option<&str>) -> bool {
    match env {
        Some(v) if !v.is_empty() => v != "0",
        _ => std::path::Path::new(FLAG_FILE).exists(),
    }
}

/// One phase's sum: how many spans closed and their total life.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Phase {
    label: String,
    count: u32,
    total: Duration,
}

/// The phases seen so far, in the order they first closed.
type Phases = Arc<Mutex<Vec<Phase>>>;

/// What a span carries until it closes.
struct Timing {
    label: String,
    start: Instant,
}

/// The `what` field of a span (a tool's name, an etcd call), if it has one.
#[derive(Default)]
struct What(Option<String>);

impl Visit for What {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "what" {
            self.0 = Some(value.to_string());
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "what" {
            self.0 = Some(format!("{value:?}"));
        }
    }
}

/// The layer that sums the charm's own spans (other crates' are never enabled).
struct Summer(Phases);

fn ours(meta: &Metadata<'_>) -> bool {
    meta.is_span() && meta.target().starts_with("etcd_charm")
}

impl<S: Subscriber + for<'a> LookupSpan<'a>> Layer<S> for Summer {
    fn register_callsite(&self, meta: &'static Metadata<'static>) -> Interest {
        match ours(meta) {
            true => Interest::always(),
            false => Interest::never(),
        }
    }

    fn enabled(&self, meta: &Metadata<'_>, _: Context<'_, S>) -> bool {
        ours(meta)
    }

    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        let mut what = What::default();
        attrs.record(&mut what);
        let name = attrs.metadata().name();
        let label = match what.0 {
            Some(w) => format!("{name} {w}"),
            None => name.to_string(),
        };
        if let Some(span) = ctx.span(id) {
            let start = Instant::now();
            span.extensions_mut().insert(Timing { label, start });
        }
    }

    fn on_close(&self, id: Id, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(&id) else { return };
        let Some(t) = span.extensions_mut().remove::<Timing>() else {
            return;
        };
        add(&self.0, t.label, t.start.elapsed());
    }
}

fn add(phases: &Phases, label: String, took: Duration) {
    let mut phases = phases.lock().unwrap_or_else(|e| e.into_inner());
    match phases.iter_mut().find(|p| p.label == label) {
        Some(p) => {
            p.count += 1;
            p.total += took;
        }
        None => phases.push(Phase {
            label,
            count: 1,
            total: took,
        }),
    }
}

/// The timings of one run, once [`start`]ed; [`Timings::finish`] writes them.
pub struct Timings(Option<Phases>);

/// Installs the summing subscriber when `on`; otherwise spans stay disabled and cost nothing.
pub fn start(on: bool) -> Timings {
    if !on {
        return Timings(None);
    }
    let phases = Phases::default();
    let subscriber = tracing_subscriber::registry().with(Summer(phases.clone()));
    match tracing::subscriber::set_global_default(subscriber) {
        Ok(()) => Timings(Some(phases)),
        Err(_) => Timings(None),
    }
}

impl Timings {
    /// Writes the summary, one line per phase, as one `juju-log` call at DEBUG level (none
    /// when the timings are off).
    pub fn finish(self, juju: &dyn Juju, what: &str) {
        let Some(phases) = self.0 else { return };
        let phases = phases.lock().unwrap_or_else(|e| e.into_inner()).clone();
        juju.log(Level::Debug, &summary(what, &phases));
    }
}

/// `timings of <what>` and a line per phase: label, count, total milliseconds.
fn summary(what: &str, phases: &[Phase]) -> String {
    let mut text = format!("timings of {what} (phase, calls, total ms):");
    for p in phases {
        let ms = p.total.as_secs_f64() * 1000.0;
        text.push_str(&format!("\n  {:<28} {:>3} {:>9.2}", p.label, p.count, ms));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phases_are_summed_per_label_in_first_seen_order() {
        let phases = Phases::default();
        add(&phases, "tool is-leader".into(), Duration::from_millis(1));
        add(&phases, "observe".into(), Duration::from_millis(5));
        add(&phases, "tool is-leader".into(), Duration::from_millis(2));
        let got = phases.lock().unwrap().clone();
        assert_eq!(got.len(), 2);
        assert_eq!(got[0].label, "tool is-leader");
        assert_eq!((got[0].count, got[0].total), (2, Duration::from_millis(3)));
        let text = summary("update-status", &got);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 3);
        assert!(lines[1].contains("tool is-leader") && lines[1].contains("3.00"));
        assert!(lines[2].contains("observe") && lines[2].contains("5.00"));
    }

    #[test]
    fn the_env_decides_before_the_flag_file() {
        assert!(wanted(Some("1")));
        assert!(!wanted(Some("0")));
    }

    #[test]
    fn spans_are_summed_through_the_layer() {
        let phases = Phases::default();
        let subscriber = tracing_subscriber::registry().with(Summer(phases.clone()));
        tracing::subscriber::with_default(subscriber, || {
            for tool in ["is-leader", "config-get", "is-leader"] {
                let _s = tracing::debug_span!("tool", what = tool).entered();
            }
            drop(tracing::debug_span!("observe"));
        });
        let got = phases.lock().unwrap().clone();
        let labels: Vec<(&str, u32)> = got.iter().map(|p| (p.label.as_str(), p.count)).collect();
        assert_eq!(
            labels,
            [
                ("tool is-leader", 2),
                ("tool config-get", 1),
                ("observe", 1)
            ]
        );
    }
}
