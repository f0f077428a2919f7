//! Shared helpers for gavel benchmarks.
