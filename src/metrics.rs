//! Prometheus metrics, served on `GET /metrics` (OpenMetrics text).
//!
//! One [`Metrics`] value is made at start-up and shared (`Arc`) by the HTTP handlers and the
//! actors. Label values are the configured source and endpoint names, so cardinality is
//! bounded by routes.yaml. Beside them, each endpoint's last hour of attempts
//! ([`recent::RecentAttempts`]) for the console.

pub mod recent;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

use recent::RecentAttempts;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct SourceLabels {
    pub source: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct IngestLabels {
    pub source: String,
    pub code: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OutcomeLabels {
    pub outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct EventLabels {
    pub r#type: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RouteLabels {
    pub route: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct HeldLabels {
    /// `silenced`, `inhibited` or `muted`.
    pub cause: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct EndpointLabels {
    pub endpoint: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct DeliveryLabels {
    pub endpoint: String,
    pub outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct HeadLabels {
    pub endpoint: String,
    /// `claim` (claimed from the durable queue) or `record` (leased as it was recorded).
    pub via: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PluginCallLabels {
    pub plugin: String,
    pub outcome: String,
}

/// A histogram family whose histograms all have the latency buckets.
pub type HistogramFamily<L> = Family<L, Histogram, fn() -> Histogram>;

fn latency_histogram() -> Histogram {
    // 100 µs .. ~52 s.
    Histogram::new(exponential_buckets(0.0001, 2.0, 20))
}

/// Every metric switchyard exports.
pub struct Metrics {
    registry: Registry,
    /// `switchyard_ingest_requests_total{source,code}`.
    pub ingest_requests: Family<IngestLabels, Counter>,
    /// `switchyard_alerts_received_total{source}`.
    pub alerts_received: Family<SourceLabels, Counter>,
    /// `switchyard_alerts_total{outcome}`: created, updated, acknowledged, resolved, repeat, ignored.
    pub alert_outcomes: Family<OutcomeLabels, Counter>,
    /// `switchyard_events_emitted_total{type}`.
    pub events_emitted: Family<EventLabels, Counter>,
    /// `switchyard_events_unrouted_total`: events no route and no default took.
    pub events_unrouted: Counter,
    /// `switchyard_group_notifications_total{route}`: group notifications queued (one per
    /// group flush, to every endpoint of the group).
    pub group_notifications: Family<RouteLabels, Counter>,
    /// `switchyard_events_held_total{cause}`: incident events not delivered when made,
    /// because a silence, an inhibition or a time interval held them (an event held by
    /// several is counted under each).
    pub events_held: Family<HeldLabels, Counter>,
    /// `switchyard_holds_released_total`: held incidents notified once nothing held them.
    pub holds_released: Counter,
    /// `switchyard_deliveries_total{endpoint,outcome}`: delivered, failed, dead, duplicate.
    pub deliveries: Family<DeliveryLabels, Counter>,
    /// `switchyard_delivery_queue_depth{endpoint}`: deliveries not yet finished.
    pub queue_depth: Family<EndpointLabels, Gauge>,
    /// `switchyard_endpoint_circuit_open{endpoint}`: 1 while the circuit breaker holds
    /// attempts back (open or half-open), else 0.
    pub circuit_open: Family<EndpointLabels, Gauge>,
    /// `switchyard_ingest_in_flight`: ingest requests being processed.
    pub ingest_in_flight: Gauge,
    /// `switchyard_ingest_duration_seconds{source}`: from request to 202.
    pub ingest_duration: HistogramFamily<SourceLabels>,
    /// `switchyard_delivery_duration_seconds{endpoint}`: one attempt's HTTP round trip.
    pub delivery_duration: HistogramFamily<EndpointLabels>,
    /// `switchyard_delivery_latency_seconds{endpoint}`: from the event to its 2xx (replays
    /// are not counted: theirs would start at the original event).
    pub delivery_latency: HistogramFamily<EndpointLabels>,
    /// `switchyard_incidents_open`.
    pub incidents_open: Gauge,
    /// `switchyard_plugin_calls_total{plugin,outcome}`: ok, rejected, failed, panicked,
    /// timeout, busy.
    pub plugin_calls: Family<PluginCallLabels, Counter>,
    /// `switchyard_redeliveries_dropped_total{source}`: requests whose delivery id (Sentry
    /// `Request-ID`) was already recorded.
    pub redeliveries_dropped: Family<SourceLabels, Counter>,
    /// `switchyard_delivery_heads_taken_total{endpoint,via}`: lane heads a durable queue
    /// (redis) gave this instance, by `claim` or leased at `record`.
    pub heads_taken: Family<HeadLabels, Counter>,
    /// Each endpoint's attempts over the last hour (not exported: the console reads it).
    recent: Mutex<HashMap<String, Arc<RecentAttempts>>>,
    /// `switchyard_incident_expiry_total{outcome}`: the auto-resolve timers (`expires_at`):
    /// `armed`, `arm_failed` (the store refused; that incident will not auto-resolve),
    /// `resolved`, and timers that fired on nothing to do: `renewed`, `closed`.
    pub expiry: Family<OutcomeLabels, Counter>,
}

impl Metrics {
    pub fn new() -> Arc<Metrics> {
        let mut registry = Registry::with_prefix("switchyard");
        let ingest_requests = Family::<IngestLabels, Counter>::default();
        registry.register(
            "ingest_requests",
            "Ingest requests by source and HTTP status",
            ingest_requests.clone(),
        );
        let alerts_received = Family::<SourceLabels, Counter>::default();
        registry.register(
            "alerts_received",
            "Alerts normalized from accepted payloads",
            alerts_received.clone(),
        );
        let alert_outcomes = Family::<OutcomeLabels, Counter>::default();
        registry.register(
            "alerts",
            "What each alert did to its incident",
            alert_outcomes.clone(),
        );
        let events_emitted = Family::<EventLabels, Counter>::default();
        registry.register(
            "events_emitted",
            "Events emitted by incidents",
            events_emitted.clone(),
        );
        let events_unrouted = Counter::default();
        registry.register(
            "events_unrouted",
            "Events that no route and no default took (dropped)",
            events_unrouted.clone(),
        );
        let group_notifications = Family::<RouteLabels, Counter>::default();
        registry.register(
            "group_notifications",
            "Group notifications queued, per route",
            group_notifications.clone(),
        );
        let events_held = Family::<HeldLabels, Counter>::default();
        registry.register(
            "events_held",
            "Incident events held by a silence, an inhibition or a time interval, by cause",
            events_held.clone(),
        );
        let holds_released = Counter::default();
        registry.register(
            "holds_released",
            "Held incidents notified once nothing held them",
            holds_released.clone(),
        );
        let deliveries = Family::<DeliveryLabels, Counter>::default();
        registry.register(
            "deliveries",
            "Delivery attempts by outcome",
            deliveries.clone(),
        );
        let queue_depth = Family::<EndpointLabels, Gauge>::default();
        registry.register(
            "delivery_queue_depth",
            "Deliveries not yet finished, per endpoint",
            queue_depth.clone(),
        );
        let circuit_open = Family::<EndpointLabels, Gauge>::default();
        registry.register(
            "endpoint_circuit_open",
            "1 while the endpoint's circuit breaker holds attempts back",
            circuit_open.clone(),
        );
        let ingest_in_flight = Gauge::default();
        registry.register(
            "ingest_in_flight",
            "Ingest requests being processed",
            ingest_in_flight.clone(),
        );
        let ingest_duration: HistogramFamily<SourceLabels> =
            Family::new_with_constructor(latency_histogram);
        registry.register(
            "ingest_duration_seconds",
            "Time from an ingest request to its answer",
            ingest_duration.clone(),
        );
        let delivery_duration: HistogramFamily<EndpointLabels> =
            Family::new_with_constructor(latency_histogram);
        registry.register(
            "delivery_duration_seconds",
            "HTTP round trip of one delivery attempt",
            delivery_duration.clone(),
        );
        let delivery_latency: HistogramFamily<EndpointLabels> =
            Family::new_with_constructor(latency_histogram);
        registry.register(
            "delivery_latency_seconds",
            "Time from an event to its successful delivery (replays not counted)",
            delivery_latency.clone(),
        );
        let incidents_open = Gauge::default();
        registry.register("incidents_open", "Open incidents", incidents_open.clone());
        let plugin_calls = Family::<PluginCallLabels, Counter>::default();
        registry.register(
            "plugin_calls",
            "Adapter plugin calls by outcome",
            plugin_calls.clone(),
        );
        let redeliveries_dropped = Family::<SourceLabels, Counter>::default();
        registry.register(
            "redeliveries_dropped",
            "Redelivered requests dropped (their delivery id was already recorded)",
            redeliveries_dropped.clone(),
        );
        let heads_taken = Family::<HeadLabels, Counter>::default();
        registry.register(
            "delivery_heads_taken",
            "Lane heads the durable queue gave this instance, by claim or leased at record",
            heads_taken.clone(),
        );
        let expiry = Family::<OutcomeLabels, Counter>::default();
        registry.register(
            "incident_expiry",
            "Auto-resolve timers of incidents: armed, arm_failed, resolved, renewed, closed",
            expiry.clone(),
        );
        Arc::new(Metrics {
            registry,
            ingest_requests,
            alerts_received,
            alert_outcomes,
            events_emitted,
            events_unrouted,
            group_notifications,
            events_held,
            holds_released,
            deliveries,
            queue_depth,
            circuit_open,
            ingest_in_flight,
            ingest_duration,
            delivery_duration,
            delivery_latency,
            incidents_open,
            plugin_calls,
            redeliveries_dropped,
            heads_taken,
            recent: Mutex::new(HashMap::new()),
            expiry,
        })
    }

    /// The OpenMetrics text of every metric.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }

    /// The running totals the periodic log summary reports (see [`Totals`]).
    pub fn totals(&self) -> Totals {
        Totals::read(&self.encode())
    }

    /// One endpoint's metrics, looked up once (a lookup hashes and allocates its labels).
    pub fn endpoint(&self, endpoint: &str) -> EndpointMetrics {
        let labels = EndpointLabels {
            endpoint: endpoint.to_string(),
        };
        let outcome = |o: &str| {
            self.deliveries
                .get_or_create(&DeliveryLabels {
                    endpoint: endpoint.to_string(),
                    outcome: o.to_string(),
                })
                .clone()
        };
        EndpointMetrics {
            delivered: outcome("delivered"),
            failed: outcome("failed"),
            dead: outcome("dead"),
            duplicate: outcome("duplicate"),
            queue_depth: self.queue_depth.get_or_create(&labels).clone(),
            circuit_open: self.circuit_open.get_or_create(&labels).clone(),
            duration: self.delivery_duration.get_or_create(&labels).clone(),
            latency: self.delivery_latency.get_or_create(&labels).clone(),
            claimed: self.head_counter(endpoint, "claim"),
            leased_at_record: self.head_counter(endpoint, "record"),
            recent: self.recent(endpoint),
        }
    }

    /// The last hour of `endpoint`'s attempts (the same counts its delivery actor records).
    pub fn recent(&self, endpoint: &str) -> Arc<RecentAttempts> {
        self.recent
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(endpoint.to_string())
            .or_default()
            .clone()
    }

    /// `endpoint`'s current queue depth, as `/metrics` shows it.
    pub fn queue_depth_of(&self, endpoint: &str) -> i64 {
        self.queue_depth
            .get_or_create(&EndpointLabels {
                endpoint: endpoint.to_string(),
            })
            .get()
    }

    fn head_counter(&self, endpoint: &str, via: &str) -> Counter {
        self.heads_taken
            .get_or_create(&HeadLabels {
                endpoint: endpoint.to_string(),
                via: via.to_string(),
            })
            .clone()
    }
}

/// The metrics of one endpoint, as its delivery actor updates them (handles to the same series
/// `/metrics` shows).
#[derive(Clone)]
pub struct EndpointMetrics {
    pub delivered: Counter,
    pub failed: Counter,
    pub dead: Counter,
    pub duplicate: Counter,
    pub queue_depth: Gauge,
    pub circuit_open: Gauge,
    pub duration: Histogram,
    pub latency: Histogram,
    /// Lane heads taken from the durable queue by a claim, and leased at record.
    pub claimed: Counter,
    pub leased_at_record: Counter,
    /// The last hour of attempts, for the console.
    pub recent: Arc<RecentAttempts>,
}

/// Running totals across sources and endpoints, read from the metrics' own text (so the log
/// summary and `/metrics` never disagree).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Totals {
    /// Ingest requests answered 202.
    pub accepted_requests: u64,
    /// Alerts those requests carried.
    pub alerts: u64,
    pub delivered: u64,
    /// Attempts that failed and will be retried.
    pub failed: u64,
    pub dead: u64,
}

impl Totals {
    /// Sums the counters of an OpenMetrics text.
    pub fn read(text: &str) -> Totals {
        let mut t = Totals::default();
        for line in text.lines() {
            let Some((series, value)) = line.rsplit_once(' ') else {
                continue;
            };
            let Ok(value) = value.parse::<f64>() else {
                continue;
            };
            let value = value as u64;
            if series.starts_with("switchyard_ingest_requests_total{")
                && series.contains("code=\"202\"")
            {
                t.accepted_requests += value;
            } else if series.starts_with("switchyard_alerts_received_total{") {
                t.alerts += value;
            } else if series.starts_with("switchyard_deliveries_total{") {
                if series.contains("outcome=\"delivered\"") {
                    t.delivered += value;
                } else if series.contains("outcome=\"failed\"") {
                    t.failed += value;
                } else if series.contains("outcome=\"dead\"") {
                    t.dead += value;
                }
            }
        }
        t
    }

    /// What happened between `earlier` and these totals.
    pub fn since(&self, earlier: &Totals) -> Totals {
        Totals {
            accepted_requests: self
                .accepted_requests
                .saturating_sub(earlier.accepted_requests),
            alerts: self.alerts.saturating_sub(earlier.alerts),
            delivered: self.delivered.saturating_sub(earlier.delivered),
            failed: self.failed.saturating_sub(earlier.failed),
            dead: self.dead.saturating_sub(earlier.dead),
        }
    }
}

#[cfg(test)]
mod totals_tests {
    use super::*;

    #[test]
    fn totals_add_up_the_counters_and_differences_are_per_period() {
        let m = Metrics::new();
        let before = m.totals();
        m.ingest_requests
            .get_or_create(&IngestLabels {
                source: "a".into(),
                code: 202,
            })
            .inc_by(3);
        m.ingest_requests
            .get_or_create(&IngestLabels {
                source: "a".into(),
                code: 401,
            })
            .inc();
        m.alerts_received
            .get_or_create(&SourceLabels { source: "a".into() })
            .inc_by(7);
        let e = m.endpoint("hook");
        e.delivered.inc_by(5);
        e.failed.inc_by(2);
        e.dead.inc();
        let now = m.totals();
        assert_eq!(
            now.since(&before),
            Totals {
                accepted_requests: 3,
                alerts: 7,
                delivered: 5,
                failed: 2,
                dead: 1
            }
        );
    }
}
