//! `kind: email`: one message per event over SMTP (lettre), `multipart/alternative` with a
//! plain-text and an HTML part, to the `smtp.to` recipients, threaded per incident
//! (`In-Reply-To` the incident's first message); STARTTLS (default), TLS from the first byte,
//! or none. The relay's 5xx answers make the delivery dead at once (a refused
//! recipient stays refused); anything else is retried. `server.endpoint_policy` is checked
//! on the relay's addresses before each send.
//!
//! Limits kept: the subject at most [`MAX_SUBJECT`] characters (RFC 5322's 78-character
//! line, folded by lettre past that; mail clients cut long subjects anyway), the description
//! [`MAX_DESCRIPTION`], labels listed up to [`MAX_LABELS`], each cut with `…`.

use std::sync::Arc;
use std::time::Duration;

use lettre::message::{Mailbox, MultiPart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use std::net::SocketAddr;

use super::{changes_text, escape_html, headline, omitted, truncate, Exchange};
use crate::config::types::{SmtpConfig, SmtpSecurity};
use crate::delivery::policy::AddressPolicy;
use crate::model::delivery::Verdict;
use crate::model::Event;

/// Subject length.
pub const MAX_SUBJECT: usize = 200;
/// Description length.
pub const MAX_DESCRIPTION: usize = 10_000;
/// Labels listed; the rest are counted.
pub const MAX_LABELS: usize = 50;
const MAX_LABEL: usize = 200;

/// An email endpoint, ready to send: the relay connection settings and the addresses, checked
/// when the config loads. Its `Debug` shows the relay and the addresses, never the password.
#[derive(Clone)]
pub struct EmailSpec {
    host: String,
    port: u16,
    /// TLS settings naming `host`: the certificate is checked against the relay's name even
    /// though the connection goes to the address checked by the policy.
    tls: Tls,
    credentials: Option<Credentials>,
    timeout: Duration,
    from: Mailbox,
    to: Vec<Mailbox>,
}

impl std::fmt::Debug for EmailSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmailSpec")
            .field("relay", &format!("{}:{}", self.host, self.port))
            .field("from", &self.from.to_string())
            .field("to", &self.to.len())
            .finish()
    }
}

