//! The demo's proof: the archive holds one product item for each product of the shop,
//! read back from every archiver shard, not taken from the dispatcher's counters.

use std::collections::{BTreeMap, BTreeSet};

use anyhow::Context;
use owlmesh_mesh::api;
use owlmesh_proto::v1::field_value::Value;
use owlmesh_proto::v1::{DataItem, QueryItemsRequest};
use owlmesh_site::{PRODUCT_HANDLER, Site};

use crate::mesh::{Mesh, status_error};

/// Items asked for per page: the most the archiver gives.
const PAGE_SIZE: u32 = 1000;
/// Missing or unexpected SKUs named in a report, at most.
const EXAMPLES: usize = 3;

/// How the archive compares with the shop.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Verdict {
    /// Product items in the archive, duplicates included.
    pub(super) archived: usize,
    /// Products in the shop.
    pub(super) expected: usize,
    /// Products with no item.
    pub(super) missing: Vec<String>,
    /// Items that are no product of the shop, or a product seen twice.
    pub(super) unexpected: Vec<String>,
}

impl Verdict {
    /// Exactly one item per product, and nothing else.
    pub(super) fn matches(&self) -> bool {
        self.archived == self.expected && self.missing.is_empty() && self.unexpected.is_empty()
    }

    /// One line for people.
    pub(super) fn describe(&self) -> String {
        if self.matches() {
            return format!(
                "verified: the archive holds {} product items, one for each of the {} products of the demo shop",
                self.archived, self.expected
            );
        }
        let mut text = format!(
            "mismatch: the archive holds {} product items for the {} products of the demo shop",
            self.archived, self.expected
        );
        if !self.missing.is_empty() {
            text.push_str(&format!("; missing {}", examples(&self.missing)));
        }
        if !self.unexpected.is_empty() {
            text.push_str(&format!("; unexpected {}", examples(&self.unexpected)));
        }
        text
    }
}

/// Reads the job's product items from every archiver and compares their SKUs with the shop.
pub(super) async fn verify(mesh: &Mesh, job_id: &str, site: &Site) -> anyhow::Result<Verdict> {
    let skus = archived_skus(mesh, job_id).await?;
    let expected = site.expected_products().into_iter().map(|p| p.sku);
    Ok(compare(expected, skus))
}

/// Compares the shop's SKUs with the archived ones (an item without a SKU counts as "").
pub(super) fn compare(
    expected: impl IntoIterator<Item = String>,
    archived: Vec<String>,
) -> Verdict {
    let expected: BTreeSet<String> = expected.into_iter().collect();
    let mut seen: BTreeMap<&str, usize> = BTreeMap::new();
    for sku in &archived {
        *seen.entry(sku.as_str()).or_default() += 1;
    }
    let missing = expected
        .iter()
        .filter(|sku| !seen.contains_key(sku.as_str()))
        .cloned()
        .collect();
    let unexpected = seen
        .iter()
        .filter(|(sku, count)| **count > 1 || !expected.contains(**sku))
        .map(|(sku, _)| (*sku).to_owned())
        .collect();
    Verdict {
        archived: archived.len(),
        expected: expected.len(),
        missing,
        unexpected,
    }
}

async fn archived_skus(mesh: &Mesh, job_id: &str) -> anyhow::Result<Vec<String>> {
    let mut skus = Vec::new();
    for archiver in mesh.list("archiver").await? {
        let mut client = api::archiver_client(mesh.channel(&archiver)?);
        let mut page_token = String::new();
        loop {
            let request = QueryItemsRequest {
                job_id: job_id.to_owned(),
                handler: PRODUCT_HANDLER.to_owned(),
                limit: PAGE_SIZE,
                page_token,
            };
            let page = client
                .query_items(request)
                .await
                .map_err(status_error)
                .with_context(|| format!("reading the items of {}", archiver.id))?
                .into_inner();
            skus.extend(page.items.iter().map(sku));
            if page.next_page_token.is_empty() {
                break;
            }
            page_token = page.next_page_token;
        }
    }
    Ok(skus)
}

fn sku(item: &DataItem) -> String {
    match item
        .fields
        .get("sku")
        .and_then(|field| field.value.as_ref())
    {
        Some(Value::Text(text)) => text.clone(),
        Some(Value::List(list)) => list.values.first().cloned().unwrap_or_default(),
        None => String::new(),
    }
}

fn examples(skus: &[String]) -> String {
    let shown: Vec<String> = skus
        .iter()
        .take(EXAMPLES)
        .map(|sku| format!("{sku:?}"))
        .collect();
    let more = skus.len().saturating_sub(EXAMPLES);
    if more == 0 {
        format!("{} ({})", skus.len(), shown.join(", "))
    } else {
        format!("{} ({}, and {more} more)", skus.len(), shown.join(", "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn skus(names: &[&str]) -> Vec<String> {
        names.iter().map(|name| (*name).to_owned()).collect()
    }

    #[test]
    fn one_item_per_product_matches() {
        let verdict = compare(skus(&["A", "B"]), skus(&["B", "A"]));
        assert!(verdict.matches(), "{verdict:?}");
        assert!(
            verdict
                .describe()
                .starts_with("verified: the archive holds 2 product items")
        );
    }

    #[test]
    fn a_missing_product_and_a_duplicate_are_named() {
        let verdict = compare(skus(&["A", "B", "C"]), skus(&["A", "A", "B"]));
        assert!(!verdict.matches());
        assert_eq!(verdict.missing, ["C"]);
        assert_eq!(verdict.unexpected, ["A"]);
        assert_eq!(
            verdict.describe(),
            "mismatch: the archive holds 3 product items for the 3 products of the demo shop; missing 1 (\"C\"); unexpected 1 (\"A\")"
        );
    }
}
