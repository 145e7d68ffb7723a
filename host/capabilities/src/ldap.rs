//! LDAP through a named connection, with `ldap3`.
//!
//! The host binds with the connection's stored credentials over LDAPS or
//! StartTLS, keeps one bound connection per (tenant, connection), and hands
//! plugins only entries and result codes. Passwords a plugin asks for are
//! generated here and never cross into the plugin.

use crate::config::{ConnectionConfig, LdapConnection, TenantConfig};
use crate::grants::EffectiveGrants;
use crate::secret::Secret;
use ldap3::adapters::{Adapter, EntriesOnly, PagedResults};
use ldap3::{Ldap, LdapConnAsync, LdapConnSettings, Mod, Scope, SearchEntry};
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Default bound on entries one search returns.
pub const DEFAULT_SEARCH_LIMIT: u32 = 10_000;
/// The most entries one search returns, whatever the plugin asks for.
pub const MAX_SEARCH_LIMIT: u32 = 100_000;
/// The most bytes (names and values) one search returns.
pub const MAX_SEARCH_BYTES: usize = 64 * 1024 * 1024;
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

/// How a generated password becomes an attribute value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PasswordEncoding {
    /// `"password"` in UTF-16LE, as Active Directory's `unicodePwd` wants.
    AdUnicodePwd,
    Utf8,
}

/// A value a plugin sends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LdapValue {
    Text(String),
    Bytes(Vec<u8>),
    /// The host generates a strong password and hands it to the [`PasswordSink`].
    GeneratedPassword(PasswordEncoding),
}

#[derive(Debug, Clone)]
pub struct LdapAttribute {
    pub name: String,
    pub values: Vec<LdapValue>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ModOp {
    Add,
    Delete,
    Replace,
}

#[derive(Debug, Clone)]
pub struct LdapModification {
    pub op: ModOp,
    pub attribute: String,
    pub values: Vec<LdapValue>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SearchScope {
    Base,
    OneLevel,
    Subtree,
}

#[derive(Debug, Clone)]
pub struct SearchRequest {
    pub connection: String,
    pub base: String,
    pub scope: SearchScope,
    pub filter: String,
    pub attributes: Vec<String>,
    /// RFC 2696 page size; 0 = no paging.
    pub page_size: u32,
    /// Most entries to return; 0 = [`DEFAULT_SEARCH_LIMIT`].
    pub limit: u32,
}

/// One entry: text attributes, and binary ones (objectGUID) as bytes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LdapEntry {
    pub dn: String,
    pub text: Vec<(String, Vec<String>)>,
    pub binary: Vec<(String, Vec<Vec<u8>>)>,
}

/// Why an LDAP call failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LdapError {
    #[error("{0}")]
    Denied(String),
    /// The server's result (RFC 4511 code, diagnostic message, matched DN).
    #[error("LDAP result {code}: {message}")]
    Failed {
        code: u32,
        message: String,
        matched_dn: String,
    },
    #[error("LDAP transport error: {0}")]
    Transport(String),
    #[error("LDAP operation timed out")]
    Timeout,
}

/// What a connection lets a plugin touch: its subtrees and writable attributes.
struct Policy<'c> {
    name: &'c str,
    conn: &'c LdapConnection,
}

impl<'c> Policy<'c> {
    fn of(grants: &EffectiveGrants, tenant: &'c TenantConfig, name: &'c str) -> Result<Self, LdapError> {
        grants.check_ldap(name).map_err(|d| LdapError::Denied(d.0))?;
        match tenant.connections.get(name) {
            Some(ConnectionConfig::Ldap(conn)) => Ok(Policy { name, conn }),
            _ => Err(LdapError::Denied(format!(
                "connection {name:?} is not an ldap connection"
            ))),
        }
    }

    /// Refuses a DN outside the connection's `base_dns` (compared as normalised DNs).
    fn inside(&self, dn: &str, what: &str) -> Result<(), LdapError> {
        let bases = &self.conn.base_dns;
        if let Err(e) = crate::dn::normalize(dn) {
            // LDAP's invalidDNSyntax, as a server would answer.
            return Err(LdapError::Failed {
                code: 34,
                message: format!("{what}: {e}"),
                matched_dn: String::new(),
            });
        }
        if bases.is_empty() || bases.iter().any(|base| crate::dn::is_under(dn, base)) {
            return Ok(());
        }
        Err(LdapError::Denied(format!(
            "{what} {dn:?} is outside connection {:?}'s base_dns ({})",
            self.name,
            bases.join("; ")
        )))
    }

