//! What an operator sees: method errors, replay conflicts, the log's summary and endpoint
//! state changes.

use crate::endpoints::admin_call;
use crate::support::{eventually, fixture, Receiver, Switchyard};

const BEARER: (&str, &str) = ("Authorization", "Bearer t0ken");

/// POSTs Alertmanager's firing fixture to `prometheus`; it must be accepted.
async fn post_firing(sy: &Switchyard) {
    let (status, body) = sy
        .ingest(
            "prometheus",
            &fixture("alertmanager-webhook-firing-alertmanager-bot.json"),
            &[BEARER],
        )
        .await;
    assert_eq!(status, 202, "{body}");
}

#[actix_rt::test]
async fn wrong_methods_get_405_and_replaying_a_delivery_still_tried_gets_409() {
    let rx = Receiver::start();
    // Fails until the retry, which waits an hour.
    rx.answer(&[(500, &[])]);
    let sy = Switchyard::start(
        &crate::base_config(&rx.url, "  admin_token: adm1n").replace(
            "retry: { schedule: [50ms, 100ms] }",
            "retry: { schedule: [1h] }",
        ),
    );
    // GET on a POST route, POST on a GET route: 405 with Allow.
    let (status, body) = admin_call(&sy, "GET", "/api/v1/reload", Some("adm1n")).await;
    assert_eq!(status, 405, "{body}");
    let client = awc::Client::default();
    let resp = client
        .post(sy.url("/api/v1/incidents"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 405);
    assert_eq!(resp.headers().get("allow").unwrap(), "GET");

    post_firing(&sy).await;
    eventually("the delivery failed once", || async {
        let (_, list) =
            admin_call(&sy, "GET", "/api/v1/deliveries?state=failed", Some("adm1n")).await;
        list["deliveries"][0]["id"].is_string()
    })
    .await;
    let (_, list) = admin_call(&sy, "GET", "/api/v1/deliveries?state=failed", Some("adm1n")).await;
    let id = list["deliveries"][0]["id"].as_str().unwrap().to_string();
    let (status, body) = admin_call(
        &sy,
        "POST",
        &format!("/api/v1/deliveries/{id}/replay"),
        Some("adm1n"),
    )
    .await;
    assert_eq!(status, 409, "{body}");
    assert!(
        body["detail"]
            .as_str()
            .unwrap()
            .contains("still being tried"),
        "{body}"
    );
    let (status, _) = admin_call(
        &sy,
        "POST",
        "/api/v1/deliveries/dlv_nope/replay",
        Some("adm1n"),
    )
    .await;
    assert_eq!(status, 404);
}

#[actix_rt::test]
async fn the_log_has_a_periodic_summary_and_circuit_changes() {
    let rx = Receiver::start();
    rx.answer(&[(500, &[]), (500, &[])]);
    let sy = Switchyard::start(
        &crate::base_config(&rx.url, "  log_summary_every: 1s").replace(
            "    retry: { schedule: [50ms, 100ms] }",
            "    retry: { schedule: [50ms, 100ms] }\n    circuit_breaker: { failures: 2, open_for: 200ms }",
        ),
    );
    post_firing(&sy).await;
    rx.wait_delivered(1).await;
    // Summed over the summary lines: the request and its attempts may fall in two periods.
    let field = |line: &str, name: &str| -> u64 {
        line.split_whitespace()
            .find_map(|w| w.strip_prefix(&format!("{name}=")).map(str::to_string))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    eventually(
        "summary lines counting the request and its attempts",
        || async {
            let logs = sy.logs();
            let lines: Vec<&str> = logs
                .lines()
                .filter(|l| l.contains("summary since the last one"))
                .collect();
            let sum = |name: &str| lines.iter().map(|l| field(l, name)).sum::<u64>();
            sum("accepted_requests") == 1 && sum("delivered") == 1 && sum("failed") == 2
        },
    )
    .await;
    let logs = sy.logs();
    assert!(
        logs.contains("circuit opened after repeated failures"),
        "{logs}"
    );
    assert!(
        logs.contains("circuit closed: the endpoint answers again"),
        "{logs}"
    );
}

/// `server.endpoint_policy`: deny_private refuses the receiver on 127.0.0.1 whether the URL
/// names the address or a name that resolves to it; require_https is checked by `check`.
#[actix_rt::test]
async fn the_endpoint_policy_refuses_private_addresses_on_every_attempt() {
    let rx = Receiver::start();
    let by_name = rx.url.replace("127.0.0.1", "localhost");
    let config = format!(
        r#"version: 1
server:
  listen: 127.0.0.1:0
  endpoint_policy: {{ deny_private: true }}
sources:
  - name: prometheus
    kind: alertmanager
    auth: {{ bearer: t0ken }}
endpoints:
  - {{ name: by-address, kind: webhook, url: "{}", retry: {{ schedule: [1h] }} }}
  - {{ name: by-name, kind: webhook, url: "{by_name}", retry: {{ schedule: [1h] }} }}
routes:
  - name: all
    matchers: []
    to: [by-address, by-name]
"#,
        rx.url
    );
    let sy = Switchyard::start(&config);
    post_firing(&sy).await;
    eventually("both attempts refused by the policy", || async {
        sy.logs()
            .lines()
            .filter(|l| {
                l.contains("delivery failed") && l.contains("refused by the endpoint policy")
            })
            .count()
            >= 2
    })
    .await;
    assert!(
        rx.received().is_empty(),
        "nothing reached the private receiver"
    );

    let c = crate::support::check_yaml(
        "version: 1\nserver:\n  endpoint_policy: { require_https: true }\nendpoints:\n  - { name: plain, kind: webhook, url: 'http://example.com/x' }\n",
    );
    assert_eq!(c.code, 1);
    assert!(c.err.contains("require_https"), "{}", c.err);
}

// Issue 18: every body carries `delivery_id`: the same on each retry of a delivery, a new one
// on a replay (the event `id` stays the event's).
crate::both_stores!(the_delivery_id_is_kept_across_retries_and_new_on_a_replay);
async fn the_delivery_id_is_kept_across_retries_and_new_on_a_replay(
    store: crate::support::TestStore,
) {
    let rx = Receiver::start();
    rx.answer(&[(500, &[])]);
    let sy = Switchyard::start(&crate::config_for(&store, &rx.url, "  admin_token: adm1n"));
    post_firing(&sy).await;
    rx.wait_delivered(1).await;
    let got = rx.received();
    assert_eq!(got.len(), 2, "one failure, one retry");
    let (first, retry) = (got[0].json(), got[1].json());
    let id = first["delivery_id"]
        .as_str()
        .expect("delivery_id")
        .to_string();
    assert!(id.starts_with("dlv_"), "{id}");
    assert_eq!(
        retry["delivery_id"], first["delivery_id"],
        "the same on a retry"
    );
    assert_eq!(retry["id"], first["id"]);

    let (status, body) = admin_call(
        &sy,
        "POST",
        &format!("/api/v1/deliveries/{id}/replay"),
        Some("adm1n"),
    )
    .await;
    assert_eq!(status, 202, "{body}");
    rx.wait_delivered(2).await;
    let replayed = rx.received()[2].json();
    assert_eq!(replayed["id"], first["id"], "the same event");
    assert_ne!(
        replayed["delivery_id"], first["delivery_id"],
        "a new delivery"
    );
    assert_eq!(replayed["delivery_id"], body["delivery_id"]);
    // The latency histogram counts the event once: a replay's would start at the original.
    let delivered = r#"switchyard_deliveries_total{endpoint="hook",outcome="delivered"}"#;
    crate::support::eventually("both deliveries counted", || async {
        sy.metric(delivered).await == Some(2.0)
    })
    .await;
    assert_eq!(
        sy.metric(r#"switchyard_delivery_latency_seconds_count{endpoint="hook"}"#)
            .await,
        Some(1.0)
    );
}
