//! A local SMTP server for the email tests: speaks enough ESMTP for a real client (EHLO,
//! STARTTLS, AUTH PLAIN, MAIL, RCPT, DATA, RSET, NOOP, QUIT), over plain TCP upgraded with
//! STARTTLS or TLS from the first byte, with a certificate made on the spot; records every
//! message and answers from a script (a 5xx to refuse the next message).

use std::sync::{Arc, Mutex};

use base64::Engine as _;
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

use crate::support::wait_for;

/// One message the sink took.
#[derive(Debug, Clone, Default)]
pub struct Mail {
    /// The message arrived over TLS (STARTTLS or from the first byte).
    pub tls: bool,
    /// `user:password` of AUTH PLAIN.
    pub auth: Option<String>,
    pub from: String,
    pub to: Vec<String>,
    /// The message as sent (headers and body, dot-unstuffed).
    pub data: String,
}

/// How the sink expects clients to connect.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Plain, offering STARTTLS.
    Starttls,
    /// TLS from the first byte.
    Tls,
}

#[derive(Default)]
struct State {
    mails: Vec<Mail>,
    /// The next DATA answers, before the default `250`.
    refuse: Vec<String>,
}

pub struct SmtpSink {
    pub port: u16,
    /// The certificate's PEM (for `smtp.ca_file`).
    pub ca_pem: String,
    state: Arc<Mutex<State>>,
}

impl SmtpSink {
    /// Starts on 127.0.0.1 (a thread of its own).
    pub fn start(mode: Mode) -> SmtpSink {
        let c = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_string()]).unwrap();
        let ca_pem = c.cert.pem();
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(
                vec![c.cert.der().clone()],
                rustls_pki_types::PrivateKeyDer::Pkcs8(c.signing_key.serialize_der().into()),
            )
            .unwrap();
        let acceptor = TlsAcceptor::from(Arc::new(config));
        let std_listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        std_listener.set_nonblocking(true).unwrap();
        let port = std_listener.local_addr().unwrap().port();
        let state = Arc::new(Mutex::new(State::default()));
        let shared = state.clone();
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let listener = TcpListener::from_std(std_listener).unwrap();
                loop {
                    let Ok((tcp, _)) = listener.accept().await else {
                        continue;
                    };
                    let (acceptor, state) = (acceptor.clone(), shared.clone());
                    tokio::spawn(async move {
                        match mode {
                            Mode::Starttls => {
                                let mut r = BufReader::new(tcp);
                                let mut mail = Mail::default();
                                if session(&mut r, &mut mail, &state, true, true).await
                                    == Next::StartTls
                                {
                                    if let Ok(tls) = acceptor.accept(r.into_inner()).await {
                                        mail.tls = true;
                                        let mut r = BufReader::new(tls);
                                        session(&mut r, &mut mail, &state, false, false).await;
                                    }
                                }
                            }
                            Mode::Tls => {
                                if let Ok(tls) = acceptor.accept(tcp).await {
                                    let mut mail = Mail {
                                        tls: true,
                                        ..Mail::default()
                                    };
                                    let mut r = BufReader::new(tls);
                                    session(&mut r, &mut mail, &state, true, false).await;
                                }
                            }
                        }
                    });
                }
            });
        });
        SmtpSink {
            port,
            ca_pem,
            state,
        }
    }

    /// The next message is refused with this reply (e.g. `550 5.1.1 no such user`).
    pub fn refuse_next(&self, reply: &str) {
        self.state.lock().unwrap().refuse.push(reply.to_string());
    }

    pub fn mails(&self) -> Vec<Mail> {
        self.state.lock().unwrap().mails.clone()
    }

    /// Waits until `n` messages were taken.
    pub async fn wait_mails(&self, n: usize) -> Vec<Mail> {
        wait_for(&format!("{n} mails"), || {
            let m = self.mails();
            (m.len() >= n).then_some(m)
        })
        .await
    }
}

