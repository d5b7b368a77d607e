/*!
The real etcd client ([`EtcdApi`]): bounded calls through `etcd-client`, tried on each endpoint
in turn.
*/

use super::{Etcd, EtcdError, Grant, Member, MemberStatus};
use crate::paths;
use etcd_client::{
    AlarmAction, AlarmOptions, AlarmType, Certificate, Client, CompactionOptions, ConnectOptions,
    Identity, MemberAddOptions, Permission, RoleRevokePermissionOptions, StatusResponse,
    TlsOptions, UserAddOptions,
};
use std::cell::RefCell;
use std::future::Future;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

/// Connect timeout per endpoint.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

/// Outer deadline of one call on one endpoint.
const CALL_TIMEOUT: Duration = Duration::from_secs(4);

/// Connect timeout and overall deadline of the long maintenance calls (defragment, snapshot,
/// physical compaction): they last as long as the database is large.
const LONG_CALL_TIMEOUT: Duration = Duration::from_secs(600);

/// True when the connection failed (rather than etcd answering with an error).
fn broken(e: &etcd_client::Error) -> bool {
    matches!(e, etcd_client::Error::TransportError(_))
        || matches!(e, etcd_client::Error::GRpcStatus(s) if s.code() == tonic::Code::Unavailable)
}

/// Sorts an etcd-client error into an [`EtcdError`].
fn classify(op: &str, e: etcd_client::Error) -> EtcdError {
    let message = match &e {
        etcd_client::Error::GRpcStatus(s) => s.message().to_string(),
        other => other.to_string(),
    };
    let not_yet = [
        "unhealthy cluster",
        "in sync with leader",
        "too many learner",
        "not enough started members",
        "leader changed",
        "no leader",
        "request timed out",
        "Timeout expired",
    ];
    let m = message.as_str();
    if not_yet.iter().any(|p| m.contains(p)) {
        return EtcdError::NotYet {
            op: op.into(),
            message,
        };
    }
    if m.contains("member not found") {
        return EtcdError::MemberNotFound(0);
    }
    let unreachable = broken(&e) || m.contains("not supported for learner");
    match unreachable {
        true => EtcdError::Unreachable {
            op: op.into(),
            endpoints: String::new(),
            detail: message,
        },
        false => EtcdError::Failed {
            op: op.into(),
            message,
        },
    }
}

/// One endpoint's outcome: the answer, etcd's error, or the outer deadline passed.
type Outcome<T> = Result<Result<T, etcd_client::Error>, tokio::time::error::Elapsed>;

/// What the thread of a status begun ahead ([`Etcd::begin_status`]) found: the local member's
/// status; when it votes, its member list; when that came, one round of status calls to the
/// other started members. The clients it connected with come along.
struct Ahead {
    status: Outcome<StatusResponse>,
    members: Option<Outcome<Vec<Member>>>,
    round: Option<Round>,
    clients: Vec<(String, Client)>,
}

/// A status round asked ahead: the endpoints, and each one's outcome.
type Round = (Vec<String>, Vec<Outcome<StatusResponse>>);

/// A look ahead from a local endpoint: its thread until [`Etcd::status`] takes the status;
/// then the member list and round it found, each taken by the call that asks the same (any
/// other call drops them).
enum Early {
    Running(String, JoinHandle<Ahead>),
    Found {
        at: String,
        members: Option<Outcome<Vec<Member>>>,
        round: Option<Round>,
    },
}

/// The real etcd client. Each member is connected to once per run and its client kept for the
/// run's other calls of the usual deadline; a new connection to an `https://` member reads the
/// TLS files as they are then (a hook may have just written them).
pub struct EtcdApi {
    rt: Arc<tokio::runtime::Runtime>,
    clients: RefCell<Vec<(String, Client)>>,
    early: RefCell<Option<Early>>,
}

/// A kept connection that fails sooner than this was broken (etcd restarted since): it is
/// dropped and the call made once more on a new one. A slower failure is the member's own.
const STALE_WITHIN: Duration = Duration::from_millis(500);

