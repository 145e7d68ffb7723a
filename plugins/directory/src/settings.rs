//! The connector's settings (`[tenants.T.plugins.directory.settings]`) and the
//! two directory profiles.

use serde::Deserialize;
use tenure_sdk::errors::invalid_input;
use tenure_sdk::types::PluginError;

/// How containers are read back.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Containers {
    /// Full DNs.
    #[default]
    Absolute,
    /// Relative to `users_container`.
    Relative,
}

/// The settings as the tenant writes them (`[...plugins.directory.settings]`).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Written {
    #[serde(default)]
    profile: Profile,
    base_dn: String,
    users_container: Option<String>,
    groups_base: Option<String>,
    attributes: Option<Vec<String>>,
    #[serde(default)]
    password: PasswordPolicy,
    #[serde(default)]
    must_change_password: bool,
    manager_key: Option<String>,
    page_size: Option<u32>,
    #[serde(default)]
    containers: Containers,
}

/// Which kind of directory the connection reaches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Profile {
    /// Active Directory (or Samba AD): `user`/`group`, objectGUID, userAccountControl, unicodePwd.
    #[default]
    Ad,
    /// A standards LDAP directory (OpenLDAP, 389-ds): inetOrgPerson/groupOfNames, entryUUID,
    /// disabled through ppolicy's `pwdAccountLockedTime`.
    Ldap,
}

/// What happens about the initial password.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PasswordPolicy {
    /// The host generates a strong one, writes it and hands it to its password policy; the
    /// plugin never sees it.
    #[default]
    Generate,
    /// None is set (an AD account then stays disabled until one is set by other means).
    None,
}

/// Parsed settings.
#[derive(Debug, Clone)]
pub struct Settings {
    pub profile: Profile,
    pub base_dn: String,
    pub users_container: String,
    pub groups_base: String,
    /// Attributes read back into accounts, in the spelling rules use.
    pub attributes: Vec<String>,
    pub password: PasswordPolicy,
    /// AD: `pwdLastSet: 0` after the initial password, so the person picks their own.
    pub must_change_password: bool,
    /// The attribute a non-DN manager reference is looked up by.
    pub manager_key: String,
    pub page_size: u32,
    /// Containers are read back relative to `users_container` (`OU=Sales` for
    /// `OU=Sales,<users_container>`), so one rule set serves several directories.
    pub relative_containers: bool,
}

const AD_ATTRIBUTES: &str = "cn,sAMAccountName,userPrincipalName,givenName,sn,displayName,mail,employeeID,\
department,title,company,manager,physicalDeliveryOfficeName,telephoneNumber";
const LDAP_ATTRIBUTES: &str = "cn,uid,givenName,sn,displayName,mail,employeeNumber,departmentNumber,title,o,\
manager,telephoneNumber";

impl Settings {
    /// Reads the settings; `base_dn` is required.
    #[cfg(test)]
    pub fn parse(pairs: &[(String, String)]) -> Result<Settings, PluginError> {
        Settings::from_written(tenure_sdk::settings::from_pairs(pairs.to_vec())?)
    }

    /// Checks what the types alone do not, and fills the profile's defaults.
    pub fn from_written(w: Written) -> Result<Settings, PluginError> {
        let profile = w.profile;
        let base_dn = w.base_dn;
        if base_dn.is_empty() {
            return Err(invalid_input(
                "settings.base_dn",
                "required: the directory's base DN",
            ));
        }
        let attributes: Vec<String> = w.attributes.unwrap_or_else(|| {
            match profile {
                Profile::Ad => AD_ATTRIBUTES,
                Profile::Ldap => LDAP_ATTRIBUTES,
            }
            .split(',')
            .map(str::to_string)
            .collect()
        });
        if let Some(bad) = attributes.iter().find(|a| !valid_attribute(a)) {
            return Err(invalid_input(
                "settings.attributes",
                format!("{bad:?} is not an attribute name"),
            ));
        }
        let page_size = match w.page_size {
            None => 500,
            Some(n) if (1..=1000).contains(&n) => n,
            Some(_) => return Err(invalid_input("settings.page_size", "a number from 1 to 1000")),
        };
        let present = |v: Option<String>| v.filter(|v| !v.is_empty());
        Ok(Settings {
            profile,
            users_container: present(w.users_container).unwrap_or_else(|| base_dn.clone()),
            groups_base: present(w.groups_base).unwrap_or_else(|| base_dn.clone()),
            base_dn,
            attributes,
            password: w.password,
            must_change_password: w.must_change_password,
            manager_key: present(w.manager_key).unwrap_or_else(|| {
                match profile {
                    Profile::Ad => "employeeID",
                    Profile::Ldap => "employeeNumber",
                }
                .into()
            }),
            page_size,
            relative_containers: w.containers == Containers::Relative,
        })
    }

