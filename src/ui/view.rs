//! The console's page shell (header, navigation, sign-out), and the small pieces every page
//! uses: times, badges, the CSRF field, tables that scroll on narrow screens.

use actix_web::http::StatusCode;
use chrono::{DateTime, Utc};
use maud::{html, Markup, DOCTYPE};

use super::SignedIn;
use crate::model::delivery::DeliveryState;
use crate::model::{IncidentStatus, Severity};

/// Which navigation entry a page is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Nav {
    Incidents,
    Deliveries,
    Endpoints,
    Routes,
    Groups,
    Silences,
    None,
}

const NAV: &[(Nav, &str, &str)] = &[
    (Nav::Incidents, "/ui/incidents", "Incidents"),
    (Nav::Deliveries, "/ui/deliveries", "Deliveries"),
    (Nav::Endpoints, "/ui/endpoints", "Endpoints"),
    (Nav::Routes, "/ui/routes", "Routes"),
    (Nav::Groups, "/ui/groups", "Groups"),
    (Nav::Silences, "/ui/silences", "Silences"),
];

/// One page: its title, its navigation entry, the part that does not change by itself, and
/// the live part (`#live`, fetched again every [`LIVE_EVERY_SECS`]).
pub struct Page {
    pub title: String,
    pub nav: Nav,
    pub csrf: String,
    pub body: Markup,
    pub live: Option<Markup>,
    /// Where the live part is fetched from (None: the page's own URL); a page answering a
    /// POST names its list's URL.
    pub live_url: Option<String>,
    pub status: StatusCode,
}

/// How often a page's live part is fetched again, in seconds.
pub const LIVE_EVERY_SECS: u32 = 5;

impl Page {
    pub fn new(signed: &SignedIn<'_>, title: &str, nav: Nav, body: Markup) -> Page {
        Page {
            title: title.to_string(),
            nav,
            csrf: signed.csrf.clone(),
            body,
            live: None,
            live_url: None,
            status: StatusCode::OK,
        }
    }

    pub fn with_live(mut self, live: Markup) -> Page {
        self.live = Some(live);
        self
    }

    pub fn render(&self) -> Markup {
        shell(
            &self.title,
            html! {
                header.top {
                    span.brand { "switchyard" }
                    nav aria-label="Console" {
                        ul {
                            @for (nav, href, label) in NAV {
                                li { a href=(href) aria-current=[(*nav == self.nav).then_some("page")] { (label) } }
                            }
                        }
                    }
                    form.inline method="post" action="/ui/logout" {
                        (csrf_field(&self.csrf))
                        button.secondary type="submit" { "Sign out" }
                    }
                }
                main #main tabindex="-1" {
                    h1 { (self.title) }
                    (self.body)
                    @if let Some(live) = &self.live {
                        div #live data-live=(LIVE_EVERY_SECS) data-src=[self.live_url.as_deref()] { (live) }
                        p.muted { small #updated { "Updates by itself every " (LIVE_EVERY_SECS) " s." } }
                    }
                }
            },
        )
    }
}

/// The document around a page's content.
fn shell(title: &str, content: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                meta name="color-scheme" content="light dark";
                title { (title) " · switchyard" }
                link rel="stylesheet" href="/ui/assets/console.css";
                script src="/ui/assets/console.js" defer {}
            }
            body {
                a.skip href="#main" { "Skip to content" }
                (content)
            }
        }
    }
}

/// A page without the navigation (sign-in, refusals).
pub fn bare_page(title: &str, body: Markup) -> Markup {
    shell(
        title,
        html! {
            main #main .login {
                h1 { (title) }
                (body)
                p { a href="/ui/incidents" { "Back to the console" } }
            }
        },
    )
}

pub fn csrf_field(token: &str) -> Markup {
    html! { input type="hidden" name="csrf" value=(token); }
}

/// A button that POSTs to `action` with the CSRF token.
pub fn post_button(csrf: &str, action: &str, label: &str, secondary: bool) -> Markup {
    html! {
        form.inline method="post" action=(action) {
            (csrf_field(csrf))
            @if secondary {
                button.secondary type="submit" { (label) }
            } @else {
                button type="submit" { (label) }
            }
        }
    }
}

