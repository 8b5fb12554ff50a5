//! Package-keyed index over a set of advisories, so that a scan is one hash
//! lookup per package plus only the comparisons of the entries it finds.

use std::collections::HashMap;

use crate::model::Advisory;

/// Maps `(ecosystem, package name)` to `(advisory index, affected index)` pairs
/// into the slice the index was built from.
#[derive(Debug, Clone, Default)]
pub struct Index {
    by_ecosystem: HashMap<String, HashMap<String, Vec<(usize, usize)>>>,
}

impl Index {
    /// Indexes every `affected` entry of every advisory that is not withdrawn.
    /// Keys are exact strings, as in [`crate::matches()`].
    pub fn new(advisories: &[Advisory]) -> Index {
        let mut by_ecosystem: HashMap<String, HashMap<String, Vec<(usize, usize)>>> =
            HashMap::new();
        for (ai, adv) in advisories.iter().enumerate() {
            if adv.is_withdrawn() {
                continue;
            }
            for (fi, affected) in adv.affected.iter().enumerate() {
                let package = &affected.package;
                if package.name.is_empty() {
                    continue;
                }
                by_ecosystem
                    .entry(package.ecosystem.clone())
                    .or_default()
                    .entry(package.name.clone())
                    .or_default()
                    .push((ai, fi));
            }
        }
        Index { by_ecosystem }
    }

    /// `(advisory index, affected index)` pairs for one package; empty if none.
    pub fn lookup(&self, ecosystem: &str, name: &str) -> &[(usize, usize)] {
        self.by_ecosystem
            .get(ecosystem)
            .and_then(|names| names.get(name))
            .map_or(&[], Vec::as_slice)
    }

    /// Number of distinct `(ecosystem, name)` keys.
    pub fn len(&self) -> usize {
        self.by_ecosystem.values().map(HashMap::len).sum()
    }

    /// Whether nothing was indexed.
    pub fn is_empty(&self) -> bool {
        self.by_ecosystem.is_empty()
    }
}
