//! The secret store as state transitions: reads, commits and the secret hooks they make due,
//! on a virtual clock.

use super::*;

fn who(unit: &str, leader: bool, now: f64) -> Who {
    Who {
        unit: unit.into(),
        leader,
        model_uuid: "uuid".into(),
        now,
        remote_apps: [(7, "mysql".to_string())].into(),
        live_relations: [(7, "relation-mysql.db#etcd.db".to_string())].into(),
    }
}

fn content(v: &str) -> Content {
    [("value".to_string(), v.to_string())].into()
}

/// Runs calls as one hook of `w` and commits them.
fn hook(store: &mut Store, w: &Who, calls: Vec<Call>) -> Vec<Answer> {
    let mut pending = Pending::default();
    let answers = calls
        .into_iter()
        .map(|c| handle(store, &mut pending, w, c).expect("call"))
        .collect();
    commit(store, &pending, w).expect("commit");
    answers
}

fn get(id: &str, peek: bool, refresh: bool) -> Call {
    Call::Get {
        target: Target {
            id: Some(id.into()),
            label: None,
        },
        peek,
        refresh,
    }
}

fn set(id: &str, v: &str) -> Call {
    Call::Set {
        id: id.into(),
        content: Some(content(v)),
        meta: Meta::default(),
    }
}

fn add(store: &mut Store, w: &Who, meta: Meta) -> String {
    let call = Call::Add {
        content: content("1"),
        meta,
        unit_owned: false,
    };
    let Answer::Uri(uri) = hook(store, w, vec![call]).remove(0) else {
        panic!("no uri")
    };
    let id = uri.strip_prefix("secret://uuid/").expect(&uri).to_string();
    assert_eq!(parse_id(&uri), Ok(id.clone()));
    id
}

/// The leader grants a secret over relation 7 (to one unit, or the whole application).
fn grant(store: &mut Store, leader: &Who, id: &str, unit: Option<&str>) {
    let call = Call::Grant {
        id: id.into(),
        relation: 7,
        unit: unit.map(String::from),
    };
    hook(store, leader, vec![call]);
}

fn notice(to: &str, hook: Hook, id: &str) -> Notice {
    Notice {
        to: to.into(),
        hook,
        id: id.into(),
    }
}

#[test]
fn ids_are_twenty_xid_characters_in_every_form() {
    assert_eq!(encode_id(&[0; 12]), "00000000000000000000");
    assert_eq!(encode_id(&[255; 12]), "vvvvvvvvvvvvvvvvvvvg");
    let id = new_id();
    for form in [
        id.clone(),
        local_uri(&id),
        format!("secret://u-u-i-d/{id}"),
        format!("u/{id}"),
    ] {
        assert_eq!(parse_id(&form), Ok(id.clone()), "{form}");
    }
    assert_eq!(
        parse_id("secret:short"),
        Err("secret URI \"secret:short\" not valid".into())
    );
}

#[test]
fn changed_goes_once_per_revision_to_readers_and_remove_to_the_owner() {
    let mut store = Store::default();
    let (leader, peer, consumer) = (
        who("etcd/0", true, 0.0),
        who("etcd/1", false, 0.0),
        who("mysql/0", false, 0.0),
    );
    let id = add(&mut store, &leader, Meta::default());
    grant(&mut store, &leader, &id, None);
    // etcd/1 and mysql/0 read revision 1; etcd/0 never reads.
    hook(&mut store, &peer, vec![get(&id, false, false)]);
    hook(&mut store, &consumer, vec![get(&id, false, false)]);
    assert_eq!(due(&mut store, 0.0), vec![]);

    hook(&mut store, &leader, vec![set(&id, "2")]);
    assert_eq!(
        due(&mut store, 0.0),
        vec![
            notice("etcd/1", Hook::Changed, &id),
            notice("mysql/0", Hook::Changed, &id)
        ]
    );
    assert_eq!(due(&mut store, 0.0), vec![], "told once");
    // Revision 1 is obsolete once no reader tracks it.
    hook(&mut store, &peer, vec![get(&id, false, true)]);
    assert_eq!(due(&mut store, 0.0), vec![]);
    let answers = hook(
        &mut store,
        &consumer,
        vec![
            get(&id, true, false),
            get(&id, false, false),
            get(&id, false, true),
        ],
    );
    let values: Vec<Answer> = ["2", "1", "2"]
        .iter()
        .map(|v| Answer::Content(content(v)))
        .collect();
    assert_eq!(answers, values);
    assert_eq!(
        due(&mut store, 0.0),
        vec![notice("etcd", Hook::Remove(1), &id)]
    );
    hook(
        &mut store,
        &leader,
        vec![Call::Remove {
            id: id.clone(),
            revision: Some(1),
        }],
    );
    assert_eq!(
        store.secrets[&id].revisions.keys().collect::<Vec<_>>(),
        [&2]
    );
    // A reader of the removed revision's secret is not told again for it.
    hook(&mut store, &leader, vec![set(&id, "3")]);
    assert_eq!(due(&mut store, 0.0).len(), 2);
}

