//! `gavel`: streaming risk scoring for live-shopping marketplaces.
//!
//! This file only parses the command line and dispatches to the library's
//! rooms (`runtime`, `tools`, `backtest`, `demo`). With no subcommand it
//! runs the embedded demo until Ctrl-C.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use gavel::demo::DemoOptions;
use gavel::error::{Actor, Class};
use gavel::runtime::config::{GavelConfig, defaults};
use gavel::tools::check::Checked;

#[derive(Debug, Parser)]
#[command(name = "gavel", version, about = "Streaming risk scoring for live-shopping marketplaces")]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the engine, an in-process Kafka cluster and simulated traffic.
    Demo(DemoOptions),
    /// Run against real Kafka brokers.
    Run {
        /// TOML config file (see `gavel config defaults`).
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// Validate a rule pack directory; prints its warnings; exits non-zero
    /// on any error (and, with --deny-warnings, on any warning).
    Check {
        /// The pack directory.
        pack: PathBuf,
        /// Fail on warnings too (for CI).
        #[arg(long)]
        deny_warnings: bool,
    },
    /// Run a pack's rule tests (inline `tests:` and `tests/*.yaml`).
    Test {
        /// The pack directory.
        pack: PathBuf,
        /// Fail when the pack has warnings, even if every test passes.
        #[arg(long)]
        deny_warnings: bool,
    },
    /// Evaluate one expression against one event; prints JSON; exits
    /// non-zero when the expression does not compile or fails.
    Eval {
        /// The expression (CEL), e.g. `event.bid_placed.amount.amount_minor > 1000`.
        expression: String,
        /// The event, as a proto3 JSON file.
        #[arg(long)]
        event: PathBuf,
        /// Feature values, as a JSON object: `{"bids_per_user_10s": 14}`.
        #[arg(long)]
        features: Option<String>,
        /// A pack directory whose lists the expression may use.
        #[arg(long)]
        rules: Option<PathBuf>,
    },
    /// Backtest: replay recorded events through a pack and report what it
    /// would have done (per rule, actions, decisions, scores), against a
    /// baseline pack and ground truth if given.
    Replay(gavel::backtest::ReplayArgs),
    /// Generate simulated marketplace traffic, with labelled fraud, to a file
    /// (and a ground-truth file) or to Kafka.
    Sim(gavel::tools::sim::SimArgs),
    /// Show configuration.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Work with the dead-letter topic.
    #[command(subcommand)]
    Dlq(DlqCommand),
}

#[derive(Debug, Subcommand)]
enum DlqCommand {
    /// Send dead-lettered messages back to their source topics (after the
    /// cause is fixed); --dry-run first to see what would go.
    Republish(gavel::tools::dlq::RepublishArgs),
}

#[derive(Debug, Subcommand)]
enum ConfigCommand {
    /// Print the embedded defaults.
    Defaults,
    /// Print the effective configuration, secrets redacted.
    Print {
        /// TOML config file.
        #[arg(long)]
        config: Option<PathBuf>,
    },
}

fn main() -> ExitCode {
    gavel::telemetry::init_logging();
    let cli = Cli::parse();
    let result = match cli.command {
        None => gavel::demo::run(DemoOptions::default()),
        Some(Command::Demo(options)) => gavel::demo::run(options),
        Some(Command::Run { config }) => gavel::runtime::run(config.as_deref()),
        Some(Command::Check { pack, deny_warnings }) => match gavel::tools::check::check(&pack, deny_warnings) {
            Ok(Checked::Ok { warnings, summary }) => {
                eprint!("{warnings}");
                println!("{summary}");
                return ExitCode::SUCCESS;
            }
            Ok(Checked::Invalid(report)) => {
                eprintln!("{report}");
                return ExitCode::FAILURE;
            }
            Err(e) => Err(e),
        },
        Some(Command::Test { pack, deny_warnings }) => match gavel::tools::test::test_pack(&pack, deny_warnings) {
            Ok(tested) => {
                eprint!("{}", tested.warnings);
                print!("{}", tested.table);
                return if tested.passed { ExitCode::SUCCESS } else { ExitCode::FAILURE };
            }
            Err(e) => Err(e),
        },
        Some(Command::Eval { expression, event, features, rules }) => {
            match gavel::tools::eval::eval_file(&expression, &event, features.as_deref(), rules.as_deref()) {
                Ok(evaluation) => {
                    println!("{}", evaluation.json);
                    // The expression is the user's input: exit as bad input does.
                    let bad_input = Class { actor: Actor::User, retry_helps: false };
                    return if evaluation.failed { ExitCode::from(bad_input.exit_code()) } else { ExitCode::SUCCESS };
                }
                Err(e) => Err(e),
            }
        }
        Some(Command::Replay(args)) => gavel::backtest::run(&args),
        Some(Command::Sim(args)) => gavel::tools::sim::run(&args),
        Some(Command::Dlq(DlqCommand::Republish(args))) => gavel::tools::dlq::run(&args),
        Some(Command::Config(ConfigCommand::Defaults)) => print_out(&defaults()),
        Some(Command::Config(ConfigCommand::Print { config })) => GavelConfig::load(config.as_deref())
            .and_then(|c| Ok(toml::to_string(&c)?))
            .and_then(|text: String| print_out(&text)),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            let class = gavel::error::classify(&e);
            eprintln!("error: {e:#}\n({class})");
            ExitCode::from(class.exit_code())
        }
    }
}

/// Writes `text` to stdout. A reader that stops early (`| head`) closes the
/// pipe: that ends the output, it is not an error.
fn print_out(text: &str) -> anyhow::Result<()> {
    use std::io::Write as _;
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(e.into()),
        _ => Ok(()),
    }
}