impl EtcdApi {
    /// Builds the current-thread runtime.
    pub fn new() -> std::io::Result<EtcdApi> {
        let _span = tracing::debug_span!("etcd runtime").entered();
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let clients = RefCell::default();
        let early = RefCell::default();
        Ok(EtcdApi {
            rt: Arc::new(rt),
            clients,
            early,
        })
    }

    /// The look ahead's status of `ep`, if one was begun there: its clients are kept from now
    /// on, and what else it found waits for the calls that follow.
    fn early_status(&self, ep: &str) -> Option<Outcome<StatusResponse>> {
        let Some(Early::Running(at, thread)) = self.early.take() else {
            return None;
        };
        let ahead = thread
            .join()
            .unwrap_or_else(|p| std::panic::resume_unwind(p));
        if at != ep {
            return None;
        }
        for (to, client) in &ahead.clients {
            self.keep(to, client);
        }
        let (members, round) = (ahead.members, ahead.round);
        *self.early.borrow_mut() = Some(Early::Found { at, members, round });
        Some(ahead.status)
    }

    /// The member list the look ahead found, when `endpoints` start with its endpoint and it
    /// answered; its round stays for [`EtcdApi::early_round`].
    fn early_members(&self, endpoints: &[String]) -> Option<Vec<Member>> {
        let Some(Early::Found { at, members, round }) = self.early.take() else {
            return None;
        };
        let Some(Ok(Ok(list))) = members.filter(|_| endpoints.first() == Some(&at)) else {
            return None;
        };
        let members = None;
        *self.early.borrow_mut() = Some(Early::Found { at, members, round });
        Some(list)
    }

    /// The round the look ahead asked, when it asked exactly `endpoints`.
    fn early_round(&self, endpoints: &[String]) -> Option<Vec<Outcome<StatusResponse>>> {
        match self.early.take() {
            Some(Early::Found {
                round: Some((asked, outcomes)),
                ..
            }) if asked == endpoints => Some(outcomes),
            _ => None,
        }
    }

    /// The client kept for `ep`, if any.
    fn kept(&self, ep: &str) -> Option<Client> {
        let clients = self.clients.borrow();
        clients
            .iter()
            .find(|(e, _)| e == ep)
            .map(|(_, c)| c.clone())
    }

    fn keep(&self, ep: &str, client: &Client) {
        self.forget(ep);
        let kept = (ep.to_string(), client.clone());
        self.clients.borrow_mut().push(kept);
    }

    fn forget(&self, ep: &str) {
        self.clients.borrow_mut().retain(|(e, _)| e != ep);
    }

    /// `f` on a client for `ep`: the kept one (for the usual `call_timeout`), else a new one,
    /// then kept. A kept connection found broken at once is replaced and `f` run again.
    async fn call<T, F, Fut>(
        &self,
        ep: &str,
        opts: ConnectOptions,
        call_timeout: Duration,
        f: &F,
    ) -> Result<T, etcd_client::Error>
    where
        F: Fn(Client) -> Fut,
        Fut: Future<Output = Result<T, etcd_client::Error>>,
    {
        let usual = call_timeout == CALL_TIMEOUT;
        if let Some(c) = self.kept(ep).filter(|_| usual) {
            let started = std::time::Instant::now();
            match f(c).await {
                Err(e) if broken(&e) => {
                    self.forget(ep);
                    if started.elapsed() >= STALE_WITHIN {
                        return Err(e);
                    }
                }
                done => return done,
            }
        }
        let connect = tracing::debug_span!("etcd connect");
        let client = Client::connect([ep], Some(opts)).await?;
        drop(connect);
        if usual {
            self.keep(ep, &client);
        }
        let result = f(client).await;
        if result.as_ref().is_err_and(broken) {
            self.forget(ep);
        }
        result
    }