    /// Refuses an attribute not in the connection's `writable_attributes`.
    fn writable(&self, attribute: &str) -> Result<(), LdapError> {
        let allowed = &self.conn.writable_attributes;
        if allowed.is_empty() || allowed.iter().any(|a| a.eq_ignore_ascii_case(attribute)) {
            return Ok(());
        }
        Err(LdapError::Denied(format!(
            "attribute {attribute:?} is not in connection {:?}'s writable_attributes",
            self.name
        )))
    }
}

pub use crate::passwords::{DiscardPasswords, PasswordSink, generate_password};

/// The LDAP capability: bound connections shared per (tenant, connection).
pub struct LdapCapability {
    connections: Mutex<HashMap<(String, String), Ldap>>,
    passwords: Arc<dyn PasswordSink>,
}

impl std::fmt::Debug for LdapCapability {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LdapCapability").finish_non_exhaustive()
    }
}

impl Default for LdapCapability {
    fn default() -> Self {
        Self::new(Arc::new(DiscardPasswords))
    }
}

impl LdapCapability {
    /// A capability that hands generated passwords to `passwords`.
    pub fn new(passwords: Arc<dyn PasswordSink>) -> Self {
        crate::install_crypto_provider();
        Self {
            connections: Mutex::new(HashMap::new()),
            passwords,
        }
    }

    /// Searches, paging with RFC 2696 when `page_size > 0`. Referrals are ignored.
    pub async fn search(
        &self,
        grants: &EffectiveGrants,
        tenant: &TenantConfig,
        req: SearchRequest,
    ) -> Result<Vec<LdapEntry>, LdapError> {
        let policy = Policy::of(grants, tenant, &req.connection)?;
        if !(req.base.trim().is_empty() && matches!(req.scope, SearchScope::Base)) {
            policy.inside(&req.base, "search base")?;
        }
        let (mut ldap, timeout) = self.connection(grants, tenant, &req.connection).await?;
        let limit = search_limit(req.limit);
        let scope = match req.scope {
            SearchScope::Base => Scope::Base,
            SearchScope::OneLevel => Scope::OneLevel,
            SearchScope::Subtree => Scope::Subtree,
        };
        let attrs: Vec<&str> = req.attributes.iter().map(String::as_str).collect();
        let run = async {
            let mut adapters: Vec<Box<dyn Adapter<'_, &str, Vec<&str>>>> = vec![Box::new(EntriesOnly::new())];
            if req.page_size > 0 {
                adapters.push(Box::new(PagedResults::new(
                    req.page_size.min(i32::MAX as u32) as i32
                )));
            }
            let mut stream = ldap
                .streaming_search_with(adapters, &req.base, scope, &req.filter, attrs)
                .await?;
            let mut entries = Vec::new();
            let mut bytes = 0usize;
            while let Some(entry) = stream.next().await? {
                if entries.len() == limit {
                    return Ok(Err(size_limit(format!(
                        "more than {limit} entries match; narrow the filter or raise the limit (at most \
                            {MAX_SEARCH_LIMIT})"
                    ))));
                }
                let entry = to_entry(SearchEntry::construct(entry));
                bytes = bytes.saturating_add(entry_bytes(&entry));
                if bytes > MAX_SEARCH_BYTES {
                    return Ok(Err(size_limit(format!(
                        "the matching entries exceed {MAX_SEARCH_BYTES} bytes; narrow the filter or the \
                            attributes"
                    ))));
                }
                entries.push(entry);
            }
            let result = stream.finish().await;
            Ok(check(result).map(|()| entries))
        };
        self.finish(grants, &req.connection, timeout, run).await
    }

    /// Adds an entry.
    pub async fn add(
        &self,
        grants: &EffectiveGrants,
        tenant: &TenantConfig,
        connection: &str,
        dn: &str,
        attributes: Vec<LdapAttribute>,
    ) -> Result<(), LdapError> {
        for a in &attributes {
            check_secret_write(&a.name, ModOp::Add, &a.values)?;
        }
        let policy = Policy::of(grants, tenant, connection)?;
        policy.inside(dn, "entry")?;
        for a in &attributes {
            policy.writable(&a.name)?;
        }
        let (mut ldap, timeout) = self.connection(grants, tenant, connection).await?;
        let mut attrs = Vec::with_capacity(attributes.len());
        for a in attributes {
            let values = self.materialize(grants, connection, dn, &a.name, a.values)?;
            attrs.push((a.name.into_bytes(), values));
        }
        self.finish(grants, connection, timeout, async {
            Ok(check(ldap.add(dn, attrs).await?))
        })
        .await
    }

