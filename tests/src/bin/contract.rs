//! The test command's last step: how many of the protocol's frame types the suites checked
//! against the schemas (`integration_tests::contract`); fails when one never was.

use std::collections::BTreeSet;
use std::process::ExitCode;

use integration_tests::contract;
use shared::api::{bundle, frame_types, CLIENT_FRAME, SERVER_FRAME};

fn main() -> ExitCode {
    let dir = contract::dir();
    let mut seen = BTreeSet::new();
    for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
        let text = std::fs::read_to_string(entry.path()).unwrap_or_default();
        seen.extend(text.lines().map(str::to_string));
    }
    let bundle = bundle();
    let mut missing = Vec::new();
    let mut counts = Vec::new();
    for (side, union) in [("client", CLIENT_FRAME), ("server", SERVER_FRAME)] {
        let types = frame_types(&bundle, union);
        let unseen: Vec<String> =
            types.iter().map(|(kind, _)| format!("{side} {kind}")).filter(|line| !seen.contains(line)).collect();
        counts.push((side, types.len() - unseen.len(), types.len()));
        missing.extend(unseen);
    }
    let checked: usize = counts.iter().map(|c| c.1).sum();
    let total: usize = counts.iter().map(|c| c.2).sum();
    let sides: Vec<String> = counts.iter().map(|(side, n, of)| format!("{n}/{of} {side}")).collect();
    println!("contract: {checked} of {total} frame types checked ({})", sides.join(", "));
    if missing.is_empty() {
        ExitCode::SUCCESS
    } else {
        eprintln!("never checked against the schemas (in {}): {}", dir.display(), missing.join(", "));
        ExitCode::FAILURE
    }
}
