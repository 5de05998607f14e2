//! Label-set fingerprints, computed exactly as Prometheus and Alertmanager compute
//! `model.LabelSet.Fingerprint()`: FNV-1a 64 over the labels sorted by name, each written as
//! name bytes, `0xFF`, value bytes, `0xFF`, and shown as 16 lowercase hex digits.
//!
//! Alertmanager sends this value as `alerts[].fingerprint`; when a payload lacks it (older
//! Alertmanager, the `POST /api/v2/alerts` body) the adapter computes it from the labels, so
//! the dedup key is the same either way. The generic adapter reuses [`Fnv1a64`] for its
//! fallback dedup key.

use crate::model::Labels;

/// FNV-1a 64 offset basis.
pub const FNV_OFFSET_BASIS: u64 = 14_695_981_039_346_656_037;
/// FNV-1a 64 prime.
pub const FNV_PRIME: u64 = 1_099_511_628_211;
/// The byte Prometheus writes after each label name and value (never valid UTF-8).
pub const SEPARATOR: u8 = 0xFF;

/// A streaming FNV-1a 64 hasher.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fnv1a64(u64);

impl Default for Fnv1a64 {
    fn default() -> Self {
        Fnv1a64::new()
    }
}

impl Fnv1a64 {
    pub const fn new() -> Self {
        Fnv1a64(FNV_OFFSET_BASIS)
    }

    pub fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 ^= u64::from(b);
            self.0 = self.0.wrapping_mul(FNV_PRIME);
        }
    }

    pub fn write_byte(&mut self, b: u8) {
        self.write(&[b]);
    }

    /// Adds one label as Prometheus does: name, separator, value, separator.
    pub fn write_label(&mut self, name: &str, value: &str) {
        self.write(name.as_bytes());
        self.write_byte(SEPARATOR);
        self.write(value.as_bytes());
        self.write_byte(SEPARATOR);
    }

    pub fn finish(self) -> u64 {
        self.0
    }
}

/// The fingerprint of labels already sorted by name (byte order, as Go sorts strings).
pub fn fingerprint_sorted<'a, I>(sorted: I) -> u64
where
    I: IntoIterator<Item = (&'a str, &'a str)>,
{
    let mut h = Fnv1a64::new();
    for (name, value) in sorted {
        h.write_label(name, value);
    }
    h.finish()
}

/// `LabelSet.Fingerprint()` of `labels` (a `BTreeMap`, so already sorted by name).
pub fn fingerprint(labels: &Labels) -> u64 {
    fingerprint_sorted(labels.iter().map(|(k, v)| (k.as_str(), v.as_str())))
}

/// The fingerprint as Alertmanager prints it: 16 lowercase hex digits.
pub fn fingerprint_hex(labels: &Labels) -> String {
    to_hex(fingerprint(labels))
}

/// Formats a 64-bit hash as 16 lowercase hex digits.
pub fn to_hex(h: u64) -> String {
    format!("{h:016x}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(name: &str) -> serde_json::Value {
        serde_json::from_slice(&crate::sources::test_fixtures::fixture(name)).unwrap()
    }

    #[test]
    fn empty_label_set_is_the_offset_basis() {
        // Prometheus' emptyLabelSignature = hashNew().
        assert_eq!(fingerprint(&Labels::new()), FNV_OFFSET_BASIS);
        assert_eq!(fingerprint_hex(&Labels::new()), "cbf29ce484222325");
    }

    #[test]
    fn fnv1a_matches_the_published_vectors() {
        // From the FNV reference test suite (fnv1a64 of "a" and "foobar").
        let mut h = Fnv1a64::new();
        h.write(b"a");
        assert_eq!(h.finish(), 0xaf63dc4c8601ec8c);
        let mut h = Fnv1a64::new();
        h.write(b"foobar");
        assert_eq!(h.finish(), 0x85944171f73967e8);
    }

    #[test]
    fn computed_fingerprints_equal_the_ones_alertmanager_sent() {
        let files = [
            "alertmanager-webhook-firing-multi-alert-fingerprint.json",
            "alertmanager-webhook-resolved-fingerprint.json",
            "alertmanager-webhook-resolved-notification-reason.json",
        ];
        let mut checked = 0;
        for file in files {
            let body = fixture(file);
            let alerts = body["alerts"].as_array().unwrap();
            assert!(!alerts.is_empty(), "{file}");
            for alert in alerts {
                let labels: Labels = serde_json::from_value(alert["labels"].clone()).unwrap();
                let sent = alert["fingerprint"].as_str().unwrap();
                assert_eq!(fingerprint_hex(&labels), sent, "{file}: {labels:?}");
                checked += 1;
            }
        }
        assert_eq!(checked, 4);
    }

    #[test]
    fn order_and_separators_matter() {
        let a = Labels::from([("a".to_string(), "bc".to_string())]);
        let b = Labels::from([("ab".to_string(), "c".to_string())]);
        assert_ne!(fingerprint(&a), fingerprint(&b));
    }
}
