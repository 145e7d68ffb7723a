//! Notification channels the host sends on: email over SMTP (lettre; STARTTLS or TLS, with
//! authentication), Slack incoming webhooks and Microsoft Teams workflow webhooks. Each send
//! ends sent, or with an error that says whether trying again can help and when.
//!
//! Webhook URLs and SMTP passwords are [`Secret`]s: never logged, never shown in an error.

use crate::Secret;
use lettre::message::header::ContentType;
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message as Email, Tokio1Executor};
use serde::Deserialize;
use std::time::Duration;

/// How long one send may take.
const SEND_TIMEOUT: Duration = Duration::from_secs(30);

/// `[tenants.T.notifications.channels.NAME]`: where notifications go.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(tag = "kind", rename_all = "kebab-case", deny_unknown_fields)]
pub enum ChannelConfig {
    /// Email through an SMTP relay.
    Email(EmailChannel),
    /// A Slack incoming webhook (one channel of one workspace).
    Slack(WebhookChannel),
    /// A Microsoft Teams workflow webhook ("When a Teams webhook request is received").
    Teams(WebhookChannel),
}

/// How the SMTP connection is secured.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum SmtpSecurity {
    /// Plain connection upgraded with STARTTLS, which is required (port 587).
    #[default]
    Starttls,
    /// TLS from the first byte (SMTPS, port 465).
    Tls,
    /// No TLS: only for a relay on this machine's network (`allow_private_network`).
    None,
}

/// An SMTP relay.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct EmailChannel {
    /// The relay's host name (also the name its certificate must carry).
    pub host: String,
    /// Default: 587 with STARTTLS, 465 with TLS, 25 without (a number, or text such as `"${SMTP_PORT}"`).
    #[serde(default, deserialize_with = "port")]
    #[schemars(with = "Option<u16>")]
    pub port: Option<u16>,
    /// How the connection is secured (default: STARTTLS, required).
    #[serde(default)]
    pub security: SmtpSecurity,
    /// The SMTP login (with `password`).
    #[serde(default)]
    pub username: Option<Secret>,
    /// The SMTP password (`${secret:NAME}`).
    #[serde(default)]
    pub password: Option<Secret>,
    /// The sender (`Tenure <tenure@example.com>`).
    pub from: String,
    /// A PEM file of the CA that signed the relay's certificate, besides the public roots
    /// (empty: none).
    #[serde(default)]
    pub ca_file: Option<String>,
    /// Allows a relay without TLS (on a private network) to be configured.
    #[serde(default)]
    pub allow_private_network: bool,
    /// Messages per minute at most on this channel.
    #[serde(default = "default_per_minute")]
    pub per_minute: u32,
}

/// A chat webhook.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct WebhookChannel {
    /// The webhook's URL (a secret: whoever has it can post).
    pub webhook_url: Secret,
    /// Allows a webhook on a loopback or private address (tests, an internal relay).
    #[serde(default)]
    pub allow_private_network: bool,
    /// Messages per minute at most on this channel (Slack allows about one a second).
    #[serde(default = "default_per_minute")]
    pub per_minute: u32,
}

/// A port as a number or as text (what `${VAR}` interpolation gives).
fn port<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<u16>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Port {
        Number(u16),
        Text(String),
    }
    match Option::<Port>::deserialize(d)? {
        None => Ok(None),
        Some(Port::Number(n)) => Ok(Some(n)),
        Some(Port::Text(t)) if t.trim().is_empty() => Ok(None),
        Some(Port::Text(t)) => t
            .trim()
            .parse()
            .map(Some)
            .map_err(|_| serde::de::Error::custom(format!("port: {t:?} is not a port number"))),
    }
}

fn default_per_minute() -> u32 {
    30
}

impl ChannelConfig {
    /// Messages per minute at most.
    pub fn per_minute(&self) -> u32 {
        match self {
            ChannelConfig::Email(e) => e.per_minute,
            ChannelConfig::Slack(w) | ChannelConfig::Teams(w) => w.per_minute,
        }
        .max(1)
    }

    /// Whether messages on this channel go to addresses (email) rather than a chat channel.
    pub fn addressed(&self) -> bool {
        matches!(self, ChannelConfig::Email(_))
    }

