//! The `features` section: each windowed feature's kinds, aggregate,
//! window, key, filter and value checked and compiled, and the types rules
//! read features as.

use std::collections::HashMap;
use std::sync::Arc;

use gavel_model::Aggregate;

use super::{PackCompiler, Source, parse_window};
use crate::diagnostic::code;
use crate::env::PackEnv;
use crate::expr::{StringList, Type};
use crate::format::FeatureDef;
use crate::{DEFAULT_MAX_KEYS, Feature};

/// The type rules read a feature with this aggregate as.
pub fn aggregate_type(aggregate: Aggregate) -> Type {
    match aggregate {
        Aggregate::Count | Aggregate::Distinct => Type::Int,
        Aggregate::Sum | Aggregate::Min | Aggregate::Max | Aggregate::Avg => Type::Double,
        Aggregate::FirstSeen | Aggregate::LastSeen => Type::Timestamp,
        Aggregate::Since => Type::Duration,
        Aggregate::Recent => Type::List(Box::new(Type::String)),
    }
}

/// The types a feature's `value` expression may have under this aggregate;
/// empty when the aggregate takes no value.
pub fn aggregate_value_types(aggregate: Aggregate) -> &'static [Type] {
    match aggregate {
        Aggregate::Sum | Aggregate::Min | Aggregate::Max | Aggregate::Avg => &[Type::Int, Type::Uint, Type::Double],
        Aggregate::Distinct | Aggregate::Recent => &[Type::String],
        _ => &[],
    }
}

impl PackCompiler {
    /// Every feature, and the index rules resolve `features.<name>` by
    /// (failed features registered at `usize::MAX`).
    pub(super) fn features(
        &mut self,
        parsed: &[Source<'_>],
        lists: &HashMap<String, Arc<StringList>>,
    ) -> (Vec<Feature>, HashMap<String, (usize, Type)>) {
        let mut features = Vec::new();
        let mut index: HashMap<String, (usize, Type)> = HashMap::new();
        let no_features = HashMap::new();
        for src in parsed {
            for def in &src.file.features {
                if index.contains_key(&def.name.value) {
                    self.at(code::DUPLICATE, src, &def.name, format!("duplicate feature `{}`", def.name.value));
                    continue;
                }
                if let Some(feature) = self.feature(src, def, &no_features, lists) {
                    index.insert(feature.name.clone(), (features.len(), aggregate_type(feature.aggregate)));
                    features.push(feature);
                } else {
                    // Register the name so rules reading it are not reported too.
                    index.insert(def.name.value.clone(), (usize::MAX, Type::Int));
                }
            }
        }
        (features, index)
    }

    fn feature(
        &mut self,
        src: &Source<'_>,
        def: &FeatureDef,
        no_features: &HashMap<String, (usize, Type)>,
        lists: &HashMap<String, Arc<StringList>>,
    ) -> Option<Feature> {
        let on = self.kinds(src, &def.on);
        let aggregate = match Aggregate::from_name(&def.aggregate.value) {
            Some(a) => Some(a),
            None => {
                let names: Vec<&str> = Aggregate::ALL.iter().map(|a| a.name()).collect();
                self.at(
                    code::UNKNOWN_NAME,
                    src,
                    &def.aggregate,
                    format!("unknown aggregate `{}` (expected one of {})", def.aggregate.value, names.join(", ")),
                );
                None
            }
        };
        let window_ms = match parse_window(&def.window.value) {
            Ok(ms) => Some(ms),
            Err(e) => {
                self.at(code::BAD_VALUE, src, &def.window, e);
                None
            }
        };
        let on = on?;
        let env = PackEnv::new(&on, "feature", no_features, lists);
        let key = self.expression(src, &def.key, &env, &[Type::String]);
        let filter = match &def.filter {
            Some(f) => Some(self.expression(src, f, &env, &[Type::Bool])?),
            None => None,
        };
        let aggregate = aggregate?;
        let value = match (&def.value, aggregate_value_types(aggregate)) {
            (Some(v), []) => {
                self.at(code::BAD_VALUE, src, v, format!("aggregate `{}` takes no `value`", aggregate.name()));
                return None;
            }
            (Some(v), types) => Some(self.expression(src, v, &env, types)?),
            (None, []) => None,
            (None, _) => {
                self.at(
                    code::MISSING,
                    src,
                    &def.aggregate,
                    format!("aggregate `{}` needs a `value` expression", aggregate.name()),
                );
                return None;
            }
        };
        let max_keys = match &def.max_keys {
            Some(n) if n.value == 0 => {
                self.at(code::BAD_VALUE, src, n, "max_keys must be at least 1");
                return None;
            }
            Some(n) => usize::try_from(n.value).unwrap_or(usize::MAX),
            None => DEFAULT_MAX_KEYS,
        };
        Some(Feature {
            name: def.name.value.clone(),
            on,
            key: key?,
            filter,
            value,
            window_ms: window_ms?,
            aggregate,
            max_keys,
        })
    }
}