#[test]
fn rotation_and_expiry_fall_due_and_are_retried_after_five_minutes() {
    let mut store = Store::default();
    let leader = who("etcd/0", true, 1000.0);
    let meta = Meta {
        rotate: Some("hourly".into()),
        expire: Some(2000.0),
        ..Meta::default()
    };
    let id = add(&mut store, &leader, meta);
    assert_eq!(due(&mut store, 1999.0), vec![]);
    assert_eq!(
        due(&mut store, 2000.0),
        vec![notice("etcd", Hook::Expired(1), &id)]
    );
    assert_eq!(due(&mut store, 2000.0 + RETRY_SECONDS - 1.0), vec![]);
    assert_eq!(
        due(&mut store, 2000.0 + RETRY_SECONDS),
        vec![notice("etcd", Hook::Expired(1), &id)]
    );
    // The expiry is told again until the revision is removed.
    let again = vec![
        notice("etcd", Hook::Rotate, &id),
        notice("etcd", Hook::Expired(1), &id),
    ];
    assert_eq!(due(&mut store, 4600.0), again);
    assert_eq!(due(&mut store, 4700.0), vec![]);
    // A new revision is the rotation: the next one is an interval after it.
    hook(
        &mut store,
        &who("etcd/0", true, 5000.0),
        vec![set(&id, "2")],
    );
    assert_eq!(store.secrets[&id].next_rotate, Some(8600.0));
}

#[test]
fn a_refused_change_commits_nothing_of_the_hook() {
    let mut store = Store::default();
    let leader = who("etcd/0", true, 0.0);
    let id = add(&mut store, &leader, Meta::default());
    let before = store.clone();
    let mut pending = Pending::default();
    let other = who("etcd/1", false, 0.0);
    let unit_secret = Call::Add {
        content: content("u"),
        meta: Meta::default(),
        unit_owned: true,
    };
    handle(&mut store, &mut pending, &other, unit_secret).expect("add");
    handle(&mut store, &mut pending, &other, set(&id, "2")).expect("queued");
    assert_eq!(
        commit(&mut store, &pending, &other),
        Err("\"etcd/1\" is not leader of \"etcd\"".into())
    );
    assert_eq!(store, before);
}

#[test]
fn grants_end_with_their_relation_and_values_stay_out_of_logs() {
    let mut store = Store::default();
    let leader = who("etcd/0", true, 0.0);
    let id = add(&mut store, &leader, Meta::default());
    grant(&mut store, &leader, &id, Some("mysql/0"));
    let mut consumer = who("mysql/0", false, 0.0);
    let mut pending = Pending::default();
    assert!(handle(&mut store, &mut pending, &consumer, get(&id, false, false)).is_ok());
    consumer.live_relations.clear();
    assert_eq!(
        handle(&mut store, &mut pending, &consumer, get(&id, false, false)),
        Err("permission denied".into())
    );

    use base64::Engine;
    let v = base64::engine::general_purpose::STANDARD.encode("hunter22");
    store
        .secrets
        .get_mut(&id)
        .expect("secret")
        .revisions
        .get_mut(&1)
        .expect("rev")
        .content = [("password".to_string(), v)].into();
    assert_eq!(
        scrub(&store, None, "got hunter22 back"),
        "got <redacted> back"
    );
    let mut pending = Pending::default();
    let new = base64::engine::general_purpose::STANDARD.encode("s3cr3t");
    handle(&mut store, &mut pending, &leader, set(&id, &new)).expect("set");
    assert_eq!(
        scrub(&store, Some(&pending), "s3cr3t and hunter22"),
        "<redacted> and <redacted>"
    );
}

#[test]
fn a_removed_unit_takes_its_secrets_and_its_reads_along() {
    let mut store = Store::default();
    let (leader, peer) = (who("etcd/0", true, 0.0), who("etcd/1", false, 0.0));
    let id = add(&mut store, &leader, Meta::default());
    let own = Call::Add {
        content: content("u"),
        meta: Meta::default(),
        unit_owned: true,
    };
    hook(&mut store, &peer, vec![own, get(&id, false, false)]);
    hook(&mut store, &leader, vec![set(&id, "2")]);
    due(&mut store, 0.0);
    forget_unit(&mut store, "etcd/1");
    assert_eq!(store.secrets.keys().collect::<Vec<_>>(), [&id]);
    assert_eq!(
        due(&mut store, 0.0),
        vec![notice("etcd", Hook::Remove(1), &id)]
    );
}
