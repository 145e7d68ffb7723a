//! The repository keeps its own rules: every Rust line fits rustfmt's width (a
//! longer one is silently left unformatted), and every path the README's
//! "where to look first" names exists, and every document link resolves.

use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// `max_width` from rustfmt.toml.
fn max_width() -> usize {
    let text = std::fs::read_to_string(root().join("rustfmt.toml")).expect("rustfmt.toml");
    text.lines()
        .find_map(|l| {
            l.strip_prefix("max_width")?
                .trim()
                .strip_prefix('=')?
                .trim()
                .parse()
                .ok()
        })
        .expect("max_width in rustfmt.toml")
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let name = entry.file_name().to_string_lossy().to_string();
        if path.is_dir() {
            if !matches!(name.as_str(), "target" | "node_modules" | ".git") {
                rust_files(&path, out);
            }
        } else if name.ends_with(".rs") {
            out.push(path);
        }
    }
}

#[test]
fn every_rust_line_fits_rustfmts_width() {
    let width = max_width();
    let mut files = Vec::new();
    for dir in ["host", "sdk", "plugins", "tests"] {
        rust_files(&root().join(dir), &mut files);
    }
    assert!(files.len() > 100, "found only {} files", files.len());
    let mut long = Vec::new();
    for file in &files {
        let text = std::fs::read_to_string(file).expect("read");
        for (i, line) in text.lines().enumerate() {
            if line.chars().count() > width {
                long.push(format!("{}:{}", file.display(), i + 1));
            }
        }
    }
    assert!(long.is_empty(), "lines over {width} characters: {long:#?}");
}

fn read(path: &str) -> String {
    std::fs::read_to_string(root().join(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// The text of a Markdown section, from its heading to the next heading of its level.
fn section<'a>(text: &'a str, heading: &str) -> &'a str {
    let start = text
        .find(heading)
        .unwrap_or_else(|| panic!("no section {heading:?}"));
    let body = &text[start + heading.len()..];
    let end = body.find("\n## ").unwrap_or(body.len());
    &body[..end]
}

/// Backticked tokens that name a file or folder of the repository (`host/x/y.rs`, `sdk/rust/`).
fn named_paths(text: &str) -> Vec<String> {
    text.split('`')
        .skip(1)
        .step_by(2)
        .filter(|token| {
            token.contains('/')
                && !token.contains(' ')
                && !token.starts_with('/')
                && token.split('/').next().is_some_and(|first| {
                    ["host", "sdk", "plugins", "tests", "docs", "scripts", "examples"].contains(&first)
                })
        })
        .map(str::to_string)
        .collect()
}

#[test]
fn every_path_where_to_look_first_names_exists() {
    let readme = read("README.md");
    let paths = named_paths(section(&readme, "## Where to look first"));
    assert!(paths.len() >= 10, "the section names only {paths:?}");
    let missing: Vec<&String> = paths
        .iter()
        .filter(|p| !root().join(p.as_str()).exists())
        .collect();
    assert!(
        missing.is_empty(),
        "README's \"where to look first\" names missing paths: {missing:?}"
    );
}

#[test]
fn the_readme_is_a_front_door_and_every_document_link_resolves() {
    let readme = read("README.md");
    let lines = readme.lines().count();
    assert!(
        lines <= 250,
        "README.md has {lines} lines; move detail into docs/"
    );
    let mut documents = vec![PathBuf::from("README.md")];
    for dir in ["docs", "docs/rules"] {
        for entry in std::fs::read_dir(root().join(dir)).expect("docs").flatten() {
            if entry.path().extension().is_some_and(|e| e == "md") {
                documents.push(PathBuf::from(dir).join(entry.file_name()));
            }
        }
    }
    let mut broken = Vec::new();
    for document in &documents {
        let text = read(&document.to_string_lossy());
        let base = document.parent().unwrap_or(Path::new(""));
        for link in text.split("](").skip(1) {
            let target = link.split(')').next().unwrap_or_default();
            let file = target.split('#').next().unwrap_or_default();
            if file.is_empty() || file.contains("://") {
                continue;
            }
            if !root().join(base).join(file).exists() {
                broken.push(format!("{}: {target}", document.display()));
            }
        }
    }
    assert!(documents.len() >= 10, "found only {documents:?}");
    assert!(broken.is_empty(), "links to missing files: {broken:#?}");
}
