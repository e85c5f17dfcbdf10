//! Every `unveil` command printed in the guides runs as written: each parses, the model
//! guide's commands are the ones `models/regenerate.sh` runs, and that recipe's training
//! commands give the run.json files committed under `models/runs`.

use std::path::Path;

use clap::Parser;
use unveil_host::train::harness::{self, RunConfig};

use crate::{Cli, Command};

/// The repository root (the host crate's parent).
fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("host/ has a parent")
}

/// The `unveil` commands in `text` as argument lists, without the program name. Shell
/// line continuations are joined, `# comments` dropped, `[optional]` parts kept, and
/// `"${VAR:-default}"` read as its default. Markdown files count only their `sh` blocks.
fn commands(text: &str, markdown: bool) -> Vec<Vec<String>> {
    const PREFIXES: [&str; 3] = [
        "cargo run --release -p unveil-host -- ",
        "cargo run --release -q -p unveil-host -- ",
        "unveil ",
    ];
    let mut in_block = !markdown;
    let mut joined = String::new();
    let mut out = Vec::new();
    for line in text.lines() {
        if markdown && line.starts_with("```") {
            in_block = line.starts_with("```sh");
            continue;
        }
        if !in_block {
            continue;
        }
        let line = line.split(" #").next().unwrap_or_default();
        match line.strip_suffix('\\') {
            Some(head) => {
                joined.push_str(head);
                continue;
            }
            None => joined.push_str(line),
        }
        let full = std::mem::take(&mut joined);
        let full = full.trim().trim_start_matches("nice ");
        if let Some(rest) = PREFIXES.iter().find_map(|p| full.strip_prefix(p)) {
            let words = rest.split_whitespace().map(|w| {
                let w = w.trim_matches(|c| c == '[' || c == ']' || c == '"');
                match w.strip_prefix("${").and_then(|v| v.strip_suffix('}')) {
                    Some(var) => var.split(":-").nth(1).unwrap_or_default().to_string(),
                    None => w.to_string(),
                }
            });
            out.push(words.collect());
        }
    }
    out
}

fn file_commands(rel: &str) -> Vec<Vec<String>> {
    let text = std::fs::read_to_string(root().join(rel)).expect(rel);
    commands(&text, rel.ends_with(".md"))
}

fn parse(args: &[String]) -> Cli {
    Cli::try_parse_from(std::iter::once("unveil").chain(args.iter().map(String::as_str)))
        .unwrap_or_else(|e| panic!("`unveil {}` does not parse: {e}", args.join(" ")))
}

#[test]
fn the_extractor_joins_continuations_and_skips_prose() {
    let text = "unveil a\n```sh\nunveil train \\\n    stage1 [--x 1]  # note\nls\n```\nunveil b\n";
    assert_eq!(commands(text, true), [["train", "stage1", "--x", "1"]]);
    let script = "nice unveil train --steps \"${STEPS:-7500}\"\necho unveil\n";
    assert_eq!(commands(script, false), [["train", "--steps", "7500"]]);
}

#[test]
fn every_documented_command_parses() {
    let mut seen = 0;
    for rel in [
        "README.md",
        "models/README.md",
        "models/regenerate.sh",
        "models/continue.sh",
    ] {
        let found = file_commands(rel);
        assert!(!found.is_empty(), "{rel}: no unveil commands found");
        for args in &found {
            parse(args);
        }
        seen += found.len();
    }
    assert!(seen >= 20, "only {seen} commands found");
}

#[test]
fn the_model_guide_shows_the_regeneration_recipe() {
    let recipe = file_commands("models/regenerate.sh");
    for args in file_commands("models/README.md") {
        assert!(
            recipe.contains(&args),
            "models/README.md runs `unveil {}`, which models/regenerate.sh does not",
            args.join(" ")
        );
    }
}

/// The recipe's `train` commands, folded per run folder the way the harness folds them
/// (a new run writes its configuration; a resume with a new --steps retargets it), give
/// the configurations the committed runs were trained with, field for field.
#[test]
fn the_recipe_gives_the_committed_run_configurations() {
    let mut runs: Vec<(String, RunConfig)> = Vec::new();
    let text = std::fs::read_to_string(root().join("models/regenerate.sh")).expect("recipe");
    // `cp -r runs/A runs/B` forks a run: B continues from A's state under its own name.
    let copies: Vec<(String, String)> = text
        .lines()
        .filter_map(|l| l.trim().strip_prefix("cp -r "))
        .filter_map(|l| {
            let mut w = l.split_whitespace();
            Some((w.next()?.to_string(), w.next()?.to_string()))
        })
        .collect();
    for args in commands(&text, false) {
        let Command::Train(train) = parse(&args).command else {
            continue;
        };
        let crate::cli::train::TrainTarget::One(network) = train.network else {
            panic!("regenerate.sh trains the networks one by one");
        };
        let out = train.out.clone().expect("each recipe line names its --out");
        let name = out.display().to_string();
        if let Some((from, _)) = copies.iter().find(|(_, to)| *to == name) {
            if !runs.iter().any(|(n, _)| *n == name) {
                let (_, config) = runs.iter().find(|(n, _)| n == from).expect("copied run");
                runs.push((name.clone(), config.clone()));
            }
        }
        match runs.iter_mut().find(|(n, _)| *n == name) {
            Some((_, config)) => {
                assert!(train.resume, "{name} is trained twice without --resume");
                if let Some(steps) = train.steps {
                    *config = harness::retarget(config, steps);
                }
            }
            None => {
                let config =
                    crate::cli::train::run_config(&train, network, &out, Path::new("runs"), false)
                        .expect("config");
                runs.push((name, config));
            }
        }
    }
    assert_eq!(
        runs.len(),
        11,
        "S, G1 and its three continuations, G2 and its two fine-tunes, the occlusion \
         detector with its two continuations"
    );
    for (name, config) in runs {
        let dir = root().join("models").join(&name);
        let committed = harness::load_run_config(&dir).expect("committed run");
        let json = |c: &RunConfig| serde_json::to_value(c).expect("serialise");
        assert_eq!(json(&config), json(&committed), "{name}");
    }
}