    /// Modifies an entry.
    pub async fn modify(
        &self,
        grants: &EffectiveGrants,
        tenant: &TenantConfig,
        connection: &str,
        dn: &str,
        changes: Vec<LdapModification>,
    ) -> Result<(), LdapError> {
        for m in &changes {
            check_secret_write(&m.attribute, m.op, &m.values)?;
        }
        let policy = Policy::of(grants, tenant, connection)?;
        policy.inside(dn, "entry")?;
        for m in &changes {
            policy.writable(&m.attribute)?;
        }
        let (mut ldap, timeout) = self.connection(grants, tenant, connection).await?;
        let mut mods = Vec::with_capacity(changes.len());
        for m in changes {
            let values = self.materialize(grants, connection, dn, &m.attribute, m.values)?;
            let attr = m.attribute.into_bytes();
            mods.push(match m.op {
                ModOp::Add => Mod::Add(attr, values),
                ModOp::Delete => Mod::Delete(attr, values),
                ModOp::Replace => Mod::Replace(attr, values),
            });
        }
        self.finish(grants, connection, timeout, async {
            Ok(check(ldap.modify(dn, mods).await?))
        })
        .await
    }

    /// Renames or moves an entry.
    #[allow(clippy::too_many_arguments)]
    pub async fn modify_dn(
        &self,
        grants: &EffectiveGrants,
        tenant: &TenantConfig,
        connection: &str,
        dn: &str,
        new_rdn: &str,
        delete_old_rdn: bool,
        new_superior: Option<&str>,
    ) -> Result<(), LdapError> {
        let policy = Policy::of(grants, tenant, connection)?;
        policy.inside(dn, "entry")?;
        if let Some(superior) = new_superior {
            policy.inside(superior, "new superior")?;
        }
        let (mut ldap, timeout) = self.connection(grants, tenant, connection).await?;
        self.finish(grants, connection, timeout, async {
            Ok(check(
                ldap.modifydn(dn, new_rdn, delete_old_rdn, new_superior).await?,
            ))
        })
        .await
    }

    /// Deletes an entry.
    pub async fn delete(
        &self,
        grants: &EffectiveGrants,
        tenant: &TenantConfig,
        connection: &str,
        dn: &str,
    ) -> Result<(), LdapError> {
        Policy::of(grants, tenant, connection)?.inside(dn, "entry")?;
        let (mut ldap, timeout) = self.connection(grants, tenant, connection).await?;
        self.finish(grants, connection, timeout, async {
            Ok(check(ldap.delete(dn).await?))
        })
        .await
    }

    /// Runs one operation with the connection's timeout; drops the cached
    /// connection when the transport failed so the next call reconnects.
    async fn finish<T>(
        &self,
        grants: &EffectiveGrants,
        connection: &str,
        timeout: Duration,
        op: impl Future<Output = Result<Result<T, LdapError>, ldap3::LdapError>>,
    ) -> Result<T, LdapError> {
        let result = match tokio::time::timeout(timeout, op).await {
            Err(_) => Err(LdapError::Timeout),
            Ok(Ok(r)) => r,
            Ok(Err(ldap3::LdapError::LdapResult { result })) => Err(failed(result)),
            Ok(Err(e)) => Err(LdapError::Transport(e.to_string())),
        };
        if matches!(result, Err(LdapError::Transport(_) | LdapError::Timeout)) {
            self.forget(grants, connection);
        }
        result
    }

