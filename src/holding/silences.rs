//! Silences, as Alertmanager's v2 API has them (`matchers` of `name`, `value`, `isRegex`,
//! `isEqual`; `startsAt`, `endsAt`, `createdBy`, `comment`; `status.state`), so `amtool
//! silence` works against switchyard. The operations are plain functions on [`Holding`]
//! that the HTTP handlers (and any other front end) call: [`Holding::silences`],
//! [`Holding::silence`], [`Holding::put_silence`], [`Holding::expire_silence`].
//!
//! Silences made through the API live in the store (collection [`SILENCES`]: in Redis with
//! the redis store, shared by every instance); those of routes.yaml (`silences:`) live in the
//! config and are listed beside them. A silence is active from `startsAt` until `endsAt`,
//! then expired by itself; expired silences are kept [`DEFAULT_SILENCE_RETENTION`], then
//! forgotten.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use thiserror::Error;

use super::{Cause, Holding, HOLD_TIMERS};
use crate::config::matcher::{MatchOp, Matcher};
use crate::config::types::SilenceConfig;
use crate::model::Event;
use crate::router::table::field;
use crate::store::timers::When;
use crate::store::StoreError;

/// The store collection of silences made through the API.
pub const SILENCES: &str = "silence";
/// How long an expired silence is still listed (Alertmanager's `--data.retention`).
pub const DEFAULT_SILENCE_RETENTION: chrono::TimeDelta = chrono::TimeDelta::hours(120);
/// Most silences kept at once (active, pending and expired); a new one beyond is refused.
pub const DEFAULT_MAX_SILENCES: usize = 10_000;
/// Most matchers of one silence.
pub const DEFAULT_MAX_SILENCE_MATCHERS: usize = 64;
/// Most bytes of a silence's comment and of its author.
pub const DEFAULT_MAX_SILENCE_TEXT: usize = 4096;

/// One matcher of a silence, in the API's form.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SilenceMatcher {
    pub name: String,
    pub value: String,
    pub is_regex: bool,
    /// false: the matcher is negated (`!=`, `!~`). Default true.
    #[serde(default = "yes")]
    pub is_equal: bool,
}

fn yes() -> bool {
    true
}

impl SilenceMatcher {
    fn op(&self) -> MatchOp {
        match (self.is_regex, self.is_equal) {
            (false, true) => MatchOp::Equal,
            (false, false) => MatchOp::NotEqual,
            (true, true) => MatchOp::Regex,
            (true, false) => MatchOp::NotRegex,
        }
    }

    /// The API form of a parsed matcher.
    pub fn of(m: &Matcher) -> SilenceMatcher {
        SilenceMatcher {
            name: m.name.clone(),
            value: m.value.clone(),
            is_regex: matches!(m.op, MatchOp::Regex | MatchOp::NotRegex),
            is_equal: matches!(m.op, MatchOp::Equal | MatchOp::Regex),
        }
    }
}

/// A silence as the API takes it (`POST /api/v2/silences`): with `id`, an update.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PostableSilence {
    #[serde(default)]
    pub id: Option<String>,
    pub matchers: Vec<SilenceMatcher>,
    pub starts_at: DateTime<Utc>,
    pub ends_at: DateTime<Utc>,
    pub created_by: String,
    pub comment: String,
}

/// A silence as stored and shown.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Silence {
    pub id: String,
    pub matchers: Vec<SilenceMatcher>,
    pub starts_at: DateTime<Utc>,
    pub ends_at: DateTime<Utc>,
    pub created_by: String,
    pub comment: String,
    pub updated_at: DateTime<Utc>,
}

/// Where a silence is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SilenceState {
    Pending,
    Active,
    Expired,
}

impl Silence {
    pub fn state(&self, now: DateTime<Utc>) -> SilenceState {
        if now >= self.ends_at {
            SilenceState::Expired
        } else if now < self.starts_at {
            SilenceState::Pending
        } else {
            SilenceState::Active
        }
    }

    /// Whether this silence came from routes.yaml (it cannot be changed through the API).
    pub fn is_static(&self) -> bool {
        self.id.starts_with(STATIC_PREFIX)
    }
}

/// A silence with its state, as `GET /api/v2/silences` answers it.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct GettableSilence {
    #[serde(flatten)]
    pub silence: Silence,
    pub status: SilenceStatus,
}

#[derive(Debug, Serialize)]
pub struct SilenceStatus {
    pub state: SilenceState,
}

impl GettableSilence {
    pub fn of(silence: Silence, now: DateTime<Utc>) -> GettableSilence {
        let state = silence.state(now);
        GettableSilence {
            silence,
            status: SilenceStatus { state },
        }
    }
}

/// The ids of silences from routes.yaml begin with this.
const STATIC_PREFIX: &str = "config-";

