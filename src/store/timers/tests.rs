//! The timer contract, run against every implementation (the redis store's run in
//! `store/redis/tests.rs`). Time is injected: nothing here sleeps.

use super::*;

const LEASE: Duration = Duration::from_secs(10);

pub(crate) fn at(secs: i64) -> DateTime<Utc> {
    from_ms(1_800_000_000_000 + secs * 1000)
}

/// Arming, claiming, completing, re-arming, replacing and cancelling.
pub(crate) async fn timers_follow_the_contract(t: &dyn Timers, set: &str) {
    // Nothing armed.
    assert!(t.claim_due(set, at(0), 10, LEASE).await.unwrap().is_empty());
    assert_eq!(t.next_due(set).await.unwrap(), None);
    assert!(!t.cancel(set, "none").await.unwrap());

    // Armed, not due yet.
    assert!(t
        .schedule(set, "a", at(5), "pa", When::Replace)
        .await
        .unwrap());
    assert!(t
        .schedule(set, "b", at(3), "pb", When::Replace)
        .await
        .unwrap());
    assert_eq!(t.next_due(set).await.unwrap(), Some(at(3)));
    assert!(t.claim_due(set, at(2), 10, LEASE).await.unwrap().is_empty());
    let got = t.get(set, "a").await.unwrap().unwrap();
    assert_eq!((got.due, got.payload.as_str()), (at(5), "pa"));
    // Other sets see nothing of it.
    let other = format!("{set}-other");
    assert!(t
        .claim_due(&other, at(9), 10, LEASE)
        .await
        .unwrap()
        .is_empty());
    assert_eq!(t.get(&other, "a").await.unwrap(), None);

    // IfAbsent keeps what exists; IfEarlier replaces only with an earlier time.
    assert!(!t
        .schedule(set, "a", at(1), "x", When::IfAbsent)
        .await
        .unwrap());
    assert!(!t
        .schedule(set, "a", at(6), "x", When::IfEarlier)
        .await
        .unwrap());
    assert!(t
        .schedule(set, "a", at(4), "pa2", When::IfEarlier)
        .await
        .unwrap());
    assert!(t
        .schedule(set, "c", at(100), "pc", When::IfAbsent)
        .await
        .unwrap());

    // Due ones are claimed earliest first, up to the limit.
    let first = t.claim_due(set, at(4), 1, LEASE).await.unwrap();
    assert_eq!(first.len(), 1);
    assert_eq!(first[0].timer.key, "b");
    assert_eq!(first[0].timer.payload, "pb");
    assert_eq!(first[0].timer.due, at(3));
    let second = t.claim_due(set, at(4), 10, LEASE).await.unwrap();
    assert_eq!(second.len(), 1);
    assert_eq!(
        (
            second[0].timer.key.as_str(),
            second[0].timer.payload.as_str()
        ),
        ("a", "pa2")
    );
    // A claimed timer is not claimed again while its lease holds.
    assert!(t.claim_due(set, at(5), 10, LEASE).await.unwrap().is_empty());
    // ... but still shows its armed time, and is never replaced by IfEarlier.
    assert_eq!(t.get(set, "b").await.unwrap().unwrap().due, at(3));
    assert!(!t
        .schedule(set, "b", at(0), "x", When::IfEarlier)
        .await
        .unwrap());

    // Completed: gone. Completed again: stale.
    assert!(t.complete(&first[0], None).await.unwrap());
    assert_eq!(t.get(set, "b").await.unwrap(), None);
    assert!(!t.complete(&first[0], None).await.unwrap());

    // Re-armed by its claimant: due again later with the new payload.
    assert!(t
        .complete(&second[0], Some((at(20), "again")))
        .await
        .unwrap());
    assert!(t
        .claim_due(set, at(19), 10, LEASE)
        .await
        .unwrap()
        .is_empty());
    let again = t.claim_due(set, at(20), 10, LEASE).await.unwrap();
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].timer.payload, "again");
    assert_eq!(again[0].timer.due, at(20));

    // Replaced while claimed: the claimant's completion changes nothing.
    assert!(t
        .schedule(set, "a", at(50), "new", When::Replace)
        .await
        .unwrap());
    assert!(!t.complete(&again[0], None).await.unwrap());
    assert_eq!(t.get(set, "a").await.unwrap().unwrap().payload, "new");
    assert!(!t
        .complete(&again[0], Some((at(21), "stale")))
        .await
        .unwrap());
    assert_eq!(t.get(set, "a").await.unwrap().unwrap().due, at(50));

    // A lease that ran out: claimed again, by a new lease; the old one is stale.
    let c1 = t.claim_due(set, at(100), 10, LEASE).await.unwrap();
    let keys: BTreeSet<_> = c1.iter().map(|c| c.timer.key.clone()).collect();
    assert_eq!(keys, ["a", "c"].map(String::from).into());
    assert_eq!(t.next_due(set).await.unwrap(), Some(at(110)));
    assert!(t
        .claim_due(set, at(109), 10, LEASE)
        .await
        .unwrap()
        .is_empty());
    let c2 = t.claim_due(set, at(110), 10, LEASE).await.unwrap();
    assert_eq!(c2.len(), 2);
    assert!(c2.iter().all(|c| !c1.iter().any(|o| o.lease == c.lease)));
    for old in &c1 {
        assert!(!t.complete(old, None).await.unwrap());
    }

    // Cancelled while claimed: gone, and its claimant's completion changes nothing.
    assert!(t.cancel(set, "a").await.unwrap());
    assert!(!t.cancel(set, "a").await.unwrap());
    let ca = c2.iter().find(|c| c.timer.key == "a").unwrap();
    assert!(!t.complete(ca, Some((at(200), "x"))).await.unwrap());
    assert_eq!(t.get(set, "a").await.unwrap(), None);
    let cc = c2.iter().find(|c| c.timer.key == "c").unwrap();
    assert!(t.complete(cc, None).await.unwrap());
    assert_eq!(t.next_due(set).await.unwrap(), None);

    // Bounds: refused, nothing armed.
    let big = "x".repeat(DEFAULT_MAX_TIMER_PAYLOAD_BYTES + 1);
    assert!(matches!(
        t.schedule(set, "big", at(0), &big, When::Replace).await,
        Err(StoreError::Rejected(_))
    ));
    assert!(matches!(
        t.schedule(set, "", at(0), "", When::Replace).await,
        Err(StoreError::Rejected(_))
    ));
    assert_eq!(t.get(set, "big").await.unwrap(), None);
    // Payloads keep any text, newlines and all.
    let odd = "line\n\"quoted\" ünïcode\0";
    t.schedule(set, "odd key:with\nstuff", at(1), odd, When::Replace)
        .await
        .unwrap();
    let c = t.claim_due(set, at(1), 10, LEASE).await.unwrap();
    assert_eq!(c[0].timer.payload, odd);
    assert_eq!(c[0].timer.key, "odd key:with\nstuff");
    assert!(t.complete(&c[0], None).await.unwrap());
}

