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
    let commit = Command::new("git")
        .args(["rev-parse", "--short=12", "HEAD"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "unknown commit".to_string());
    println!("cargo:rustc-env=SWITCHYARD_COMMIT={commit}");
    // A new commit, or a checkout of another branch, changes these (git says where they
    // are: in a worktree of another checkout, `.git` is a file and they live elsewhere).
    for what in ["HEAD", "index"] {
        let path = Command::new("git")
            .args(["rev-parse", "--git-path", what])
            .output()
            .ok()
            .filter(|o| o.status.success())
            .and_then(|o| String::from_utf8(o.stdout).ok())
            .map(|s| s.trim().to_string());
        if let Some(path) = path.filter(|p| std::path::Path::new(p).exists()) {
            println!("cargo:rerun-if-changed={path}");
        }
    }
    println!("cargo:rerun-if-changed=build.rs");
}