    /// The full DN of a container as rules give it: a DN under `base_dn` as is, anything
    /// else (`OU=Sales`) below `users_container`.
    pub fn absolute_container(&self, container: &str) -> String {
        let container = container.trim();
        if container.is_empty() {
            self.users_container.clone()
        } else if crate::escape::is_under(container, &self.base_dn) {
            container.to_string()
        } else {
            format!("{container},{}", self.users_container)
        }
    }

    /// A parent DN as rules name it (relative to `users_container` when so configured).
    pub fn container_name(&self, parent: &str) -> String {
        if self.relative_containers {
            let (lower, users) = (
                parent.to_ascii_lowercase(),
                self.users_container.to_ascii_lowercase(),
            );
            if let Some(prefix) = lower.strip_suffix(&format!(",{users}")) {
                return parent[..prefix.len()].to_string();
            }
        }
        parent.to_string()
    }

    /// The filter that selects person accounts.
    pub fn user_filter(&self) -> &'static str {
        match self.profile {
            Profile::Ad => "(&(objectClass=user)(objectCategory=person))",
            Profile::Ldap => "(objectClass=inetOrgPerson)",
        }
    }

    /// The object classes of a new account.
    pub fn user_classes(&self) -> &'static [&'static str] {
        match self.profile {
            Profile::Ad => &["top", "person", "organizationalPerson", "user"],
            Profile::Ldap => &["top", "person", "organizationalPerson", "inetOrgPerson"],
        }
    }

    /// The object class of groups.
    pub fn group_class(&self) -> &'static str {
        match self.profile {
            Profile::Ad => "group",
            Profile::Ldap => "groupOfNames",
        }
    }

    /// The attribute that anchors an account for good.
    pub fn anchor_attribute(&self) -> &'static str {
        match self.profile {
            Profile::Ad => "objectGUID",
            Profile::Ldap => "entryUUID",
        }
    }
}

/// An LDAP attribute description: letters, digits, `-`, `;` and `.`, starting with a letter.
pub fn valid_attribute(name: &str) -> bool {
    name.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-;.".contains(c))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(p: &[(&str, &str)]) -> Vec<(String, String)> {
        p.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn defaults_follow_the_profile() {
        let s = Settings::parse(&pairs(&[("base_dn", "DC=x")])).unwrap();
        assert_eq!(s.profile, Profile::Ad);
        assert_eq!(s.users_container, "DC=x");
        assert!(s.attributes.contains(&"sAMAccountName".to_string()));
        let s = Settings::parse(&pairs(&[("base_dn", "dc=x"), ("profile", "ldap")])).unwrap();
        assert_eq!(s.anchor_attribute(), "entryUUID");
        assert_eq!(s.manager_key, "employeeNumber");
    }

    #[test]
    fn containers_may_be_relative_to_the_users_container() {
        let s = Settings::parse(&pairs(&[
            ("base_dn", "DC=x"),
            ("users_container", "OU=People,DC=x"),
            ("containers", "relative"),
        ]))
        .unwrap();
        assert_eq!(s.absolute_container("OU=Sales"), "OU=Sales,OU=People,DC=x");
        assert_eq!(s.absolute_container("OU=Leavers,DC=x"), "OU=Leavers,DC=x");
        assert_eq!(s.container_name("OU=Sales,OU=People,DC=x"), "OU=Sales");
        assert_eq!(s.container_name("OU=Leavers,DC=x"), "OU=Leavers,DC=x");
        assert_eq!(s.container_name("OU=People,DC=x"), "OU=People,DC=x");
    }

    #[test]
    fn bad_settings_name_the_key() {
        let e = Settings::parse(&pairs(&[])).unwrap_err();
        assert!(format!("{e:?}").contains("settings.base_dn"));
        let e = Settings::parse(&pairs(&[("base_dn", "x"), ("profile", "nds")])).unwrap_err();
        assert!(format!("{e:?}").contains("settings.profile"));
        let e = Settings::parse(&pairs(&[("base_dn", "x"), ("colour", "red")])).unwrap_err();
        assert!(format!("{e:?}").contains("settings.colour"));
        let e = Settings::parse(&pairs(&[("base_dn", "x"), ("attributes", "cn,(mail)")])).unwrap_err();
        assert!(format!("{e:?}").contains("settings.attributes"));
    }
}
