//! `tenure plugins new`: a plugin project that builds to a component on the first try, with the
//! manifest, the toolchain and the build settings Tenure's own plugins use, a working body to
//! change (a connector keeping accounts in its key-value store, or a rules engine mapping a
//! person to one account per destination) and a fixture `tenure plugins test` runs. The
//! templates are in `host/cli/templates`; Python and JavaScript projects carry a copy of the
//! SDK's WIT and helpers, so they build outside a checkout of Tenure.

use anyhow::{Context, Result, bail};
use std::path::{Path, PathBuf};

/// What kind of plugin to create.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Kind {
    Connector,
    Rules,
    Source,
}

/// The language of the project.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Lang {
    Rust,
    /// componentize-py (CPython in the component).
    Python,
    /// componentize-js (StarlingMonkey in the component).
    Js,
}

/// The SDK next to this binary's sources, when they are there (a checkout of Tenure).
fn sdk_in_checkout() -> Option<PathBuf> {
    let sdk = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../sdk/rust");
    sdk.join("Cargo.toml")
        .exists()
        .then(|| sdk.canonicalize().unwrap_or(sdk))
}

/// One file of a project: its path and its text before `{name}` and the like are filled in.
type Template = (&'static str, String);

/// The WIT contract Python and JavaScript projects build against (the SDK's frozen 0.1.0).
const WIT_FILES: [(&str, &str); 3] = [
    (
        "wit/host.wit",
        include_str!("../../../sdk/rust/wit/since_v0.1.0/host.wit"),
    ),
    (
        "wit/types.wit",
        include_str!("../../../sdk/rust/wit/since_v0.1.0/types.wit"),
    ),
    (
        "wit/worlds.wit",
        include_str!("../../../sdk/rust/wit/since_v0.1.0/worlds.wit"),
    ),
];

macro_rules! template {
    ($path:literal) => {
        include_str!(concat!("../templates/", $path)).to_string()
    };
}

/// The files of a project of this kind and language.
fn files(kind: Kind, lang: Lang, sdk_dependency: &str) -> Vec<Template> {
    let mut files: Vec<Template> = vec![
        ("plugin.toml", manifest(kind)),
        ("README.md", template!("README.md.tmpl")),
        (
            FIXTURE_PATH,
            match kind {
                Kind::Connector => template!("fixtures/connector.json"),
                Kind::Rules => template!("fixtures/rules.json"),
                Kind::Source => template!("fixtures/source.json"),
            },
        ),
    ];
    match lang {
        Lang::Rust => files.extend([
            (
                "Cargo.toml",
                template!("rust/Cargo.toml.tmpl").replace("{sdk}", sdk_dependency),
            ),
            ("rust-toolchain.toml", template!("rust/rust-toolchain.toml.tmpl")),
            (".cargo/config.toml", template!("rust/cargo-config.toml.tmpl")),
            ("build.sh", template!("rust/build.sh.tmpl")),
            (
                "src/lib.rs",
                match kind {
                    Kind::Connector => template!("rust/connector.rs.tmpl"),
                    Kind::Rules => template!("rust/rules.rs.tmpl"),
                    Kind::Source => template!("rust/source.rs.tmpl"),
                },
            ),
        ]),
        Lang::Python => files.extend([
            ("build.sh", template!("python/build.sh.tmpl")),
            (
                "tenure_sdk.py",
                include_str!("../../../sdk/python/tenure_sdk.py").to_string(),
            ),
            (
                "app.py",
                match kind {
                    Kind::Connector => template!("python/connector.py.tmpl"),
                    Kind::Rules => template!("python/rules.py.tmpl"),
                    Kind::Source => template!("python/source.py.tmpl"),
                },
            ),
        ]),
        Lang::Js => files.extend([
            ("build.sh", template!("js/build.sh.tmpl")),
            ("package.json", template!("js/package.json.tmpl")),
            ("tenure.js", include_str!("../../../sdk/js/tenure.js").to_string()),
            (
                match kind {
                    Kind::Connector => "connector.js",
                    Kind::Rules => "rules.js",
                    Kind::Source => "source.js",
                },
                match kind {
                    Kind::Connector => template!("js/connector.js.tmpl"),
                    Kind::Rules => template!("js/rules.js.tmpl"),
                    Kind::Source => template!("js/source.js.tmpl"),
                },
            ),
        ]),
    }
    if lang != Lang::Rust {
        files.extend(WIT_FILES.iter().map(|(path, text)| (*path, text.to_string())));
    }
    files
}

/// Creates `dir/name`; returns the project's folder.
pub fn create(name: &str, kind: Kind, lang: Lang, dir: &Path, sdk: Option<PathBuf>) -> Result<PathBuf> {
    let valid = !name.is_empty()
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    if !valid {
        bail!("name {name:?}: use lowercase letters, digits and '-', starting with a letter");
    }
    let project = dir.join(name);
    if project.exists() {
        bail!("{} exists; choose another name or folder", project.display());
    }
    let sdk_dependency = match sdk.or_else(sdk_in_checkout) {
        Some(path) => format!("tenure-sdk = {{ path = {:?} }}", path.display().to_string()),
        None => "tenure-sdk = \"0.1\"".to_string(),
    };
    let kind_name = match kind {
        Kind::Connector => "connector",
        Kind::Rules => "rules",
        Kind::Source => "source",
    };
    let source = match lang {
        Lang::Rust => "src/lib.rs".to_string(),
        Lang::Python => "app.py".to_string(),
        Lang::Js => format!("{kind_name}.js"),
    };
    for (path, text) in files(kind, lang, &sdk_dependency) {
        // Files copied from the SDK are written as they are.
        let text = if path.starts_with("wit/") || path == "tenure_sdk.py" || path == "tenure.js" {
            text
        } else {
            text.replace("{name}", name)
                .replace("{crate}", &name.replace('-', "_"))
                .replace("{kind}", kind_name)
                .replace("{world}", &format!("{kind_name}-plugin"))
                .replace("{source}", &source)
        };
        let path = project.join(path);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).with_context(|| format!("cannot create {}", parent.display()))?;
        }
        std::fs::write(&path, text).with_context(|| format!("cannot write {}", path.display()))?;
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(project.join("build.sh"), std::fs::Permissions::from_mode(0o755))?;
    }
    Ok(project)
}

fn manifest(kind: Kind) -> String {
    match kind {
        Kind::Connector => "name = \"{name}\"\nversion = \"0.1.0\"\nkind = \"connector\"\n\
            description = \"{name}: accounts kept in its key-value store (replace with your system)\"\n\n\
            [capabilities]\nkv = true\n# http = [\"my-app\"]   # named connections the tenant grants\n"
            .to_string(),
        Kind::Rules => "name = \"{name}\"\nversion = \"0.1.0\"\nkind = \"rules\"\n\
            description = \"{name}: one account per destination from the person's record\"\n"
            .to_string(),
        Kind::Source => "name = \"{name}\"\nversion = \"0.1.0\"\nkind = \"source\"\n\
            description = \"{name}: person events from pushed JSON records (replace with your system)\"\n\n\
            [capabilities]\n# http = [\"my-hr\"]   # to poll: named connections the tenant grants\n"
            .to_string(),
    }
}

/// Where the generated fixture goes (`tenure plugins test` runs every `fixtures/*.json`).
const FIXTURE_PATH: &str = "fixtures/lifecycle.json";
