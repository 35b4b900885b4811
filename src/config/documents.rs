//! The manifest of trusted documents (`TRUSTED_DOCUMENTS`): read and
//! checked at start-up; `graphql::documents` enforces it.
use std::{
    collections::{HashMap, HashSet},
    sync::Arc,
};

use anyhow::Context as _;

/// The manifest of trusted documents.
#[derive(Debug, Default)]
pub struct Manifest {
    by_id: HashMap<String, Arc<str>>,
    texts: HashSet<Arc<str>>,
}

impl Manifest {
    /// Reads a manifest in Apollo's or Relay's format.
    pub fn load(path: &std::path::Path) -> anyhow::Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading TRUSTED_DOCUMENTS {}", path.display()))?;
        Self::parse(&text).with_context(|| format!("TRUSTED_DOCUMENTS {}", path.display()))
    }

    pub fn parse(text: &str) -> anyhow::Result<Self> {
        let value: serde_json::Value =
            serde_json::from_str(text).context("the manifest is not JSON")?;
        let mut manifest = Manifest::default();
        let object = value
            .as_object()
            .context("the manifest must be a JSON object")?;
        if object.get("format").and_then(|f| f.as_str()) == Some("apollo-persisted-query-manifest")
        {
            let operations = object
                .get("operations")
                .and_then(|o| o.as_array())
                .context("an Apollo manifest lists its `operations`")?;
            for operation in operations {
                let id = operation.get("id").and_then(|v| v.as_str());
                let body = operation.get("body").and_then(|v| v.as_str());
                let (Some(id), Some(body)) = (id, body) else {
                    anyhow::bail!("every operation of an Apollo manifest has an `id` and a `body`");
                };
                manifest.add(id, body);
            }
        } else {
            for (id, body) in object {
                let body = body
                    .as_str()
                    .with_context(|| format!("document {id:?} is not a string"))?;
                manifest.add(id, body);
            }
        }
        if manifest.by_id.is_empty() {
            anyhow::bail!("the manifest lists no document");
        }
        Ok(manifest)
    }

    /// The document listed under `id`.
    pub fn get(&self, id: &str) -> Option<&Arc<str>> {
        self.by_id.get(id)
    }

    /// Whether `text` is exactly one of the listed documents.
    pub fn contains_text(&self, text: &str) -> bool {
        self.texts.contains(text)
    }

    fn add(&mut self, id: &str, body: &str) {
        let body: Arc<str> = Arc::from(body);
        self.texts.insert(body.clone());
        self.by_id.insert(id.to_owned(), body);
    }

    pub fn len(&self) -> usize {
        self.by_id.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_id.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_manifest_formats_are_read_and_bad_ones_refused() {
        let apollo = r#"{"format": "apollo-persisted-query-manifest", "version": 1,
            "operations": [{"id": "abc", "name": "Me", "type": "query", "body": "query Me { me { id } }"}]}"#;
        let manifest = Manifest::parse(apollo).unwrap();
        assert_eq!(manifest.len(), 1);
        assert_eq!(&*manifest.by_id["abc"], "query Me { me { id } }");
        let relay = r#"{"1": "query A { me { id } }", "2": "query B { rooms { id } }"}"#;
        let manifest = Manifest::parse(relay).unwrap();
        assert!(manifest.texts.contains("query B { rooms { id } }"));
        for bad in [
            "[]",
            "{}",
            r#"{"1": 2}"#,
            r#"{"format": "apollo-persisted-query-manifest"}"#,
            "nope",
        ] {
            assert!(Manifest::parse(bad).is_err(), "{bad}");
        }
    }
}
