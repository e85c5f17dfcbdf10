//! `unveil-device`: the camera-side command line.

use clap::{Parser, Subcommand};

/// Unveil on the camera board: restores hidden parts of subjects in frames.
#[derive(Parser, Debug)]
#[command(name = "unveil-device", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Print the input and texture-map conventions this build expects.
    Info,
}

fn main() {
    let cli = Cli::parse();
    match cli.command {
        Command::Info => println!("{}", unveil_device::conventions()),
    }
}
