//! What filters, sort, distinct and facets read from a document: the [`FieldFacets`] of some
//! attributes and the `_geo` point, extracted by `eddy-filter` exactly as its reference
//! evaluator does.
//!
//! Memtable documents are decoded from their JSON on demand. Segments are immutable, so their
//! values are extracted once per segment and attribute into a column (indexed by segment doc
//! id) kept in a process-wide cache keyed by Tantivy's segment id (unique across indexes); a
//! search then reads a segment document's values without touching the document store. Both
//! paths call the same extraction, so a document gives the same values in every layer.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use eddy_filter::{FieldFacets, Filter, condition_matches, field_facets, geo_point};
use serde_json::Value;
use tantivy::index::SegmentId;

use super::layers::{DocRef, Snapshot};
use crate::error::{Error, Result};

/// Pseudo-attribute of the geo point column.
pub const GEO: &str = "_geo";

/// Columns kept before the cache is emptied (each holds one attribute of one segment).
const MAX_COLUMNS: usize = 1024;

/// One attribute of every document of a segment.
pub enum Column {
    /// Facets per segment doc id.
    Facets(Vec<FieldFacets>),
    /// `_geo` points per segment doc id.
    Geo(Vec<Option<(f64, f64)>>),
}

type Cache = Mutex<HashMap<(SegmentId, String), Arc<Column>>>;

fn cache() -> &'static Cache {
    static CACHE: OnceLock<Cache> = OnceLock::new();
    CACHE.get_or_init(|| Mutex::new(HashMap::new()))
}

/// The values of a set of attributes for documents of a snapshot.
pub struct ValueReader<'s, 'a> {
    snapshot: &'s Snapshot<'a>,
    attributes: Vec<String>,
    /// Per layer: the segment's columns, one per attribute (`None` for memtable layers).
    columns: Vec<Option<Vec<Arc<Column>>>>,
}

/// The values of one document.
pub enum DocValues<'r> {
    /// A segment document: its row in the segment's columns.
    Segment {
        /// Columns, in the reader's attribute order.
        columns: &'r [Arc<Column>],
        /// Segment doc id.
        row: usize,
    },
    /// A memtable document, decoded.
    Decoded {
        /// Facets in the reader's attribute order.
        facets: Vec<FieldFacets>,
        /// `_geo` point.
        geo: Option<(f64, f64)>,
    },
}

static EMPTY: FieldFacets = FieldFacets {
    exists: false,
    is_null: false,
    is_empty: false,
    values: Vec::new(),
};

impl DocValues<'_> {
    /// The facets of attribute number `i` (in the reader's order).
    pub fn facets(&self, i: usize) -> &FieldFacets {
        match self {
            DocValues::Segment { columns, row } => match columns.get(i).map(|c| &**c) {
                Some(Column::Facets(v)) => v.get(*row).unwrap_or(&EMPTY),
                _ => &EMPTY,
            },
            DocValues::Decoded { facets, .. } => facets.get(i).unwrap_or(&EMPTY),
        }
    }

    /// The document's `_geo` point.
    pub fn geo(&self) -> Option<(f64, f64)> {
        match self {
            DocValues::Segment { columns, row } => columns.iter().find_map(|c| match &**c {
                Column::Geo(v) => v.get(*row).copied().flatten(),
                Column::Facets(_) => None,
            }),
            DocValues::Decoded { geo, .. } => *geo,
        }
    }
}

fn decode(snapshot: &Snapshot<'_>, doc: DocRef) -> Result<Value> {
    serde_json::from_slice(&snapshot.json(doc.layer, doc.doc)?)
        .map_err(|e| Error::Corrupt(format!("stored document does not decode: {e}")))
}

impl<'s, 'a> ValueReader<'s, 'a> {
    /// A reader of `attributes` (the geo point is always available).
    ///
    /// # Errors
    /// Storage errors while building a segment's columns.
    pub fn new(snapshot: &'s Snapshot<'a>, attributes: Vec<String>) -> Result<Self> {
        let mut columns = Vec::with_capacity(snapshot.layer_count() as usize);
        for layer in 0..snapshot.layer_count() {
            columns.push(match snapshot.segment_id(layer) {
                Some(id) => Some(segment_columns(snapshot, layer, id, &attributes)?),
                None => None,
            });
        }
        Ok(ValueReader {
            snapshot,
            attributes,
            columns,
        })
    }