/// Why a silence operation was refused (nothing changed).
#[derive(Debug, Error)]
pub enum SilenceError {
    #[error("{0}")]
    Invalid(String),
    #[error("no silence with id `{0}`")]
    NotFound(String),
    #[error("silence `{0}` is defined in routes.yaml: change it there and reload")]
    Static(String),
    #[error("silence `{0}` is expired already")]
    Expired(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A silence ready to match events.
#[derive(Debug, Clone)]
pub struct ActiveSilence {
    pub id: String,
    pub ends_at: DateTime<Utc>,
    pub starts_at: DateTime<Utc>,
    matchers: Vec<Matcher>,
}

impl ActiveSilence {
    /// Whether every matcher holds for `event` (labels, and the fields routes see).
    pub fn matches(&self, event: &Event) -> bool {
        self.matchers
            .iter()
            .all(|m| m.matches(field(event, &m.name)))
    }

    fn of(s: &Silence) -> Option<ActiveSilence> {
        let matchers = s
            .matchers
            .iter()
            .map(|m| Matcher::new(&m.name, m.op(), &m.value))
            .collect::<Result<Vec<_>, _>>()
            .ok()?;
        Some(ActiveSilence {
            id: s.id.clone(),
            starts_at: s.starts_at,
            ends_at: s.ends_at,
            matchers,
        })
    }
}

/// Every silence not expired at `now`, compiled (pending ones too: they begin by themselves).
pub(crate) fn compile(all: &[Silence], now: DateTime<Utc>) -> Vec<ActiveSilence> {
    all.iter()
        .filter(|s| s.ends_at > now)
        .filter_map(ActiveSilence::of)
        .collect()
}

/// Checks a silence's matchers and times as Alertmanager does.
fn validate(p: &PostableSilence, now: DateTime<Utc>) -> Result<(), SilenceError> {
    let invalid = |m: String| Err(SilenceError::Invalid(m));
    if p.matchers.is_empty() {
        return invalid("a silence needs at least one matcher".into());
    }
    if p.matchers.len() > DEFAULT_MAX_SILENCE_MATCHERS {
        return invalid(format!(
            "a silence has at most {DEFAULT_MAX_SILENCE_MATCHERS} matchers"
        ));
    }
    let mut all_match_empty = true;
    for m in &p.matchers {
        let compiled = Matcher::new(&m.name, m.op(), &m.value)
            .map_err(|e| SilenceError::Invalid(format!("invalid matcher: {e}")))?;
        all_match_empty &= compiled.matches("");
    }
    if all_match_empty {
        return invalid(
            "at least one matcher must not match the empty string (it would silence everything)"
                .into(),
        );
    }
    if p.ends_at <= p.starts_at {
        return invalid("endsAt must be after startsAt".into());
    }
    if p.ends_at <= now {
        return invalid("endsAt is in the past".into());
    }
    if p.comment.len() > DEFAULT_MAX_SILENCE_TEXT || p.created_by.len() > DEFAULT_MAX_SILENCE_TEXT {
        return invalid(format!(
            "comment and createdBy have at most {DEFAULT_MAX_SILENCE_TEXT} bytes"
        ));
    }
    if p.created_by.trim().is_empty() {
        return invalid("createdBy is required".into());
    }
    Ok(())
}

/// The silences of routes.yaml, checked (the message of the first problem, for
/// `file:line:col`; `Err((index, field, message))`).
pub fn static_silences(
    configs: &[SilenceConfig],
) -> Result<Vec<Silence>, (usize, &'static str, String)> {
    let mut out = Vec::with_capacity(configs.len());
    for (i, c) in configs.iter().enumerate() {
        let time = |field: &'static str, t: &str| {
            DateTime::parse_from_rfc3339(t.trim())
                .map(|t| t.with_timezone(&Utc))
                .map_err(|e| (i, field, format!("`{t}` is not an RFC 3339 time: {e}")))
        };
        let starts_at = match &c.starts_at {
            Some(t) => time("starts_at", t)?,
            None => DateTime::<Utc>::MIN_UTC,
        };
        let ends_at = time("ends_at", &c.ends_at)?;
        if ends_at <= starts_at {
            return Err((i, "ends_at", "ends_at must be after starts_at".into()));
        }
        let mut matchers = Vec::with_capacity(c.matchers.len());
        for m in &c.matchers {
            let m = Matcher::parse(m).map_err(|e| (i, "matchers", e.to_string()))?;
            matchers.push(SilenceMatcher::of(&m));
        }
        if matchers.is_empty() {
            return Err((i, "matchers", "a silence needs at least one matcher".into()));
        }
        let mut s = Silence {
            id: String::new(),
            matchers,
            starts_at,
            ends_at,
            created_by: c.created_by.clone().unwrap_or_else(|| "routes.yaml".into()),
            comment: c.comment.clone().unwrap_or_default(),
            updated_at: starts_at.max(DateTime::UNIX_EPOCH),
        };
        use sha2::Digest as _;
        let digest = sha2::Sha256::digest(serde_json::to_vec(&s).unwrap_or_default());
        s.id = format!("{STATIC_PREFIX}{}", &hex::encode(digest)[..24]);
        out.push(s);
    }
    Ok(out)
}

impl Holding {
    /// Every silence (the API's and routes.yaml's) not expired longer than
    /// [`DEFAULT_SILENCE_RETENTION`] ago, oldest first; older expired ones are forgotten.
    pub async fn silences(&self, now: DateTime<Utc>) -> Result<Vec<Silence>, SilenceError> {
        let stored = self
            .docs
            .list(SILENCES, DEFAULT_MAX_SILENCES.saturating_mul(2))
            .await?;
        let mut out: Vec<Silence> = self.statics().as_ref().clone();
        let mut forget = Vec::new();
        for (id, json) in stored {
            match serde_json::from_str::<Silence>(&json) {
                Ok(s) if s.ends_at + DEFAULT_SILENCE_RETENTION < now => forget.push(id),
                Ok(s) => out.push(s),
                Err(e) => tracing::warn!(silence = %id, error = %e, "unreadable silence skipped"),
            }
        }
        if !forget.is_empty() {
            self.docs.remove(SILENCES, &forget).await?;
        }
        out.sort_by(|a, b| (a.starts_at, &a.id).cmp(&(b.starts_at, &b.id)));
        Ok(out)
    }

