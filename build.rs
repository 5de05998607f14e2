//! Build script: records the git commit the binary is built from, for `switchyard --version`.

use std::process::Command;

fn main() {
    println!("cargo:rerun-if-env-changed=SWITCHYARD_COMMIT");
    // Set by builds without a git checkout (the container recipe passes it in).
    if let Ok(commit) = std::env::var("SWITCHYARD_COMMIT") {
        if !commit.trim().is_empty() {
            println!("cargo:rustc-env=SWITCHYARD_COMMIT={}", commit.trim());
            return;
        }
    }
    let commit =
        git(&["rev-parse", "--short=12", "HEAD"]).unwrap_or_else(|| "unknown commit".to_string());
    println!("cargo:rustc-env=SWITCHYARD_COMMIT={commit}");
    // A new commit, or a checkout of another branch, changes these. Their paths come from git:
    // in a worktree `.git` is a file and HEAD, the index and the refs live elsewhere.
    let mut watched = vec!["HEAD".to_string(), "index".to_string()];
    if let Some(branch) = git(&["symbolic-ref", "-q", "HEAD"]) {
        watched.push(branch);
    }
    watched.push("packed-refs".to_string());
    for what in watched {
        if let Some(path) = git(&["rev-parse", "--git-path", &what]) {
            if std::path::Path::new(&path).exists() {
                println!("cargo:rerun-if-changed={path}");
            }
        }
    }
    println!("cargo:rerun-if-changed=build.rs");
}

/// The trimmed output of a git command, if it succeeds with some.
fn git(args: &[&str]) -> Option<String> {
    Command::new("git")
        .args(args)
        .output()
        .ok()
        .filter(|o| o.status.success())
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
}