    /// Runs `f` against each endpoint in turn until one answers, each bounded by a deadline.
    fn on_any<T, F, Fut>(&self, op: &str, endpoints: &[String], f: F) -> Result<T, EtcdError>
    where
        F: Fn(Client) -> Fut,
        Fut: Future<Output = Result<T, etcd_client::Error>>,
    {
        self.on_any_within(op, endpoints, CALL_TIMEOUT, f)
    }

    /// [`EtcdApi::on_any`] with another request timeout (the outer deadline is one second more).
    fn on_any_within<T, F, Fut>(
        &self,
        op: &str,
        endpoints: &[String],
        call_timeout: Duration,
        f: F,
    ) -> Result<T, EtcdError>
    where
        F: Fn(Client) -> Fut,
        Fut: Future<Output = Result<T, etcd_client::Error>>,
    {
        let _span = tracing::debug_span!("etcd", what = op).entered();
        // What a look ahead found is only for the calls it made, in their order.
        self.early.take();
        let mut detail = "no endpoints".to_string();
        for ep in endpoints {
            let opts = match options(ep, call_timeout) {
                Ok(opts) => opts,
                Err(e) => {
                    detail = format!("{ep}: {e}");
                    continue;
                }
            };
            let call = self.call(ep, opts, call_timeout, &f);
            let outcome = self.rt.block_on(async {
                tokio::time::timeout(call_timeout + Duration::from_secs(1), call).await
            });
            match self.settle(op, ep, outcome) {
                Ok(answer) => return answer,
                Err(d) => detail = d,
            }
        }
        Err(EtcdError::Unreachable {
            op: op.into(),
            endpoints: endpoints.join(","),
            detail,
        })
    }

    /// One answer of a status round: the member's status, or why it has none (named by its
    /// endpoint; a call past its deadline also drops the endpoint's client).
    fn round_answer(
        &self,
        ep: &str,
        outcome: Outcome<StatusResponse>,
    ) -> Result<MemberStatus, EtcdError> {
        match outcome {
            Ok(r) => r
                .map(|s| member_status(&s))
                .map_err(|e| match classify("status", e) {
                    EtcdError::Unreachable { detail, .. } => round_unreachable(ep, detail),
                    other => other,
                }),
            Err(_) => {
                self.forget(ep);
                Err(round_unreachable(ep, "timed out".into()))
            }
        }
    }

    /// Sorts one endpoint's outcome: what to return (an answer or etcd's refusal), or why the
    /// endpoint did not answer (`Err`: the next one is tried).
    fn settle<T>(
        &self,
        op: &str,
        ep: &str,
        outcome: Outcome<T>,
    ) -> Result<Result<T, EtcdError>, String> {
        match outcome.map(|r| r.map_err(|e| classify(op, e))) {
            Ok(Ok(v)) => Ok(Ok(v)),
            Ok(Err(EtcdError::Unreachable { detail, .. })) => Err(format!("{ep}: {detail}")),
            Ok(Err(e)) => Ok(Err(e)),
            Err(_) => {
                self.forget(ep);
                Err(format!("{ep}: timed out"))
            }
        }
    }
}

/// The connect options for `ep` with this request timeout, or why there are none (the TLS
/// files cannot be read).
fn options(ep: &str, call_timeout: Duration) -> Result<ConnectOptions, String> {
    let plain = ConnectOptions::new()
        .with_connect_timeout(CONNECT_TIMEOUT)
        .with_timeout(call_timeout);
    match ep.starts_with("https://") {
        false => Ok(plain),
        true => client_tls().map(|t| plain.with_tls(t)),
    }
}

/// The CA and client certificate the charm presents to a TLS member, read from the files
/// the charm writes (see [`crate::machine::tls`]).
fn client_tls() -> Result<TlsOptions, String> {
    let read = |path: &str| {
        std::fs::read(path)
            .map_err(|e| format!("cannot read the TLS file {path} ({e}): the next hook writes it"))
    };
    // The bundle (the client CA, and an external CA while one is in use), else the client CA.
    let ca = read(paths::TLS_CA_BUNDLE).or_else(|_| read(paths::TLS_CA))?;
    let ca = Certificate::from_pem(ca);
    let identity = Identity::from_pem(read(paths::TLS_CLIENT_CERT)?, read(paths::TLS_CLIENT_KEY)?);
    Ok(TlsOptions::new().ca_certificate(ca).identity(identity))
}