    /// One silence by id.
    pub async fn silence(&self, id: &str) -> Result<Silence, SilenceError> {
        if let Some(s) = self.statics().iter().find(|s| s.id == id) {
            return Ok(s.clone());
        }
        let got = self.docs.get(SILENCES, &[id.to_string()]).await?;
        got.into_iter()
            .flatten()
            .next()
            .and_then(|j| serde_json::from_str(&j).ok())
            .ok_or_else(|| SilenceError::NotFound(id.to_string()))
    }

    /// Creates a silence (no `id`) or updates one (its `id`; an expired one cannot be
    /// changed). Answers its id. Holds it ends or shortens are released at its new end.
    pub async fn put_silence(
        &self,
        p: PostableSilence,
        now: DateTime<Utc>,
    ) -> Result<String, SilenceError> {
        validate(&p, now)?;
        let id = match p.id.as_deref().filter(|i| !i.is_empty()) {
            Some(id) => {
                let old = self.silence(id).await?;
                if old.is_static() {
                    return Err(SilenceError::Static(id.to_string()));
                }
                if old.state(now) == SilenceState::Expired {
                    return Err(SilenceError::Expired(id.to_string()));
                }
                id.to_string()
            }
            None => {
                let count = self
                    .docs
                    .list(SILENCES, DEFAULT_MAX_SILENCES + 1)
                    .await?
                    .len();
                if count >= DEFAULT_MAX_SILENCES {
                    return Err(SilenceError::Invalid(format!(
                        "at most {DEFAULT_MAX_SILENCES} silences are kept; expire some first"
                    )));
                }
                uuid::Uuid::now_v7().hyphenated().to_string()
            }
        };
        let s = Silence {
            id: id.clone(),
            matchers: p.matchers,
            starts_at: p.starts_at,
            ends_at: p.ends_at,
            created_by: p.created_by,
            comment: p.comment,
            updated_at: now,
        };
        let json = serde_json::to_string(&s).map_err(|e| SilenceError::Invalid(e.to_string()))?;
        self.docs.put(SILENCES, &[(id.clone(), json)]).await?;
        self.refresh_silences(now).await?;
        self.recheck(&Cause::Silence(id.clone()), s.ends_at.max(now))
            .await?;
        tracing::info!(silence = %id, ends_at = %s.ends_at, "silence saved");
        Ok(id)
    }

    /// Expires a silence now (Alertmanager's DELETE): incidents it held that are still open
    /// are notified.
    pub async fn expire_silence(&self, id: &str, now: DateTime<Utc>) -> Result<(), SilenceError> {
        let mut s = self.silence(id).await?;
        if s.is_static() {
            return Err(SilenceError::Static(id.to_string()));
        }
        if s.state(now) == SilenceState::Expired {
            return Err(SilenceError::Expired(id.to_string()));
        }
        if s.starts_at > now {
            s.starts_at = now;
        }
        s.ends_at = now;
        s.updated_at = now;
        let json = serde_json::to_string(&s).map_err(|e| SilenceError::Invalid(e.to_string()))?;
        self.docs.put(SILENCES, &[(id.to_string(), json)]).await?;
        self.refresh_silences(now).await?;
        self.recheck(&Cause::Silence(id.to_string()), now).await?;
        tracing::info!(silence = %id, "silence expired");
        Ok(())
    }