#[derive(Debug, PartialEq, Eq)]
enum Next {
    Done,
    StartTls,
}

/// One SMTP conversation until QUIT (or STARTTLS, which the caller upgrades).
async fn session<S: AsyncRead + AsyncWrite + Unpin>(
    r: &mut BufReader<S>,
    mail: &mut Mail,
    state: &Mutex<State>,
    greet: bool,
    offer_starttls: bool,
) -> Next {
    async fn say<S: AsyncRead + AsyncWrite + Unpin>(r: &mut BufReader<S>, line: &str) {
        let _ = r
            .get_mut()
            .write_all(format!("{line}\r\n").as_bytes())
            .await;
        let _ = r.get_mut().flush().await;
    }
    if greet {
        say(r, "220 sink ESMTP").await;
    }
    let mut line = String::new();
    loop {
        line.clear();
        if r.read_line(&mut line).await.unwrap_or(0) == 0 {
            return Next::Done;
        }
        let cmd = line.trim_end().to_string();
        let upper = cmd.to_ascii_uppercase();
        if upper.starts_with("EHLO") || upper.starts_with("HELO") {
            if offer_starttls {
                say(r, "250-sink\r\n250-8BITMIME\r\n250 STARTTLS").await;
            } else {
                say(r, "250-sink\r\n250-8BITMIME\r\n250 AUTH PLAIN").await;
            }
        } else if upper == "STARTTLS" && offer_starttls {
            say(r, "220 go ahead").await;
            return Next::StartTls;
        } else if let Some(b64) = upper.strip_prefix("AUTH PLAIN ").map(|_| &cmd[11..]) {
            let raw = base64::engine::general_purpose::STANDARD
                .decode(b64.trim())
                .unwrap_or_default();
            let parts: Vec<String> = raw
                .split(|b| *b == 0)
                .map(|p| String::from_utf8_lossy(p).into_owned())
                .collect();
            mail.auth = Some(format!(
                "{}:{}",
                parts.get(1).cloned().unwrap_or_default(),
                parts.get(2).cloned().unwrap_or_default()
            ));
            say(r, "235 2.7.0 ok").await;
        } else if upper.starts_with("MAIL FROM:") {
            mail.from = cmd[10..].trim().to_string();
            mail.to.clear();
            say(r, "250 ok").await;
        } else if upper.starts_with("RCPT TO:") {
            mail.to.push(cmd[8..].trim().to_string());
            say(r, "250 ok").await;
        } else if upper == "DATA" {
            say(r, "354 end with .").await;
            let mut data = String::new();
            loop {
                line.clear();
                if r.read_line(&mut line).await.unwrap_or(0) == 0 {
                    return Next::Done;
                }
                if line == ".\r\n" || line == ".\n" {
                    break;
                }
                data.push_str(line.strip_prefix('.').unwrap_or(&line));
            }
            let refusal = {
                let mut s = state.lock().unwrap();
                if s.refuse.is_empty() {
                    None
                } else {
                    Some(s.refuse.remove(0))
                }
            };
            match refusal {
                Some(reply) => say(r, &reply).await,
                None => {
                    mail.data = data;
                    state.lock().unwrap().mails.push(mail.clone());
                    say(r, "250 2.0.0 queued").await;
                }
            }
        } else if upper == "QUIT" {
            say(r, "221 bye").await;
            return Next::Done;
        } else if upper == "RSET" || upper == "NOOP" {
            say(r, "250 ok").await;
        } else {
            say(r, "502 not implemented").await;
        }
    }
}

/// The text of a quoted-printable part.
pub fn unquote(s: &str) -> String {
    let joined = s.replace("=\r\n", "").replace("=\n", "");
    let bytes = joined.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'=' && i + 2 < bytes.len() {
            if let Ok(b) = u8::from_str_radix(&joined[i + 1..i + 3], 16) {
                out.push(b);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}