/// Two claimants (two instances on one store) racing for the same due timers: each timer goes
/// to exactly one of them.
pub(crate) async fn each_timer_goes_to_one_claimant(a: &dyn Timers, b: &dyn Timers, set: &str) {
    for i in 0..50 {
        a.schedule(set, &format!("k{i}"), at(i % 7), "", When::Replace)
            .await
            .unwrap();
    }
    let mut seen = BTreeSet::new();
    loop {
        let (x, y) = futures_util::join!(
            a.claim_due(set, at(10), 7, LEASE),
            b.claim_due(set, at(10), 7, LEASE)
        );
        let (x, y) = (x.unwrap(), y.unwrap());
        if x.is_empty() && y.is_empty() {
            break;
        }
        for c in x.iter() {
            assert!(a.complete(c, None).await.unwrap());
        }
        for c in y.iter() {
            assert!(b.complete(c, None).await.unwrap());
        }
        for c in x.into_iter().chain(y) {
            assert!(seen.insert(c.timer.key), "a timer fired twice");
        }
    }
    assert_eq!(seen.len(), 50);
}

#[actix_rt::test]
async fn memory_timers_follow_the_contract() {
    timers_follow_the_contract(&MemoryTimers::default(), "s").await;
}

#[actix_rt::test]
async fn memory_timers_go_to_one_claimant() {
    let t = MemoryTimers::default();
    each_timer_goes_to_one_claimant(&t, &t, "s").await;
}

#[actix_rt::test]
async fn memory_timers_count_what_is_armed() {
    let t = MemoryTimers::default();
    t.schedule("s", "a", at(0), "", When::Replace)
        .await
        .unwrap();
    t.schedule("s", "a", at(1), "", When::Replace)
        .await
        .unwrap();
    t.schedule("s", "b", at(1), "", When::Replace)
        .await
        .unwrap();
    assert_eq!(t.count.load(Ordering::Relaxed), 2);
    let c = t.claim_due("s", at(1), 10, LEASE).await.unwrap();
    t.complete(&c[0], Some((at(5), ""))).await.unwrap();
    t.complete(&c[1], None).await.unwrap();
    t.cancel("s", "a").await.unwrap();
    t.cancel("s", "a").await.unwrap();
    assert_eq!(t.count.load(Ordering::Relaxed), 0);
}

/// A timer armed again at the time it has is still armed (and claimed once).
pub(crate) async fn rearming_at_the_same_time_keeps_the_timer(t: &dyn Timers, set: &str) {
    for _ in 0..2 {
        t.schedule(set, "same", at(5), "p", When::Replace)
            .await
            .unwrap();
    }
    assert_eq!(t.next_due(set).await.unwrap(), Some(at(5)));
    let got = t.claim_due(set, at(5), 10, LEASE).await.unwrap();
    assert_eq!(got.len(), 1);
}

#[actix_rt::test]
async fn memory_timers_rearmed_at_the_same_time_stay_armed() {
    rearming_at_the_same_time_keeps_the_timer(&MemoryTimers::default(), "s").await;
}