    /// Index of an attribute in this reader.
    pub fn position(&self, attribute: &str) -> Option<usize> {
        self.attributes.iter().position(|a| a == attribute)
    }

    /// The values of a document.
    ///
    /// # Errors
    /// Storage errors (memtable documents are decoded).
    pub fn read(&self, doc: DocRef) -> Result<DocValues<'_>> {
        match &self.columns[doc.layer as usize] {
            Some(columns) => Ok(DocValues::Segment {
                columns,
                row: doc.doc as usize,
            }),
            None => {
                let json = decode(self.snapshot, doc)?;
                Ok(DocValues::Decoded {
                    facets: self
                        .attributes
                        .iter()
                        .map(|a| {
                            if a == GEO {
                                FieldFacets::default()
                            } else {
                                field_facets(&json, a)
                            }
                        })
                        .collect(),
                    geo: geo_point(&json),
                })
            }
        }
    }

    /// Whether a document satisfies a filter, as [`eddy_filter::matches`] decides.
    pub fn matches(&self, filter: &Filter, values: &DocValues<'_>) -> bool {
        match filter {
            Filter::And(items) => items.iter().all(|f| self.matches(f, values)),
            Filter::Or(items) => items.iter().any(|f| self.matches(f, values)),
            Filter::Not(inner) => !self.matches(inner, values),
            Filter::Condition { attribute, op } => match self.position(attribute) {
                Some(i) => condition_matches(op, values.facets(i)),
                None => condition_matches(op, &EMPTY),
            },
            Filter::GeoRadius { lat, lng, radius_m } => values.geo().is_some_and(|p| {
                // A great-circle distance is at least the latitude difference's arc: points
                // clearly farther in latitude alone skip the haversine (1 m of margin covers
                // rounding, so the answer is the reference evaluator's).
                let lat_arc_m = (p.0 - lat).to_radians().abs() * eddy_filter::EARTH_RADIUS_M;
                lat_arc_m <= radius_m + 1.0
                    && eddy_filter::geo_radius_contains((*lat, *lng), *radius_m, p)
            }),
            Filter::GeoBoundingBox {
                top_right,
                bottom_left,
            } => values.geo().is_some_and(|p| {
                eddy_filter::geo_bounding_box_contains(*top_right, *bottom_left, p)
            }),
        }
    }
}

fn segment_columns(
    snapshot: &Snapshot<'_>,
    layer: u32,
    id: SegmentId,
    attributes: &[String],
) -> Result<Vec<Arc<Column>>> {
    let key = |a: &str| (id, a.to_string());
    let mut out: Vec<Option<Arc<Column>>> = {
        let cache = cache().lock().unwrap_or_else(|p| p.into_inner());
        attributes
            .iter()
            .map(|a| cache.get(&key(a)).cloned())
            .collect()
    };
    let missing: Vec<usize> = (0..attributes.len())
        .filter(|i| out[*i].is_none())
        .collect();
    if !missing.is_empty() {
        let max = snapshot.max_doc(layer) as usize;
        let mut built: Vec<Column> = missing
            .iter()
            .map(|&i| {
                if attributes[i] == GEO {
                    Column::Geo(Vec::with_capacity(max))
                } else {
                    Column::Facets(Vec::with_capacity(max))
                }
            })
            .collect();
        for doc in 0..max {
            let json = decode(
                snapshot,
                DocRef {
                    layer,
                    doc: doc as u32,
                },
            )?;
            for (&i, col) in missing.iter().zip(built.iter_mut()) {
                match col {
                    Column::Facets(v) => v.push(field_facets(&json, &attributes[i])),
                    Column::Geo(v) => v.push(geo_point(&json)),
                }
            }
        }
        let mut cache = cache().lock().unwrap_or_else(|p| p.into_inner());
        if cache.len() + built.len() > MAX_COLUMNS {
            cache.clear();
        }
        for (&i, col) in missing.iter().zip(built) {
            let col = Arc::new(col);
            cache.insert(key(&attributes[i]), col.clone());
            out[i] = Some(col);
        }
    }
    Ok(out.into_iter().flatten().collect())
}