    /// Reads the silences again if the store's changed since the last read (or the active
    /// set moved on with time), so events are held by what is current.
    pub async fn refresh_silences(&self, now: DateTime<Utc>) -> Result<(), StoreError> {
        let version = self.docs.version(SILENCES).await?;
        let cached = self.cached_silences();
        let stale =
            cached.version != Some(version) || cached.active.iter().any(|s| s.ends_at <= now);
        if !stale {
            return Ok(());
        }
        let all = match self.silences(now).await {
            Ok(all) => all,
            Err(SilenceError::Store(e)) => return Err(e),
            Err(e) => return Err(StoreError::Unavailable(e.to_string())),
        };
        self.set_cached_silences(version, compile(&all, now));
        Ok(())
    }
}

/// Arms the hold timers of `keys` at `at` (replacing what they had).
pub(crate) async fn arm(h: &Holding, keys: &[String], at: DateTime<Utc>) -> Result<(), StoreError> {
    let armed = keys
        .iter()
        .map(|k| h.timers.schedule(HOLD_TIMERS, k, at, "", When::Replace));
    futures_util::future::try_join_all(armed).await?;
    Ok(())
}

/// The silences in force, shared by record calls.
#[derive(Debug, Clone, Default)]
pub struct CachedSilences {
    /// The store's version they were read at (None: never read).
    pub version: Option<u64>,
    pub active: Arc<Vec<ActiveSilence>>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn postable(matchers: Vec<SilenceMatcher>, from: i64, to: i64) -> PostableSilence {
        let t0 = DateTime::from_timestamp(1_800_000_000, 0).unwrap();
        PostableSilence {
            id: None,
            matchers,
            starts_at: t0 + chrono::TimeDelta::seconds(from),
            ends_at: t0 + chrono::TimeDelta::seconds(to),
            created_by: "me".into(),
            comment: "c".into(),
        }
    }

    fn m(name: &str, value: &str, is_regex: bool) -> SilenceMatcher {
        SilenceMatcher {
            name: name.into(),
            value: value.into(),
            is_regex,
            is_equal: true,
        }
    }

    #[test]
    fn silences_are_checked_as_alertmanager_checks_them() {
        let now = DateTime::from_timestamp(1_800_000_000, 0).unwrap();
        assert!(validate(&postable(vec![m("service", "batch", false)], 0, 60), now).is_ok());
        let err = |p| validate(&p, now).unwrap_err().to_string();
        assert!(err(postable(vec![], 0, 60)).contains("at least one matcher"));
        assert!(err(postable(vec![m("a", ".*", true)], 0, 60)).contains("empty string"));
        assert!(err(postable(vec![m("a", "(", true)], 0, 60)).contains("invalid matcher"));
        assert!(err(postable(vec![m("1a", "x", false)], 0, 60)).contains("invalid label name"));
        assert!(err(postable(vec![m("a", "x", false)], 60, 30)).contains("after startsAt"));
        assert!(err(postable(vec![m("a", "x", false)], -60, -1)).contains("in the past"));
    }

    #[test]
    fn state_follows_the_clock() {
        let p = postable(vec![m("a", "x", false)], 10, 20);
        let s = Silence {
            id: "x".into(),
            matchers: p.matchers,
            starts_at: p.starts_at,
            ends_at: p.ends_at,
            created_by: p.created_by,
            comment: p.comment,
            updated_at: p.starts_at,
        };
        let at = |d: i64| p.starts_at + chrono::TimeDelta::seconds(d - 10);
        assert_eq!(s.state(at(9)), SilenceState::Pending);
        assert_eq!(s.state(at(10)), SilenceState::Active);
        assert_eq!(s.state(at(20)), SilenceState::Expired);
    }

    #[test]
    fn static_silences_get_stable_ids_and_checked_times() {
        let c = SilenceConfig {
            matchers: vec!["service=\"batch\"".into()],
            starts_at: Some("2026-12-01T00:00:00Z".into()),
            ends_at: "2026-12-02T00:00:00Z".into(),
            comment: Some("migration".into()),
            created_by: None,
        };
        let a = static_silences(std::slice::from_ref(&c)).unwrap();
        let b = static_silences(std::slice::from_ref(&c)).unwrap();
        assert_eq!(a[0].id, b[0].id);
        assert!(a[0].is_static());
        assert_eq!(a[0].created_by, "routes.yaml");
        let mut bad = c.clone();
        bad.ends_at = "tomorrow".into();
        assert_eq!(static_silences(&[bad]).unwrap_err().1, "ends_at");
        let mut bad = c;
        bad.matchers = vec!["nope".into()];
        assert_eq!(static_silences(&[bad]).unwrap_err().1, "matchers");
    }
}
