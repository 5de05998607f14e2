//! The groups contract, run against every implementation (the redis store's run in
//! `store/redis/groups.rs`).

use super::*;
use crate::store::timers::tests::at;

fn j(key: &str, inc: &str) -> (String, String, String) {
    (key.into(), format!("meta-{key}"), inc.into())
}

pub(crate) async fn groups_follow_the_contract(g: &dyn Groups) {
    assert_eq!(g.get("a").await.unwrap(), None);
    let joined = g
        .join(&[j("a", "i1"), j("a", "i2"), j("b", "i3"), j("a", "i1")])
        .await
        .unwrap();
    assert_eq!(joined, vec![("a".into(), None), ("b".into(), None)]);
    let a = g.get("a").await.unwrap().unwrap();
    assert_eq!(a.meta, "meta-a");
    assert_eq!(
        a.members,
        BTreeMap::from([("i1".into(), 2), ("i2".into(), 1)])
    );

    // A notification built from counts (i1: 2, i2: 1); i2 is resolved and notified now.
    let seen: Vec<(String, u64)> = a.members.clone().into_iter().collect();
    // Meanwhile i1 changes again: it stays changed.
    g.join(&[("a".into(), "other meta".into(), "i1".into())])
        .await
        .unwrap();
    assert!(
        g.flushed("a", &seen, &["i2".into()], at(10)).await.unwrap(),
        "i1 changed while the notification was made"
    );
    let a = g.get("a").await.unwrap().unwrap();
    assert_eq!(a.meta, "meta-a", "meta is the group's first");
    assert_eq!(a.members, BTreeMap::from([("i1".into(), 3)]));
    assert_eq!(a.notified_at, Some(at(10)));
    let joined = g.join(&[j("a", "i4")]).await.unwrap();
    assert_eq!(joined, vec![("a".into(), Some(at(10)))]);

    // Flushed at its counts, every member ended: the group ends.
    let a = g.get("a").await.unwrap().unwrap();
    let seen: Vec<(String, u64)> = a.members.clone().into_iter().collect();
    assert!(!g
        .flushed("a", &seen, &["i1".into(), "i4".into()], at(20))
        .await
        .unwrap());
    assert_eq!(g.get("a").await.unwrap(), None);
    let keys: Vec<String> = g
        .list(10)
        .await
        .unwrap()
        .into_iter()
        .map(|s| s.key)
        .collect();
    assert_eq!(keys, vec!["b".to_string()]);
    // Flushed at its counts, its member still open and unchanged since: nothing left to say.
    let b = g.get("b").await.unwrap().unwrap();
    let seen_b: Vec<(String, u64)> = b.members.clone().into_iter().collect();
    assert!(!g.flushed("b", &seen_b, &[], at(15)).await.unwrap());
    assert_eq!(
        g.get("b").await.unwrap().unwrap().members,
        BTreeMap::from([("i3".into(), 0)])
    );
    // Flushing a group that ended changes nothing.
    assert!(!g.flushed("a", &seen, &[], at(30)).await.unwrap());
    assert_eq!(g.get("a").await.unwrap(), None);
}

#[actix_rt::test]
async fn memory_groups_follow_the_contract() {
    groups_follow_the_contract(&MemoryGroups::default()).await;
}