/// A member of a status round that did not answer.
fn round_unreachable(ep: &str, detail: String) -> EtcdError {
    EtcdError::Unreachable {
        op: "status".into(),
        endpoints: ep.to_string(),
        detail,
    }
}

/// A new client for `ep`, and that member's status through it.
async fn connect_status(
    ep: &str,
    opts: ConnectOptions,
) -> Result<(Client, StatusResponse), etcd_client::Error> {
    let mut client = Client::connect([ep], Some(opts)).await?;
    let status = client.status().await?;
    Ok((client, status))
}

/// A connect-and-status outcome split into the client (when it answered) and the status.
fn split(outcome: Outcome<(Client, StatusResponse)>) -> (Option<Client>, Outcome<StatusResponse>) {
    match outcome {
        Ok(Ok((client, status))) => (Some(client), Ok(Ok(status))),
        Ok(Err(e)) => (None, Ok(Err(e))),
        Err(elapsed) => (None, Err(elapsed)),
    }
}

/// What [`crate::reconcile::observe`] asks a healthy member, asked ahead, each call bounded as
/// usual: the status of the member at `local`; when it votes, its member list; then the status
/// of the other started members ([`super::round_endpoints`]) at once (no round when a TLS file
/// of theirs cannot be read). Every client is new.
async fn look_ahead(local: String, opts: ConnectOptions) -> Ahead {
    let deadline = CALL_TIMEOUT + Duration::from_secs(1);
    let (client, status) =
        split(tokio::time::timeout(deadline, connect_status(&local, opts)).await);
    let voter = match &status {
        Ok(Ok(s)) => (!s.is_learner()).then(|| s.header().map_or(0, |h| h.member_id())),
        _ => None,
    };
    let mut ahead = Ahead {
        status,
        members: None,
        round: None,
        clients: Vec::new(),
    };
    let Some(mut client) = client else {
        return ahead;
    };
    ahead.clients.push((local, client.clone()));
    let Some(local_id) = voter else {
        return ahead;
    };
    let list = async {
        Ok(client
            .member_list()
            .await?
            .members()
            .iter()
            .map(member)
            .collect())
    };
    let members: Outcome<Vec<Member>> = tokio::time::timeout(deadline, list).await;
    if let Ok(Ok(list)) = &members {
        let urls = super::round_endpoints(list, Some(local_id));
        let opts: Result<Vec<ConnectOptions>, String> =
            urls.iter().map(|ep| options(ep, CALL_TIMEOUT)).collect();
        if let Ok(opts) = opts {
            let calls = urls.iter().zip(opts).map(|(ep, opts)| {
                let call = tokio::time::timeout(deadline, connect_status(ep, opts));
                Box::pin(call) as Pending<'_, _>
            });
            let mut outcomes = Vec::new();
            for (ep, outcome) in urls.iter().zip(join_all(calls.collect()).await) {
                let (client, status) = split(outcome);
                ahead.clients.extend(client.map(|c| (ep.clone(), c)));
                outcomes.push(status);
            }
            ahead.round = Some((urls, outcomes));
        }
    }
    ahead.members = Some(members);
    ahead
}

/// The key range of a role's permission.
enum Range {
    /// Every key.
    All,
    /// The keys starting with the key.
    Prefix,
}

/// The read-write permission a grant gives its role, if any (`root` is the role itself).
fn permission(grant: &Grant) -> Option<(String, Range)> {
    match grant {
        Grant::All => Some((String::new(), Range::All)),
        Grant::Prefix(p) => Some((p.clone(), Range::Prefix)),
        Grant::Root | Grant::Nothing => None,
    }
}