    /// Problems with the settings, each naming the setting (`None`: fine).
    pub fn check(&self) -> Result<(), String> {
        match self {
            ChannelConfig::Email(e) => {
                e.from
                    .parse::<lettre::message::Mailbox>()
                    .map_err(|err| format!("from: {:?} is not a mailbox ({err})", e.from))?;
                if e.security == SmtpSecurity::None && !e.allow_private_network {
                    return Err("security: \"none\" sends in the clear; allowed only with \
                        allow_private_network = true (a relay on this machine's network)"
                        .into());
                }
                if e.username.is_some() != e.password.is_some() {
                    return Err("username and password: give both or neither".into());
                }
                Ok(())
            }
            ChannelConfig::Slack(w) | ChannelConfig::Teams(w) => {
                let url = url::Url::parse(w.webhook_url.expose())
                    .map_err(|e| format!("webhook_url: not a URL ({e})"))?;
                if url.scheme() != "https" && !w.allow_private_network {
                    return Err("webhook_url: must be https".into());
                }
                if !w.allow_private_network {
                    crate::egress::check_literal(&url).map_err(|e| format!("webhook_url: {e}"))?;
                }
                Ok(())
            }
        }
    }
}

/// One message, rendered.
#[derive(Debug, Clone)]
pub struct Message {
    /// A stable id (the same on every attempt): the email's `Message-ID`.
    pub id: String,
    /// Email addresses (ignored by chat channels).
    pub to: Vec<String>,
    pub subject: String,
    pub body: String,
}

/// Why a message was not sent.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SendError {
    /// Worth trying again later (a timeout, a 5xx, a 4xx SMTP reply).
    #[error("{0}")]
    Transient(String),
    /// The channel asked to wait this long.
    #[error("rate limited for {wait:?}: {detail}")]
    RateLimited { wait: Duration, detail: String },
    /// Trying again cannot help (a rejected address, a deleted webhook, a bad payload).
    #[error("{0}")]
    Permanent(String),
}

/// Sends messages on channels.
#[derive(Clone)]
pub struct Notifier {
    client: reqwest::Client,
    public_client: reqwest::Client,
}

impl Notifier {
    pub fn new() -> Result<Notifier, SendError> {
        crate::install_crypto_provider();
        let builder = || {
            reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .timeout(SEND_TIMEOUT)
                .user_agent(concat!("tenure/", env!("CARGO_PKG_VERSION")))
        };
        let failed = |e: reqwest::Error| SendError::Permanent(format!("cannot build the HTTP client: {e}"));
        Ok(Notifier {
            client: builder().build().map_err(failed)?,
            public_client: builder()
                .dns_resolver(std::sync::Arc::new(crate::egress::PublicOnly))
                .build()
                .map_err(failed)?,
        })
    }

    /// Sends `message` on `channel`; a short, secret-free summary of what happened.
    pub async fn send(&self, channel: &ChannelConfig, message: &Message) -> Result<String, SendError> {
        match channel {
            ChannelConfig::Email(e) => send_email(e, message).await,
            ChannelConfig::Slack(w) => {
                let text = format!("*{}*\n{}", message.subject, message.body);
                self.post(w, &serde_json::json!({ "text": text }), "Slack").await
            }
            ChannelConfig::Teams(w) => {
                let card = serde_json::json!({
                    "type": "message",
                    "attachments": [{
                        "contentType": "application/vnd.microsoft.card.adaptive",
                        "contentUrl": null,
                        "content": {
                            "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
                            "type": "AdaptiveCard",
                            "version": "1.4",
                            "body": [
                                { "type": "TextBlock", "text": message.subject, "weight": "Bolder",
                                  "size": "Medium", "wrap": true },
                                { "type": "TextBlock", "text": message.body, "wrap": true }
                            ]
                        }
                    }]
                });
                self.post(w, &card, "Teams").await
            }
        }
    }

    async fn post(
        &self,
        w: &WebhookChannel,
        body: &serde_json::Value,
        service: &str,
    ) -> Result<String, SendError> {
        let client = if w.allow_private_network {
            &self.client
        } else {
            &self.public_client
        };
        let resp = client
            .post(w.webhook_url.expose())
            .json(body)
            .send()
            .await
            .map_err(|e| SendError::Transient(format!("{service} webhook: {}", e.without_url())))?;
        let status = resp.status().as_u16();
        let retry_after = resp
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok());
        let text: String = resp.text().await.unwrap_or_default().chars().take(200).collect();
        let detail = format!("{service} answered {status}: {text}");
        match status {
            200..=299 => Ok(format!("posted to {service} ({status})")),
            429 => Err(SendError::RateLimited {
                wait: Duration::from_secs(retry_after.unwrap_or(30).clamp(1, 3600)),
                detail,
            }),
            408 | 500..=599 => Err(SendError::Transient(detail)),
            // Slack: invalid_payload, no_text, channel_not_found, channel_is_archived,
            // action_prohibited, no_service; Teams: a bad card, a deleted workflow.
            _ => Err(SendError::Permanent(detail)),
        }
    }
}

