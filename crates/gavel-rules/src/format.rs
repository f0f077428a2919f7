//! The YAML shape of a pack file, as serde sees it. Unknown keys are errors.

use serde::Deserialize;

/// One YAML file of a pack.
#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(crate) struct PackFile {
    /// The pack's version, stamped on every output. Exactly one file sets it.
    #[serde(default)]
    pub version: Option<String>,
    #[serde(default)]
    pub features: Vec<FeatureDef>,
    #[serde(default)]
    pub rules: Vec<RuleDef>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct FeatureDef {
    pub name: String,
    /// Event kinds that update the feature.
    pub on: Vec<String>,
    /// The envelope field the feature is grouped by.
    pub key: String,
    /// Window length, e.g. `10s`, `5m`, `1h`, `30d`.
    pub window: String,
    pub aggregate: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RuleDef {
    pub id: String,
    pub description: String,
    #[serde(default)]
    pub owner: Option<String>,
    pub on: Vec<String>,
    pub when: String,
    pub score: i32,
    #[serde(default)]
    pub mode: Option<String>,
    #[serde(default = "enabled")]
    pub enabled: bool,
}

fn enabled() -> bool {
    true
}