pub fn error_box(message: &str) -> Markup {
    html! { div.error role="alert" { (message) } }
}

pub fn notice_box(message: &str) -> Markup {
    html! { div.notice role="status" { (message) } }
}

/// A table in a box that scrolls sideways on narrow screens (focusable, so the keyboard can
/// scroll it too).
pub fn table_wrap(label: &str, table: Markup) -> Markup {
    html! { div.table-wrap role="region" aria-label=(label) tabindex="0" { (table) } }
}

/// A time as UTC text, with how long ago.
pub fn time(t: DateTime<Utc>) -> Markup {
    html! {
        time datetime=(t.to_rfc3339()) title=(ago(t)) { (t.format("%Y-%m-%d %H:%M:%S UTC")) }
    }
}

/// `5 s ago`, `3 min ago`, `in 2 min`.
pub fn ago(t: DateTime<Utc>) -> String {
    let secs = (Utc::now() - t).num_seconds();
    let (n, future) = if secs < 0 {
        (-secs, true)
    } else {
        (secs, false)
    };
    let text = match n {
        0..=59 => format!("{n} s"),
        60..=3599 => format!("{} min", n / 60),
        3600..=86_399 => format!("{} h", n / 3600),
        _ => format!("{} d", n / 86_400),
    };
    if future {
        format!("in {text}")
    } else {
        format!("{text} ago")
    }
}

pub fn status_badge(s: IncidentStatus) -> Markup {
    let class = match s {
        IncidentStatus::Triggered => "badge b-bad",
        IncidentStatus::Acknowledged => "badge b-warn",
        IncidentStatus::Resolved => "badge b-ok",
    };
    html! { span class=(class) { (s.as_str()) } }
}

pub fn severity_badge(s: Severity) -> Markup {
    let class = match s {
        Severity::Critical | Severity::Error => "badge b-bad",
        Severity::Warning => "badge b-warn",
        Severity::Info => "badge b-info",
    };
    html! { span class=(class) { (s.as_str()) } }
}

pub fn state_badge(s: DeliveryState) -> Markup {
    let class = match s {
        DeliveryState::Delivered => "badge b-ok",
        DeliveryState::Pending => "badge b-info",
        DeliveryState::Failed => "badge b-warn",
        DeliveryState::Dead => "badge b-bad",
    };
    html! { span class=(class) { (crate::http::admin::ops::state_name(s)) } }
}

/// A link only for http(s) URLs; anything else (`javascript:`, `data:`) is shown as text.
pub fn safe_link(url: &str, label: &str) -> Markup {
    let lower = url.trim_start().to_ascii_lowercase();
    if lower.starts_with("https://") || lower.starts_with("http://") {
        html! { a href=(url) rel="noopener noreferrer" target="_blank" { (label) } }
    } else {
        html! { span { (label) " (" code { (url) } ")" } }
    }
}

/// A `<select>` with a label; `""` is "any".
pub fn select(name: &str, label: &str, options: &[&str], current: &str) -> Markup {
    html! {
        label {
            (label)
            select name=(name) {
                option value="" selected[current.is_empty()] { "any" }
                @for o in options {
                    option value=(o) selected[current == *o] { (o) }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_web_urls_become_links() {
        assert!(safe_link("https://x.example/a", "x")
            .into_string()
            .contains("href=\"https://x.example/a\""));
        let js = safe_link("javascript:alert(1)", "x").into_string();
        assert!(!js.contains("href"), "{js}");
        let data = safe_link(" DATA:text/html,<b>", "x").into_string();
        assert!(
            !data.contains("href") && data.contains("&lt;b&gt;"),
            "{data}"
        );
    }

    #[test]
    fn times_say_how_long_ago() {
        let now = Utc::now();
        assert_eq!(ago(now - chrono::Duration::seconds(5)), "5 s ago");
        assert_eq!(ago(now - chrono::Duration::minutes(3)), "3 min ago");
        assert!(
            ago(now + chrono::Duration::minutes(2) + chrono::Duration::seconds(5))
                .starts_with("in 2 min")
        );
    }
}