/// An answer, with a failure whose message contains `benign` (the change is there already)
/// taken as done.
fn tolerate<T>(r: Result<T, etcd_client::Error>, benign: &str) -> Result<(), etcd_client::Error> {
    match r {
        Err(e) if !e.to_string().contains(benign) => Err(e),
        _ => Ok(()),
    }
}

/// A call in flight, for [`join_all`].
type Pending<'a, T> = std::pin::Pin<Box<dyn Future<Output = T> + 'a>>;

/// Runs every call at once on the current-thread runtime; their results in order.
async fn join_all<T>(mut calls: Vec<Pending<'_, T>>) -> Vec<T> {
    let mut done: Vec<Option<T>> = calls.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (call, out) in calls.iter_mut().zip(done.iter_mut()) {
            if out.is_none() {
                match call.as_mut().poll(cx) {
                    std::task::Poll::Ready(v) => *out = Some(v),
                    std::task::Poll::Pending => pending = true,
                }
            }
        }
        match pending {
            true => std::task::Poll::Pending,
            false => std::task::Poll::Ready(()),
        }
    })
    .await;
    done.into_iter().flatten().collect()
}

fn member_status(s: &etcd_client::StatusResponse) -> MemberStatus {
    MemberStatus {
        member_id: s.header().map_or(0, |h| h.member_id()),
        leader: s.leader(),
        raft_term: s.raft_term(),
        raft_index: s.raft_index(),
        db_size: s.db_size(),
        db_size_in_use: s.raft_used_db_size(),
        version: s.version().to_string(),
        is_learner: s.is_learner(),
        errors: s.errors().to_vec(),
    }
}

fn member(m: &etcd_client::Member) -> Member {
    Member {
        id: m.id(),
        name: m.name().to_string(),
        peer_urls: m.peer_urls().to_vec(),
        client_urls: m.client_urls().to_vec(),
        is_learner: m.is_learner(),
    }
}

fn with_id(e: EtcdError, id: u64) -> EtcdError {
    match e {
        EtcdError::MemberNotFound(_) => EtcdError::MemberNotFound(id),
        other => other,
    }
}

impl Etcd for EtcdApi {
    /// Looks ahead on a thread of its own, which drives the runtime meanwhile ([`look_ahead`]:
    /// the status, member list and status round [`crate::reconcile::observe`] asks next); a
    /// member already connected to, or one whose TLS files cannot be read, is asked then instead.
    fn begin_status(&self, endpoint: &str) {
        let idle = self.early.borrow().is_none() && self.kept(endpoint).is_none();
        let Some(opts) = idle.then(|| options(endpoint, CALL_TIMEOUT).ok()).flatten() else {
            return;
        };
        let (rt, ep) = (self.rt.clone(), endpoint.to_string());
        let thread = std::thread::Builder::new().spawn(move || {
            let _span = tracing::debug_span!("etcd", what = "look ahead").entered();
            rt.block_on(look_ahead(ep, opts))
        });
        if let Ok(thread) = thread {
            *self.early.borrow_mut() = Some(Early::Running(endpoint.to_string(), thread));
        }
    }

    fn status(&self, endpoint: &str) -> Result<MemberStatus, EtcdError> {
        let Some(outcome) = self.early_status(endpoint) else {
            return self.on_any("status", &[endpoint.to_string()], |mut c| async move {
                Ok(member_status(&c.status().await?))
            });
        };
        let _span = tracing::debug_span!("etcd", what = "status").entered();
        let answer = self.settle("status", endpoint, outcome);
        answer
            .map_err(|detail| EtcdError::Unreachable {
                op: "status".into(),
                endpoints: endpoint.to_string(),
                detail,
            })?
            .map(|s| member_status(&s))
    }

