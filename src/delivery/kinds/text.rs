//! Text and header helpers shared by the kinds: cutting to a service's limits with a visible
//! marker, headlines, colours, credentials in headers, URL components.

use actix_web::http::header::HeaderValue;
use base64::Engine as _;

use crate::config::types::Secret;
use crate::model::{Event, EventType, Severity};

/// At most `max` characters of `s`, ending in `…` when cut.
pub fn truncate(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_string();
    }
    let mut out: String = s.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

/// A key of at most `max` bytes: itself when short enough, else a prefix and the SHA-256 of
/// the whole key (so two long keys never collide on a shared prefix).
pub fn bounded_key(key: &str, max: usize) -> String {
    if key.len() <= max {
        return key.to_string();
    }
    use sha2::Digest as _;
    let digest = hex::encode(sha2::Sha256::digest(key.as_bytes()));
    let mut cut = max.saturating_sub(digest.len() + 1);
    while !key.is_char_boundary(cut) {
        cut -= 1;
    }
    format!("{}~{digest}", &key[..cut])
}

/// The incident's title, or a placeholder when the source gave none.
pub fn title(event: &Event) -> &str {
    if event.incident.title.trim().is_empty() {
        "(untitled incident)"
    } else {
        &event.incident.title
    }
}

/// `[CRITICAL] Disk full`, `[RESOLVED] Disk full`, ...: what a message leads with.
pub fn headline(event: &Event) -> String {
    let tag = match event.kind {
        EventType::Created => event.incident.severity.as_str().to_ascii_uppercase(),
        EventType::Updated => format!(
            "UPDATED {}",
            event.incident.severity.as_str().to_ascii_uppercase()
        ),
        EventType::Acknowledged => "ACKNOWLEDGED".into(),
        EventType::Resolved => "RESOLVED".into(),
        EventType::Ping => "TEST".into(),
        EventType::GroupNotification => "GROUP".into(),
        EventType::Reminder => format!(
            "REMINDER {}",
            event.incident.severity.as_str().to_ascii_uppercase()
        ),
        EventType::DeliveryDead | EventType::EndpointDisabled => {
            let what = if event.kind == EventType::DeliveryDead {
                "DELIVERY DEAD"
            } else {
                "ENDPOINT DISABLED"
            };
            match &event.notice {
                Some(n) => format!("{what}: {}", n.endpoint),
                None => what.into(),
            }
        }
    };
    format!("[{tag}] {}", title(event))
}

/// `severity: warning → critical; title: a → b`, for `incident.updated`.
pub fn changes_text(event: &Event) -> Option<String> {
    let changes = event.changes.as_ref().filter(|c| !c.is_empty())?;
    Some(
        changes
            .iter()
            .map(|(k, c)| format!("{k}: {} → {}", c.from, c.to))
            .collect::<Vec<_>>()
            .join("; "),
    )
}

/// A colour per severity (and green for resolved), as 0xRRGGBB.
pub fn colour(event: &Event) -> u32 {
    match event.kind {
        EventType::Resolved => 0x2EB67D,
        EventType::Acknowledged => 0x95A5A6,
        _ => match event.incident.severity {
            Severity::Critical => 0xE01E5A,
            Severity::Error => 0xF2711C,
            Severity::Warning => 0xECB22E,
            Severity::Info => 0x36C5F0,
        },
    }
}

/// `Authorization: Basic ...` for these credentials, marked sensitive.
pub fn basic_auth(username: &str, password: &Secret) -> HeaderValue {
    let raw = format!("{username}:{}", password.expose());
    let mut v = HeaderValue::try_from(format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(raw)
    ))
    .unwrap_or_else(|_| HeaderValue::from_static(""));
    v.set_sensitive(true);
    v
}

/// A header value from a secret, marked sensitive (never printed by `Debug`).
pub fn secret_header(prefix: &str, secret: &Secret) -> HeaderValue {
    let mut v = HeaderValue::try_from(format!("{prefix}{}", secret.expose()))
        .unwrap_or_else(|_| HeaderValue::from_static(""));
    v.set_sensitive(true);
    v
}

/// Percent-encodes one URL path segment or query value (RFC 3986 unreserved kept).
pub fn encode_component(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The base URL without a trailing slash.
pub fn base(url: &str) -> &str {
    url.trim_end_matches('/')
}

/// The visible marker for what a list left out: `… and N more` when `shown` of `total` fit.
pub fn omitted(total: usize, shown: usize) -> Option<String> {
    (total > shown).then(|| format!("… and {} more", total - shown))
}

/// As many of `items` as fit in `max` characters joined by `sep`, then `… and N more` for the
/// rest (room for it is kept), so a long list is cut between items with a visible count.
pub fn fit_list(items: &[String], sep: &str, max: usize) -> String {
    let marker_room = "… and 99999 more".len() + sep.chars().count();
    let mut out = String::new();
    let (mut used, mut shown) = (0, 0);
    for item in items {
        let cost = item.chars().count() + if shown > 0 { sep.chars().count() } else { 0 };
        let last = shown + 1 == items.len();
        if used + cost + if last { 0 } else { marker_room } > max {
            break;
        }
        if shown > 0 {
            out.push_str(sep);
        }
        out.push_str(item);
        used += cost;
        shown += 1;
    }
    if let Some(more) = omitted(items.len(), shown) {
        if shown > 0 {
            out.push_str(sep);
        }
        out.push_str(&more);
    }
    out
}

/// HTML escaping of text shown as typed: `&`, `<`, `>` and `"` (Telegram's HTML knows exactly
/// these four entities; email and Google Chat widgets take HTML).
pub fn escape_html(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}