async fn send_email(e: &EmailChannel, m: &Message) -> Result<String, SendError> {
    let permanent = |what: &str, err: &dyn std::fmt::Display| SendError::Permanent(format!("{what}: {err}"));
    if m.to.is_empty() {
        return Err(SendError::Permanent("no recipient".into()));
    }
    let mut builder = Email::builder()
        .from(e.from.parse().map_err(|err| permanent("from", &err))?)
        .subject(m.subject.clone())
        .message_id(Some(format!("<{}@tenure>", m.id)))
        .header(ContentType::TEXT_PLAIN);
    for to in &m.to {
        builder = builder.to(to
            .parse()
            .map_err(|err| permanent(&format!("recipient {to:?}"), &err))?);
    }
    let email = builder
        .body(m.body.clone())
        .map_err(|err| permanent("message", &err))?;
    let tls = || -> Result<TlsParameters, SendError> {
        let mut params = TlsParameters::builder(e.host.clone());
        // An empty path (an unset `${VAR}`) is no file.
        if let Some(path) = e.ca_file.as_deref().filter(|p| !p.is_empty()) {
            let pem = std::fs::read(path).map_err(|err| permanent(&format!("ca_file {path}"), &err))?;
            let ca =
                Certificate::from_pem(&pem).map_err(|err| permanent(&format!("ca_file {path}"), &err))?;
            params = params.add_root_certificate(ca);
        }
        params.build_rustls().map_err(|err| permanent("TLS", &err))
    };
    let (port, tls) = match e.security {
        SmtpSecurity::Starttls => (587, Tls::Required(tls()?)),
        SmtpSecurity::Tls => (465, Tls::Wrapper(tls()?)),
        SmtpSecurity::None => (25, Tls::None),
    };
    let mut transport = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(e.host.clone())
        .port(e.port.unwrap_or(port))
        .tls(tls)
        .timeout(Some(SEND_TIMEOUT));
    if let (Some(user), Some(password)) = (&e.username, &e.password) {
        transport = transport.credentials(Credentials::new(
            user.expose().to_string(),
            password.expose().to_string(),
        ));
    }
    // The whole exchange is bounded, whatever the relay does (lettre's timeout is per read).
    let sent = tokio::time::timeout(SEND_TIMEOUT, transport.build().send(email))
        .await
        .map_err(|_| {
            SendError::Transient(format!("SMTP: {} did not answer within {SEND_TIMEOUT:?}", e.host))
        })?;
    let response = sent.map_err(|err| {
        let text = err.to_string();
        // A 5xx reply, or a certificate the relay's name or our roots do not vouch for: the
        // settings must change before a retry can work.
        if err.is_permanent() || err.is_tls() || text.contains("certificate") {
            SendError::Permanent(format!("SMTP: {text}"))
        } else {
            SendError::Transient(format!("SMTP: {text}"))
        }
    })?;
    Ok(format!(
        "accepted by {} for {} recipient(s) ({})",
        e.host,
        m.to.len(),
        response.code()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn channel(toml_text: &str) -> ChannelConfig {
        toml::from_str(toml_text).expect("channel")
    }

    #[test]
    fn settings_are_checked_naming_the_setting() {
        let clear = channel(
            "kind = \"email\"\nhost = \"smtp.example.com\"\nsecurity = \"none\"\nfrom = \"t@x.test\"\n",
        );
        assert!(clear.check().unwrap_err().starts_with("security"));
        let half =
            channel("kind = \"email\"\nhost = \"smtp.example.com\"\nfrom = \"t@x.test\"\nusername = \"u\"\n");
        assert!(half.check().unwrap_err().starts_with("username and password"));
        let bad_from = channel("kind = \"email\"\nhost = \"smtp.example.com\"\nfrom = \"nobody\"\n");
        assert!(bad_from.check().unwrap_err().starts_with("from"));
        let plain = channel("kind = \"slack\"\nwebhook_url = \"http://hooks.slack.com/services/T/B/X\"\n");
        assert!(plain.check().unwrap_err().contains("https"));
        let private = channel("kind = \"teams\"\nwebhook_url = \"https://10.0.0.5/workflows/x\"\n");
        assert!(private.check().unwrap_err().starts_with("webhook_url"));
        let ok = channel("kind = \"slack\"\nwebhook_url = \"https://hooks.slack.com/services/T/B/X\"\n");
        assert_eq!(ok.check(), Ok(()));
        assert!(!ok.addressed() && ok.per_minute() == 30);
        let text_port = channel("kind = \"email\"\nhost = \"h\"\nport = \"2525\"\nfrom = \"t@x.test\"\n");
        assert!(matches!(text_port, ChannelConfig::Email(e) if e.port == Some(2525)));
        let bad: Result<ChannelConfig, _> =
            toml::from_str("kind = \"email\"\nhost = \"h\"\nport = \"smtp\"\nfrom = \"t@x.test\"\n");
        assert!(bad.is_err());
    }
}
