//! The timer contract against a real Redis, plus what only a shared, durable store shows:
//! two instances, and a restart.

use std::time::Duration;

use crate::store::redis::tests::{prefix, TestRedis};
use crate::store::timers::tests::{
    at, each_timer_goes_to_one_claimant, rearming_at_the_same_time_keeps_the_timer,
    timers_follow_the_contract,
};
use crate::store::timers::{Timers, When};

#[actix_rt::test]
async fn redis_timers_follow_the_contract() {
    let redis = TestRedis::get();
    timers_follow_the_contract(&redis.redis_store(&prefix()), "s").await;
}

#[actix_rt::test]
async fn two_instances_fire_each_timer_once() {
    let redis = TestRedis::get();
    let p = prefix();
    let (a, b) = (redis.redis_store(&p), redis.redis_store(&p));
    each_timer_goes_to_one_claimant(&a, &b, "s").await;
}

#[actix_rt::test]
async fn timers_survive_a_restart_and_a_dead_claimant() {
    let redis = TestRedis::get();
    let p = prefix();
    let lease = Duration::from_secs(10);
    {
        let before = redis.redis_store(&p);
        before
            .schedule("s", "armed", at(5), "p1", When::Replace)
            .await
            .unwrap();
        before
            .schedule("s", "claimed", at(1), "p2", When::Replace)
            .await
            .unwrap();
        // Claimed, then the instance dies before completing it.
        let c = before.claim_due("s", at(2), 10, lease).await.unwrap();
        assert_eq!(c.len(), 1);
    }
    let after = redis.redis_store(&p);
    let armed = after.get("s", "armed").await.unwrap().unwrap();
    assert_eq!((armed.due, armed.payload.as_str()), (at(5), "p1"));
    let c = after.claim_due("s", at(5), 10, lease).await.unwrap();
    assert_eq!(c.len(), 1, "the dead claimant's lease still holds");
    assert_eq!(c[0].timer.key, "armed");
    let c = after.claim_due("s", at(12), 10, lease).await.unwrap();
    assert_eq!(c.len(), 1, "due again once its lease ran out");
    assert_eq!(
        (c[0].timer.key.as_str(), c[0].timer.payload.as_str()),
        ("claimed", "p2")
    );
    assert!(after.complete(&c[0], None).await.unwrap());
}

#[actix_rt::test]
async fn redis_timers_rearmed_at_the_same_time_stay_armed() {
    let redis = TestRedis::get();
    rearming_at_the_same_time_keeps_the_timer(&redis.redis_store(&prefix()), "s").await;
}