    fn forget(&self, grants: &EffectiveGrants, connection: &str) {
        let key = (grants.tenant().to_string(), connection.to_string());
        self.connections
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&key);
    }

    fn materialize(
        &self,
        grants: &EffectiveGrants,
        connection: &str,
        dn: &str,
        attribute: &str,
        values: Vec<LdapValue>,
    ) -> Result<HashSet<Vec<u8>>, LdapError> {
        let mut out = HashSet::with_capacity(values.len());
        for v in values {
            out.insert(match v {
                LdapValue::Text(s) => s.into_bytes(),
                LdapValue::Bytes(b) => b,
                LdapValue::GeneratedPassword(encoding) => {
                    let password = generate_password(20).map_err(|e| {
                        LdapError::Transport(format!("cannot generate a password for {attribute}: {e}"))
                    })?;
                    self.passwords.deliver(grants.tenant(), connection, dn, &password);
                    encode_password(&password, encoding)
                }
            });
        }
        Ok(out)
    }

    async fn connection(
        &self,
        grants: &EffectiveGrants,
        tenant: &TenantConfig,
        name: &str,
    ) -> Result<(Ldap, Duration), LdapError> {
        grants.check_ldap(name).map_err(|d| LdapError::Denied(d.0))?;
        let Some(ConnectionConfig::Ldap(conn)) = tenant.connections.get(name) else {
            return Err(LdapError::Denied(format!(
                "connection {name:?} is not an ldap connection"
            )));
        };
        let timeout = conn
            .timeout_ms
            .map(Duration::from_millis)
            .unwrap_or(DEFAULT_TIMEOUT);
        let key = (grants.tenant().to_string(), name.to_string());
        if let Some(ldap) = self
            .connections
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&key)
        {
            let mut ldap = ldap.clone();
            ldap.with_timeout(timeout);
            return Ok((ldap, timeout));
        }
        let mut ldap = tokio::time::timeout(timeout, connect(name, conn))
            .await
            .map_err(|_| LdapError::Timeout)??;
        ldap.with_timeout(timeout);
        self.connections
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(key, ldap.clone());
        Ok((ldap, timeout))
    }
}

fn failed(result: ldap3::LdapResult) -> LdapError {
    LdapError::Failed {
        code: result.rc,
        message: result.text,
        matched_dn: result.matched,
    }
}

fn check(result: ldap3::LdapResult) -> Result<(), LdapError> {
    if result.rc == 0 {
        Ok(())
    } else {
        Err(failed(result))
    }
}

/// Whether binding over `conn` would send the password unencrypted: any scheme but
/// `ldaps` (read from the parsed URL, in any case) without StartTLS.
fn sends_password_in_clear(conn: &LdapConnection) -> Result<bool, LdapError> {
    let url = url::Url::parse(conn.url.trim())
        .map_err(|e| LdapError::Denied(format!("connection URL {:?} is not valid: {e}", conn.url)))?;
    match url.scheme() {
        "ldaps" => Ok(false),
        "ldap" | "ldapi" => Ok(!conn.starttls),
        other => Err(LdapError::Denied(format!(
            "connection URL scheme {other:?} is not ldap or ldaps"
        ))),
    }
}

async fn connect(name: &str, conn: &LdapConnection) -> Result<Ldap, LdapError> {
    let plaintext = sends_password_in_clear(conn)?;
    if plaintext && !conn.allow_plaintext {
        return Err(LdapError::Denied(format!(
            "connection {name:?} would send its bind password unencrypted: use ldaps:// or starttls = true \
             (allow_plaintext = true is for test servers only)"
        )));
    }
    let mut settings = LdapConnSettings::new().set_starttls(conn.starttls);
    if let Some(ca) = &conn.ca_file {
        settings = settings.set_config(Arc::new(tls_config(ca)?));
    }
    let (driver, mut ldap) = LdapConnAsync::with_settings(settings, &conn.url)
        .await
        .map_err(|e| LdapError::Transport(format!("cannot connect to {}: {e}", conn.url)))?;
    ldap3::drive!(driver);
    let bound = ldap
        .simple_bind(&conn.bind_dn, conn.password.expose())
        .await
        .map_err(|e| LdapError::Transport(format!("bind to {} failed: {e}", conn.url)))?;
    if bound.rc != 0 {
        return Err(LdapError::Failed {
            code: bound.rc,
            message: format!("bind as {} failed: {}", conn.bind_dn, bound.text),
            matched_dn: bound.matched,
        });
    }
    Ok(ldap)
}

