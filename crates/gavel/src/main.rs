//! `gavel`: streaming risk scoring for live-shopping marketplaces.
//!
//! With no subcommand it runs the embedded demo until Ctrl-C.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::{Parser, Subcommand};
use gavel::ServeOptions;
use gavel::admin::Admin;
use gavel::config::GavelConfig;
use gavel::demo::{DEFAULT_METRICS_ADDR, DemoOptions};
use gavel::pack::PackFiles;
use gavel::reload::Rules;
use gavel::telemetry::Stats;
use gavel_engine::Engine;
use gavel_rules::RulesError;
use std::sync::atomic::AtomicBool;

#[derive(Debug, Parser)]
#[command(name = "gavel", version, about = "Streaming risk scoring for live-shopping marketplaces")]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the engine, an in-process Kafka cluster and simulated traffic.
    Demo(DemoArgs),
    /// Run against real Kafka brokers.
    Run {
        /// TOML config file (see `gavel config defaults`).
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// Validate a rule pack directory; exits non-zero on any error.
    Check {
        /// The pack directory.
        pack: PathBuf,
    },
    /// Run a pack's rule tests (inline `tests:` and `tests/*.yaml`).
    Test {
        /// The pack directory.
        pack: PathBuf,
    },
    /// Evaluate one expression against one event; prints JSON.
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
    Replay(gavel::replay::ReplayArgs),
    /// Generate simulated marketplace traffic, with labelled fraud, to a file
    /// (and a ground-truth file) or to Kafka.
    Sim(gavel::simulate::SimArgs),
    /// Show configuration.
    #[command(subcommand)]
    Config(ConfigCommand),
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

#[derive(Debug, clap::Args)]
struct DemoArgs {
    /// Stop after this long (e.g. `10s`, `2m`); runs until Ctrl-C if absent.
    #[arg(long, value_parser = humantime::parse_duration)]
    duration: Option<Duration>,
    /// Simulated events per second.
    #[arg(long, default_value_t = 5_000.0)]
    rate: f64,
    /// Address of the Prometheus metrics endpoint.
    #[arg(long, default_value = DEFAULT_METRICS_ADDR)]
    metrics_addr: SocketAddr,
    /// Partitions per topic.
    #[arg(long, default_value_t = 4)]
    partitions: i32,
    /// Simulator seed.
    #[arg(long, default_value_t = 7)]
    seed: u64,
    /// Run (and watch) this pack directory instead of the embedded pack.
    #[arg(long)]
    rules: Option<PathBuf>,
}

impl Default for DemoArgs {
    fn default() -> Self {
        DemoArgs {
            duration: None,
            rate: 5_000.0,
            // A constant that parses.
            metrics_addr: DEFAULT_METRICS_ADDR.parse().expect("valid default address"),
            partitions: 4,
            seed: 7,
            rules: None,
        }
    }
}

fn main() -> ExitCode {
    init_logging();
    let cli = Cli::parse();
    let result = match cli.command {
        None => demo(DemoArgs::default()),
        Some(Command::Demo(args)) => demo(args),
        Some(Command::Run { config }) => run(config),
        Some(Command::Check { pack }) => return check(&pack),
        Some(Command::Test { pack }) => match gavel::ruletools::test_pack(&pack) {
            Ok((table, ok)) => {
                print!("{table}");
                return if ok { ExitCode::SUCCESS } else { ExitCode::FAILURE };
            }
            Err(e) => Err(e),
        },
        Some(Command::Eval { expression, event, features, rules }) => std::fs::read(&event)
            .with_context(|| format!("reading {}", event.display()))
            .and_then(|bytes| gavel::ruletools::eval(&expression, &bytes, features.as_deref(), rules.as_deref()))
            .map(|json| println!("{json}")),
        Some(Command::Replay(args)) => gavel::replay::run(&args),
        Some(Command::Sim(args)) => gavel::simulate::run(&args),
        Some(Command::Config(ConfigCommand::Defaults)) => {
            print!("{}", gavel::config::DEFAULTS);
            Ok(())
        }
        Some(Command::Config(ConfigCommand::Print { config })) => {
            GavelConfig::load(config.as_deref()).map(|c| println!("{c:#?}"))
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("GAVEL_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,rdkafka=warn"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    if std::env::var("GAVEL_LOG_FORMAT").is_ok_and(|f| f == "json") {
        builder.json().init();
    } else {
        builder.init();
    }
}

fn demo(args: DemoArgs) -> anyhow::Result<()> {
    gavel::demo::run(DemoOptions {
        duration: args.duration,
        rate: args.rate,
        metrics_addr: args.metrics_addr,
        partitions: args.partitions,
        seed: args.seed,
        rules: args.rules,
    })
}

fn run(config: Option<PathBuf>) -> anyhow::Result<()> {
    let config = GavelConfig::load(config.as_deref())?;
    let pack = gavel::pack::load(&config.pack)?;
    tracing::info!(pack_version = %pack.version, rules = pack.rules.len(), brokers = %config.kafka.brokers, "starting");
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(async {
        let addr: SocketAddr = config.admin_addr.parse().context("admin_addr")?;
        let metrics = gavel::telemetry::install_recorder()?;
        let rules = Rules::new(Engine::new(pack), Some(config.pack.clone()));
        rules.watch()?;
        let ready = Arc::new(AtomicBool::new(false));
        let stats = Arc::new(Stats::default());
        let admin = Admin { metrics, rules: Arc::clone(&rules), ready: Arc::clone(&ready), stats: Arc::clone(&stats) };
        let bound = gavel::admin::serve(addr, admin).await?;
        tracing::info!(%bound, "admin endpoint: /metrics /healthz /readyz /stats /v1/rules");
        tokio::spawn(gavel::telemetry::log_every(Arc::clone(&stats), Duration::from_secs(10)));
        let options = ServeOptions { shards: config.shards(), emit_verdicts: config.outputs.emit_verdicts };
        gavel::serve(config.kafka_settings(), rules, stats, options, ready, gavel::termination_signal()).await
    })
}

fn check(dir: &std::path::Path) -> ExitCode {
    let files = match PackFiles::read(dir) {
        Ok(files) => files,
        Err(e) => {
            eprintln!("error: {e:#}");
            return ExitCode::FAILURE;
        }
    };
    match files.compile() {
        Ok(pack) => {
            let shadow = pack.rules.iter().filter(|r| r.mode == gavel_rules::RuleMode::Shadow).count();
            println!(
                "ok: pack {} ({}): {} lists, {} features, {} rules ({shadow} in shadow mode)",
                pack.version,
                pack.hash,
                pack.lists.len(),
                pack.features.len(),
                pack.rules.len()
            );
            ExitCode::SUCCESS
        }
        Err(RulesError::Invalid(diags)) => {
            eprint!("{}", files.render(&diags));
            eprintln!("{} error(s) in {}", diags.len(), dir.display());
            ExitCode::FAILURE
        }
    }
}