    fn statuses(&self, endpoints: &[String]) -> Vec<Result<MemberStatus, EtcdError>> {
        let answer = |(ep, outcome): (&String, _)| self.round_answer(ep, outcome);
        if let Some(outcomes) = self.early_round(endpoints) {
            return endpoints.iter().zip(outcomes).map(answer).collect();
        }
        let calls = endpoints.iter().map(|ep| {
            let opts = options(ep, CALL_TIMEOUT);
            let span = tracing::debug_span!("etcd", what = "status round");
            let call = async move {
                let _span = span;
                let opts = opts.map_err(|e| round_unreachable(ep, e))?;
                let status = |mut c: Client| async move { c.status().await };
                let call = self.call(ep, opts, CALL_TIMEOUT, &status);
                let deadline = CALL_TIMEOUT + Duration::from_secs(1);
                answer((ep, tokio::time::timeout(deadline, call).await))
            };
            Box::pin(call) as Pending<'_, Result<MemberStatus, EtcdError>>
        });
        self.rt.block_on(join_all(calls.collect()))
    }

    fn member_list(&self, endpoints: &[String]) -> Result<Vec<Member>, EtcdError> {
        if let Some(members) = self.early_members(endpoints) {
            return Ok(members);
        }
        self.on_any("member list", endpoints, |mut c| async move {
            Ok(c.member_list()
                .await?
                .members()
                .iter()
                .map(member)
                .collect())
        })
    }

    fn member_add_learner(
        &self,
        endpoints: &[String],
        peer_url: &str,
    ) -> Result<(u64, Vec<Member>), EtcdError> {
        self.on_any("member add", endpoints, |mut c| async move {
            let opts = MemberAddOptions::new().with_is_learner();
            let r = c.member_add([peer_url], Some(opts)).await?;
            let id = r.member().map_or(0, |m| m.id());
            Ok((id, r.member_list().iter().map(member).collect()))
        })
    }

    fn member_promote(&self, endpoints: &[String], id: u64) -> Result<(), EtcdError> {
        self.on_any("member promote", endpoints, |mut c| async move {
            c.member_promote(id).await.map(drop)
        })
        .map_err(|e| with_id(e, id))
    }

    fn member_remove(&self, endpoints: &[String], id: u64) -> Result<(), EtcdError> {
        self.on_any("member remove", endpoints, |mut c| async move {
            c.member_remove(id).await.map(drop)
        })
        .map_err(|e| with_id(e, id))
    }

    fn member_update(
        &self,
        endpoints: &[String],
        id: u64,
        peer_urls: &[String],
    ) -> Result<(), EtcdError> {
        self.on_any("member update", endpoints, |mut c| async move {
            c.member_update(id, peer_urls.to_vec()).await.map(drop)
        })
        .map_err(|e| with_id(e, id))
    }

    fn move_leader(&self, leader_endpoint: &str, target: u64) -> Result<(), EtcdError> {
        self.on_any(
            "move leader",
            &[leader_endpoint.to_string()],
            |mut c| async move { c.move_leader(target).await.map(drop) },
        )
    }

    fn alarms(&self, endpoints: &[String]) -> Result<Vec<(u64, String)>, EtcdError> {
        self.on_any("alarm list", endpoints, |mut c| async move {
            let r = c.alarm(AlarmAction::Get, AlarmType::None, None).await?;
            Ok(r.alarms()
                .iter()
                .map(|a| (a.member_id(), format!("{:?}", a.alarm()).to_uppercase()))
                .collect())
        })
    }

    fn revision(&self, endpoints: &[String]) -> Result<i64, EtcdError> {
        self.on_any("status", endpoints, |mut c| async move {
            let s = c.status().await?;
            Ok(s.header().map_or(0, |h| h.revision()))
        })
    }

    fn compact(
        &self,
        endpoints: &[String],
        revision: i64,
        physical: bool,
    ) -> Result<(), EtcdError> {
        let opts = match physical {
            true => CompactionOptions::new().with_physical(),
            false => CompactionOptions::new(),
        };
        let timeout = if physical {
            LONG_CALL_TIMEOUT
        } else {
            CALL_TIMEOUT
        };
        self.on_any_within("compact", endpoints, timeout, |mut c| {
            let opts = opts.clone();
            async move { c.compact(revision, Some(opts)).await.map(drop) }
        })
    }