fn tls_config(ca_file: &std::path::Path) -> Result<rustls::ClientConfig, LdapError> {
    use rustls::pki_types::{CertificateDer, pem::PemObject};
    let mut roots = rustls::RootCertStore::empty();
    let certs = CertificateDer::pem_file_iter(ca_file)
        .map_err(|e| LdapError::Transport(format!("cannot read CA file {}: {e}", ca_file.display())))?;
    for cert in certs {
        let cert =
            cert.map_err(|e| LdapError::Transport(format!("bad certificate in {}: {e}", ca_file.display())))?;
        roots.add(cert).map_err(|e| {
            LdapError::Transport(format!("unusable CA certificate in {}: {e}", ca_file.display()))
        })?;
    }
    Ok(rustls::ClientConfig::builder()
        .with_root_certificates(roots)
        .with_no_client_auth())
}

/// Attributes that hold password or key material: never returned to a plugin, even if
/// the bind account can read them, and written only with a password the host generates.
const SECRET_ATTRIBUTES: &[&str] = &[
    "userpassword",
    "unicodepwd",
    "supplementalcredentials",
    "ntpwdhistory",
    "lmpwdhistory",
    "dbcspwd",
    "authpassword",
    // Windows LAPS (legacy and current), gMSA, BitLocker recovery.
    "ms-mcs-admpwd",
    "msfve-recoverypassword",
    "msfve-keypackage",
    "msds-managedpassword",
];

/// Attribute families that are secret whatever follows the prefix (`msLAPS-Password`,
/// `msLAPS-EncryptedPassword`, `msDS-ManagedPasswordId`, ...).
const SECRET_PREFIXES: &[&str] = &["mslaps-", "msds-managedpassword"];

/// Whether `attribute` holds a secret (passwords, their hashes and history), with or
/// without options (`;binary`): its values are never shown.
pub fn is_secret(attribute: &str) -> bool {
    let base = attribute
        .split(';')
        .next()
        .unwrap_or(attribute)
        .to_ascii_lowercase();
    SECRET_ATTRIBUTES.contains(&base.as_str()) || SECRET_PREFIXES.iter().any(|p| base.starts_with(p))
}

/// A plugin may write a secret attribute only with passwords the host generates (and
/// hands to the password sink): never a value of its own, never a removal.
fn check_secret_write(attribute: &str, op: ModOp, values: &[LdapValue]) -> Result<(), LdapError> {
    if !is_secret(attribute) {
        return Ok(());
    }
    let generated = op != ModOp::Delete
        && !values.is_empty()
        && values
            .iter()
            .all(|v| matches!(v, LdapValue::GeneratedPassword(_)));
    if generated {
        return Ok(());
    }
    Err(LdapError::Denied(format!(
        "attribute {attribute} holds password or key material: a plugin may set it only to a password the \
            host generates (generated-password), never to a value of its own or remove it"
    )))
}

/// The entries a search may return: the plugin's limit (0: the default), at most the host's.
fn search_limit(requested: u32) -> usize {
    let limit = if requested == 0 {
        DEFAULT_SEARCH_LIMIT
    } else {
        requested.min(MAX_SEARCH_LIMIT)
    };
    limit as usize
}

/// LDAP's sizeLimitExceeded, raised by the host.
fn size_limit(message: String) -> LdapError {
    LdapError::Failed {
        code: 4,
        message,
        matched_dn: String::new(),
    }
}

/// The bytes an entry holds: its name, attribute names and values.
fn entry_bytes(e: &LdapEntry) -> usize {
    let text: usize = e
        .text
        .iter()
        .map(|(k, vs)| k.len() + vs.iter().map(String::len).sum::<usize>())
        .sum();
    let binary: usize = e
        .binary
        .iter()
        .map(|(k, vs)| k.len() + vs.iter().map(Vec::len).sum::<usize>())
        .sum();
    e.dn.len() + text + binary
}

fn to_entry(e: SearchEntry) -> LdapEntry {
    let mut text: Vec<_> = e.attrs.into_iter().filter(|(k, _)| !is_secret(k)).collect();
    text.sort();
    let mut binary: Vec<_> = e.bin_attrs.into_iter().filter(|(k, _)| !is_secret(k)).collect();
    binary.sort();
    LdapEntry {
        dn: e.dn,
        text,
        binary,
    }
}