impl EmailSpec {
    /// The relay and addresses of `smtp:`; `Err` names the key at fault and why. `ca_file`
    /// is read here (its path already made absolute).
    pub fn build(cfg: &SmtpConfig, timeout: Duration) -> Result<EmailSpec, (&'static str, String)> {
        let host = cfg.host.trim().to_string();
        if host.is_empty() {
            return Err(("smtp.host", "required".into()));
        }
        let from: Mailbox = cfg
            .from
            .parse()
            .map_err(|e| ("smtp.from", format!("`{}`: {e}", cfg.from)))?;
        if cfg.to.is_empty() {
            return Err(("smtp.to", "at least one recipient".into()));
        }
        let to = cfg
            .to
            .iter()
            .map(|t| {
                t.parse::<Mailbox>()
                    .map_err(|e| ("smtp.to", format!("`{t}`: {e}")))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let port = cfg.port.unwrap_or(match cfg.security {
            SmtpSecurity::Starttls => 587,
            SmtpSecurity::Tls => 465,
            SmtpSecurity::None => 25,
        });
        let mut tls = TlsParameters::builder(host.clone());
        if let Some(path) = &cfg.ca_file {
            let pem = std::fs::read(path).map_err(|e| ("smtp.ca_file", format!("{path}: {e}")))?;
            let cert = Certificate::from_pem(&pem).map_err(|e| {
                (
                    "smtp.ca_file",
                    format!("{path}: not a PEM certificate: {e}"),
                )
            })?;
            tls = tls.add_root_certificate(cert);
        }
        let tls = tls
            .build_rustls()
            .map_err(|e| ("smtp.host", format!("TLS settings: {e}")))?;
        let tls = match cfg.security {
            SmtpSecurity::Starttls => Tls::Required(tls),
            SmtpSecurity::Tls => Tls::Wrapper(tls),
            SmtpSecurity::None => Tls::None,
        };
        let credentials = match (&cfg.username, &cfg.password) {
            (Some(u), Some(p)) => Some(Credentials::new(u.clone(), p.expose().to_string())),
            (None, None) => None,
            _ => return Err(("smtp.username", "username and password go together".into())),
        };
        Ok(EmailSpec {
            host,
            port,
            tls,
            credentials,
            timeout,
            from,
            to,
        })
    }
}

/// The labels listed (at most [`MAX_LABELS`], each cut), and the line counting the rest.
fn labels(event: &Event) -> (Vec<String>, Option<String>) {
    let l = &event.incident.labels;
    let shown = l
        .iter()
        .take(MAX_LABELS)
        .map(|(k, v)| truncate(&format!("{k}={v}"), MAX_LABEL))
        .collect();
    let more = omitted(l.len(), MAX_LABELS);
    (shown, more)
}

/// The subject, plain-text and HTML bodies of an event.
pub fn render(event: &Event) -> (String, String, String) {
    let inc = &event.incident;
    let subject = truncate(&headline(event), MAX_SUBJECT);
    let description = truncate(&inc.description, MAX_DESCRIPTION);
    let (labels, more) = labels(event);
    let facts = [
        ("Severity", inc.severity.as_str().to_string()),
        ("Status", inc.status.as_str().to_string()),
        ("Source", truncate(&event.source.name, MAX_LABEL)),
        ("Occurrences", inc.occurrences.to_string()),
        ("Started", inc.started_at.to_rfc3339()),
    ];
    let mut text = format!("{subject}\n\n");
    for (k, v) in &facts {
        text.push_str(&format!("{k}: {v}\n"));
    }
    if let Some(c) = changes_text(event) {
        text.push_str(&format!("Changed: {}\n", truncate(&c, MAX_LABEL * 5)));
    }
    if !description.trim().is_empty() {
        text.push_str(&format!("\n{description}\n"));
    }
    if !labels.is_empty() {
        text.push_str("\nLabels:\n");
        for l in labels.iter().chain(more.iter()) {
            text.push_str(&format!("  {l}\n"));
        }
    }
    for l in &inc.links {
        text.push_str(&format!("\n{}: {}", truncate(&l.label, MAX_LABEL), l.url));
    }
    text.push_str(&format!(
        "\n\n-- \nswitchyard · {} · {}\n",
        event.kind, inc.id
    ));

    let mut h = format!("<h2>{}</h2>\n<table>\n", escape_html(&subject));
    for (k, v) in &facts {
        h.push_str(&format!(
            "<tr><th align=\"left\">{k}</th><td>{}</td></tr>\n",
            escape_html(v)
        ));
    }
    h.push_str("</table>\n");
    if let Some(c) = changes_text(event) {
        h.push_str(&format!(
            "<p>Changed: {}</p>\n",
            escape_html(&truncate(&c, MAX_LABEL * 5))
        ));
    }
    if !description.trim().is_empty() {
        h.push_str(&format!(
            "<p style=\"white-space: pre-wrap\">{}</p>\n",
            escape_html(&description)
        ));
    }
    if !labels.is_empty() {
        h.push_str("<p>");
        for l in &labels {
            h.push_str(&format!("<code>{}</code> ", escape_html(l)));
        }
        if let Some(m) = &more {
            h.push_str(&escape_html(m));
        }
        h.push_str("</p>\n");
    }
    for l in inc.links.iter().filter(|l| l.url.starts_with("http")) {
        h.push_str(&format!(
            "<p><a href=\"{}\">{}</a></p>\n",
            escape_html(&l.url),
            escape_html(&truncate(
                if l.label.is_empty() { &l.url } else { &l.label },
                MAX_LABEL
            ))
        ));
    }
    h.push_str(&format!(
        "<p style=\"color:#888\">switchyard · {} · {}</p>\n",
        event.kind,
        escape_html(&inc.id)
    ));
    (subject, text, h)
}

/// The message of an event. The incident's first message has the Message-ID
/// `<incident id@sender's domain>`; later ones answer it (`In-Reply-To`, `References`), so mail
/// clients show one thread per incident.
pub fn message(spec: &EmailSpec, event: &Event) -> Result<Message, String> {
    let (subject, text, html) = render(event);
    let domain = spec.from.email.domain();
    let thread = format!("<{}@{domain}>", event.incident.id);
    let mut b = Message::builder().from(spec.from.clone()).subject(subject);
    if event.kind == crate::model::EventType::Created {
        b = b.message_id(Some(thread));
    } else {
        b = b
            .message_id(Some(format!("<{}@{domain}>", event.id)))
            .in_reply_to(thread.clone())
            .references(thread);
    }
    for to in &spec.to {
        b = b.to(to.clone());
    }
    b.multipart(MultiPart::alternative_plain_html(text, html))
        .map_err(|e| format!("the message could not be built: {e}"))
}

/// The relay's address to connect to: its name resolved once, every address checked
/// against the policy, the first one taken (the connection goes to the address checked, so
/// DNS cannot route around the policy between the check and the connection).
async fn relay_address(spec: &EmailSpec, policy: AddressPolicy) -> Result<SocketAddr, String> {
    let addrs: Vec<SocketAddr> = tokio::net::lookup_host((spec.host.as_str(), spec.port))
        .await
        .map_err(|e| format!("{}: {e}", spec.host))?
        .collect();
    for a in &addrs {
        if let Some(why) = policy.refuses(a.ip()) {
            return Err(format!("refused by the endpoint policy: {why}"));
        }
    }
    addrs
        .first()
        .copied()
        .ok_or_else(|| format!("{}: no address", spec.host))
}

/// A connection to `addr` with the relay's TLS settings and credentials.
fn mailer(spec: &EmailSpec, addr: SocketAddr) -> AsyncSmtpTransport<Tokio1Executor> {
    let mut b = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(addr.ip().to_string())
        .port(addr.port())
        .tls(spec.tls.clone())
        .timeout(Some(spec.timeout));
    if let Some(c) = &spec.credentials {
        b = b.credentials(c.clone());
    }
    b.build()
}

/// Sends the event's message.
pub async fn deliver(spec: &Arc<EmailSpec>, policy: AddressPolicy, event: &Event) -> Exchange {
    let fail = |verdict, error: String, requests| Exchange {
        verdict,
        response: None,
        error: Some(error),
        requests,
    };
    let retry = Verdict::Retry { retry_after: None };
    let msg = match message(spec, event) {
        Ok(m) => m,
        Err(e) => return fail(Verdict::Fatal, e, 0),
    };
    let addr = match relay_address(spec, policy).await {
        Ok(addr) => addr,
        Err(e) => return fail(retry, e, 0),
    };
    match mailer(spec, addr).send(msg).await {
        Ok(resp) => {
            let mut o = Exchange::success(None, 1);
            o.response = Some(super::Response {
                status: u16::from(resp.code()),
                retry_after: None,
                body: bytes::Bytes::from(resp.message().collect::<Vec<_>>().join(" ")),
            });
            o
        }
        Err(e) if e.is_permanent() => fail(Verdict::Fatal, format!("SMTP: {e}"), 1),
        Err(e) => fail(retry, format!("SMTP: {e}"), 1),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::delivery::kinds::tests::event;
    use crate::model::EventType;

    fn cfg(yaml: &str) -> SmtpConfig {
        serde_yaml::from_str(yaml).unwrap()
    }

    #[test]
    fn plain_and_html_parts_say_the_same_and_html_is_escaped() {
        let (subject, text, h) = render(&event(EventType::Created));
        assert_eq!(subject, "[CRITICAL] Disk full on db-1");
        assert!(
            text.contains("Severity: critical\n")
                && text.contains("Only 2% left on /var <see runbook>")
        );
        assert!(
            h.contains("Only 2% left on /var &lt;see runbook&gt;"),
            "{h}"
        );
        assert!(h.contains("<a href=\"https://runbooks.example.com/disk\">Runbook</a>"));
    }

    #[test]
    fn settings_are_checked_when_the_config_loads() {
        let t = Duration::from_secs(10);
        let ok = EmailSpec::build(
            &cfg(
                "{host: smtp.example.com, from: 'switchyard <a@example.com>', to: [b@example.com]}",
            ),
            t,
        )
        .unwrap();
        assert_eq!(ok.port, 587);
        let e = |y: &str| EmailSpec::build(&cfg(y), t).unwrap_err();
        assert_eq!(
            e("{host: h, from: 'not an address', to: [b@example.com]}").0,
            "smtp.from"
        );
        assert_eq!(e("{host: h, from: a@example.com, to: []}").0, "smtp.to");
        assert_eq!(
            e("{host: h, from: a@example.com, to: [b@example.com], username: u}").0,
            "smtp.username"
        );
        assert_eq!(
            e("{host: h, from: a@example.com, to: [b@example.com], ca_file: /nonexistent.pem}").0,
            "smtp.ca_file"
        );
        let d = format!("{:?}", EmailSpec::build(&cfg("{host: h, from: a@example.com, to: [b@example.com], username: u, password: TOPSECRET}"), t).unwrap());
        assert!(!d.contains("TOPSECRET"), "{d}");
    }
}
