//! Prometheus metrics, served on `GET /metrics` (OpenMetrics text).
//!
//! One [`Metrics`] value is made at start-up and shared (`Arc`) by the HTTP handlers and the
//! actors. Label values are the configured source and endpoint names, so cardinality is
//! bounded by routes.yaml.

use std::sync::Arc;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

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
    /// `switchyard_delivery_latency_seconds{endpoint}`: from the event to its 2xx.
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
            "Time from an event to its successful delivery",
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
        Arc::new(Metrics {
            registry,
            ingest_requests,
            alerts_received,
            alert_outcomes,
            events_emitted,
            events_unrouted,
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
        })
    }

    /// The OpenMetrics text of every metric.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
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
        }
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
}