/// Encodes a password for the attribute that stores it.
pub fn encode_password(password: &Secret, encoding: PasswordEncoding) -> Vec<u8> {
    match encoding {
        PasswordEncoding::Utf8 => password.expose().as_bytes().to_vec(),
        PasswordEncoding::AdUnicodePwd => format!("\"{}\"", password.expose())
            .encode_utf16()
            .flat_map(u16::to_le_bytes)
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_plaintext_url_is_recognised_in_any_spelling() {
        let conn = |url: &str, starttls: bool| LdapConnection {
            url: url.into(),
            bind_dn: "cn=admin".into(),
            password: Secret::new("x"),
            starttls,
            ca_file: None,
            allow_plaintext: false,
            timeout_ms: None,
            base_dns: Vec::new(),
            writable_attributes: Vec::new(),
        };
        for url in [
            "ldap://dc.example.test",
            "LDAP://dc.example.test",
            " Ldap://dc.example.test:389",
        ] {
            assert!(sends_password_in_clear(&conn(url, false)).unwrap(), "{url}");
            assert!(
                !sends_password_in_clear(&conn(url, true)).unwrap(),
                "{url} with StartTLS"
            );
        }
        assert!(!sends_password_in_clear(&conn("LDAPS://dc.example.test", false)).unwrap());
        assert!(sends_password_in_clear(&conn("http://dc.example.test", false)).is_err());
    }

    #[test]
    fn password_attributes_never_reach_plugins() {
        assert!(is_secret("userPassword"));
        assert!(is_secret("unicodePwd;binary"));
        for laps in [
            "ms-Mcs-AdmPwd",
            "msLAPS-Password",
            "msLAPS-EncryptedPassword",
            "msDS-ManagedPassword",
        ] {
            assert!(is_secret(laps), "{laps}");
        }
        assert!(is_secret("msFVE-RecoveryPassword"));
        assert!(!is_secret("mail"));
    }

    #[test]
    fn a_search_is_capped_by_the_host_whatever_the_plugin_asks() {
        assert_eq!(search_limit(0), DEFAULT_SEARCH_LIMIT as usize);
        assert_eq!(search_limit(5), 5);
        assert_eq!(search_limit(u32::MAX), MAX_SEARCH_LIMIT as usize);
        let entry = LdapEntry {
            dn: "cn=a".into(),
            text: vec![("mail".into(), vec!["a@b".into()])],
            binary: vec![("photo".into(), vec![vec![0; 10]])],
        };
        assert_eq!(entry_bytes(&entry), 4 + 4 + 3 + 5 + 10);
    }

    #[tokio::test]
    async fn a_plugin_sets_secret_attributes_only_to_generated_passwords() {
        let generated = || vec![LdapValue::GeneratedPassword(PasswordEncoding::AdUnicodePwd)];
        assert!(check_secret_write("unicodePwd", ModOp::Replace, &generated()).is_ok());
        assert!(check_secret_write("mail", ModOp::Replace, &[LdapValue::Text("a@b".into())]).is_ok());
        let own = [LdapValue::Text("\"Known1!\"".into())];
        for (attribute, op, values) in [
            ("unicodePwd", ModOp::Replace, &own[..]),
            (
                "userPassword",
                ModOp::Add,
                &[LdapValue::Bytes(b"{SSHA}x".to_vec())][..],
            ),
            ("ms-Mcs-AdmPwd", ModOp::Replace, &own[..]),
            ("userPassword", ModOp::Delete, &[][..]),
            ("unicodePwd", ModOp::Delete, &generated()[..]),
            ("msLAPS-Password", ModOp::Replace, &[][..]),
        ] {
            let refused = check_secret_write(attribute, op, values).unwrap_err();
            assert!(
                matches!(&refused, LdapError::Denied(m) if m.contains(attribute) && m.contains("generates")),
                "{attribute}: {refused:?}"
            );
        }
        // The capability refuses before it connects anywhere.
        let ldap = LdapCapability::new(Arc::new(DiscardPasswords));
        let tenant = TenantConfig::default();
        let grants = EffectiveGrants::new("t", "directory", &Default::default(), &tenant);
        let changes = vec![LdapModification {
            op: ModOp::Replace,
            attribute: "unicodePwd".into(),
            values: own.to_vec(),
        }];
        let refused = ldap
            .modify(&grants, &tenant, "dc", "CN=Ada,DC=example,DC=test", changes)
            .await
            .unwrap_err();
        assert!(
            matches!(&refused, LdapError::Denied(m) if m.contains("password or key material")),
            "{refused:?}"
        );
    }

    /// Issue 18: a connection keeps a plugin inside its `base_dns` and `writable_attributes`,
    /// refused before anything is sent.
    #[tokio::test]
    async fn a_plugin_stays_inside_the_connections_subtrees_and_attributes() {
        let mut tenant = TenantConfig::default();
        tenant.connections.insert(
            "dc".into(),
            ConnectionConfig::Ldap(LdapConnection {
                url: "ldap://127.0.0.1:9".into(),
                bind_dn: "cn=admin".into(),
                password: Secret::new("x"),
                starttls: false,
                ca_file: None,
                allow_plaintext: true,
                timeout_ms: Some(500),
                base_dns: vec!["OU=People,DC=example,DC=test".into()],
                writable_attributes: vec!["objectClass".into(), "cn".into(), "mail".into()],
            }),
        );
        let request = crate::CapabilityRequest {
            ldap: vec!["dc".into()],
            ..Default::default()
        };
        tenant.plugins.insert(
            "directory".into(),
            crate::PluginGrant {
                grants: request.clone(),
                ..Default::default()
            },
        );
        let grants = EffectiveGrants::new("t", "directory", &request, &tenant);
        let ldap = LdapCapability::new(Arc::new(DiscardPasswords));
        let mail = |value: &str| LdapModification {
            op: ModOp::Replace,
            attribute: "mail".into(),
            values: vec![LdapValue::Text(value.into())],
        };
        let denied = |r: Result<(), LdapError>, what: &str| {
            assert!(
                matches!(&r, Err(LdapError::Denied(m)) if m.contains(what)),
                "{what}: {r:?}"
            );
        };
        let admins = "CN=Domain Admins,CN=Users,DC=example,DC=test";
        denied(
            ldap.modify(&grants, &tenant, "dc", admins, vec![mail("x")]).await,
            "base_dns",
        );
        denied(ldap.delete(&grants, &tenant, "dc", admins).await, "base_dns");
        // A look-alike suffix is not the subtree.
        let lookalike = "CN=a,OU=People\\,DC=example,DC=test,DC=evil";
        denied(ldap.delete(&grants, &tenant, "dc", lookalike).await, "base_dns");
        let inside = "cn=Ann, ou=people, dc=EXAMPLE, dc=test";
        let moved = ldap
            .modify_dn(
                &grants,
                &tenant,
                "dc",
                inside,
                "cn=Ann",
                true,
                Some("CN=Users,DC=example,DC=test"),
            )
            .await;
        denied(moved, "new superior");
        let title = LdapModification {
            op: ModOp::Replace,
            attribute: "memberOf".into(),
            values: vec![LdapValue::Text(admins.into())],
        };
        denied(
            ldap.modify(&grants, &tenant, "dc", inside, vec![title]).await,
            "writable_attributes",
        );
        let search = |base: &str| SearchRequest {
            connection: "dc".into(),
            base: base.into(),
            scope: SearchScope::Subtree,
            filter: "(objectClass=*)".into(),
            attributes: vec![],
            page_size: 0,
            limit: 0,
        };
        let r = ldap.search(&grants, &tenant, search("DC=example,DC=test")).await;
        assert!(
            matches!(&r, Err(LdapError::Denied(m)) if m.contains("search base")),
            "{r:?}"
        );
        let bad = ldap.delete(&grants, &tenant, "dc", "not a dn").await;
        assert!(matches!(bad, Err(LdapError::Failed { code: 34, .. })), "{bad:?}");
        // Inside the subtree with a writable attribute, the policy lets it through to the server.
        let through = ldap
            .modify(&grants, &tenant, "dc", inside, vec![mail("ann@example.test")])
            .await;
        assert!(!matches!(through, Err(LdapError::Denied(_))), "{through:?}");
    }

    #[test]
    fn passwords_are_strong_and_encoded_for_ad() {
        let p = generate_password(20).unwrap();
        let s = p.expose();
        assert_eq!(s.len(), 20);
        assert!(s.chars().any(|c| c.is_ascii_uppercase()));
        assert!(s.chars().any(|c| c.is_ascii_lowercase()));
        assert!(s.chars().any(|c| c.is_ascii_digit()));
        assert!(s.chars().any(|c| !c.is_ascii_alphanumeric()));
        let encoded = encode_password(&Secret::new("Ab1!"), PasswordEncoding::AdUnicodePwd);
        assert_eq!(encoded, b"\"\0A\0b\x001\0!\0\"\0");
    }
}