    fn defragment(&self, endpoint: &str) -> Result<(), EtcdError> {
        self.on_any_within(
            "defragment",
            &[endpoint.to_string()],
            LONG_CALL_TIMEOUT,
            |mut c| async move { c.defragment().await.map(drop) },
        )
    }

    fn alarm_disarm(
        &self,
        endpoints: &[String],
        member: u64,
        alarm: &str,
    ) -> Result<(), EtcdError> {
        let kind = match alarm {
            "NOSPACE" => AlarmType::Nospace,
            "CORRUPT" => AlarmType::Corrupt,
            other => {
                return Err(EtcdError::Failed {
                    op: "alarm disarm".into(),
                    message: format!("unknown alarm {other}"),
                })
            }
        };
        self.on_any("alarm disarm", endpoints, |mut c| async move {
            let mut opts = AlarmOptions::new();
            opts.with_member(member);
            c.alarm(AlarmAction::Deactivate, kind, Some(opts))
                .await
                .map(drop)
        })
    }

    fn auth_set_user(
        &self,
        endpoints: &[String],
        name: &str,
        grant: &Grant,
        old: Option<&Grant>,
        password: &Option<String>,
    ) -> Result<(), EtcdError> {
        self.on_any("auth user", endpoints, |mut c| async move {
            match password {
                Some(pw) => {
                    tolerate(c.user_add(name, pw.as_str(), None).await, "already exists")?;
                    c.user_change_password(name, pw.as_str()).await?;
                }
                None => {
                    let no_password = Some(UserAddOptions::new().with_no_pwd());
                    tolerate(c.user_add(name, "", no_password).await, "already exists")?;
                }
            }
            tolerate(c.role_add(name).await, "already exists")?;
            if let Some((key, range)) = old.and_then(permission) {
                let opts = match range {
                    Range::All => RoleRevokePermissionOptions::new().with_all_keys(),
                    Range::Prefix => RoleRevokePermissionOptions::new().with_prefix(),
                };
                tolerate(c.role_revoke_permission(name, key, Some(opts)).await, "not")?;
            }
            if let Some((key, range)) = permission(grant) {
                let perm = Permission::read_write(key);
                let perm = match range {
                    Range::All => perm.with_all_keys(),
                    Range::Prefix => perm.with_prefix(),
                };
                c.role_grant_permission(name, perm).await?;
            }
            c.user_grant_role(name, name).await.map(drop)
        })
    }

    fn auth_delete_user(&self, endpoints: &[String], name: &str) -> Result<(), EtcdError> {
        self.on_any("auth user delete", endpoints, |mut c| async move {
            tolerate(c.user_delete(name).await, "not found")?;
            tolerate(c.role_delete(name).await, "not found")
        })
    }

    fn auth_switch(&self, endpoints: &[String], on: bool) -> Result<(), EtcdError> {
        let op = if on { "auth enable" } else { "auth disable" };
        self.on_any(op, endpoints, |mut c| async move {
            match on {
                true => c.auth_enable().await.map(drop),
                false => c.auth_disable().await.map(drop),
            }
        })
    }

    fn snapshot(&self, endpoint: &str, dest: &std::path::Path) -> Result<u64, EtcdError> {
        let io = |e: std::io::Error| etcd_client::Error::IoError(e);
        self.on_any_within(
            "snapshot",
            &[endpoint.to_string()],
            LONG_CALL_TIMEOUT,
            |mut c| async move {
                use std::io::Write;
                use std::os::unix::fs::OpenOptionsExt;
                // A snapshot holds every key: owner-only from the moment it exists; a file
                // already there (a leftover, or a planted link) is refused, never followed.
                let mut file = std::fs::OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .mode(0o600)
                    .open(dest)
                    .map_err(io)?;
                let mut stream = c.snapshot().await?;
                let mut written = 0u64;
                while let Some(chunk) = stream.message().await? {
                    file.write_all(chunk.blob()).map_err(io)?;
                    written += chunk.blob().len() as u64;
                }
                file.sync_all().map_err(io)?;
                Ok(written)
            },
        )
    }
}
