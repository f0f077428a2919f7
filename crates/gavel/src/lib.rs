//! The `gavel` binary's library, one room per concern:
//!
//! - [`runtime`]: `gavel run` — config, the tokio wiring between the Kafka
//!   adapter and the engine, hot reload, the admin endpoint;
//! - [`telemetry`]: every metric's name, description and handle, the
//!   Prometheus recorder and the in-process latency statistics;
//! - [`tools`]: the rule author's commands (`check`, `test`, `eval`), pack
//!   directories and diagnostics rendering, and `gavel sim`;
//! - [`backtest`]: `gavel replay`;
//! - [`demo`]: the embedded demo (mock cluster, simulator, live view);
//! - [`clock`]: the one place the wall clock is read;
//! - [`error`]: errors classified by who must act and whether a retry helps.
//!
//! Start reading at [`runtime::serve`]: it is the whole runtime in one
//! function. `main.rs` only parses the command line and dispatches here.

pub mod backtest;
pub mod clock;
pub mod demo;
pub mod error;
pub mod runtime;
pub mod telemetry;
pub mod tools;
