//! The engine's error type and the one table that maps every user-facing error to
//! Meilisearch's `code`, `type`, HTTP status and documentation link.
//!
//! The table lives here, not in the HTTP server, because failed tasks are persisted by the
//! engine with their Meilisearch error object: the code a client sees in `GET /tasks/{uid}`
//! must be the same one the route would have answered with.

use std::path::PathBuf;
use std::time::Duration;

/// Result alias for the engine.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Every error the engine reports.
#[non_exhaustive]
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// No index with this uid exists.
    #[error("Index `{0}` not found.")]
    IndexNotFound(String),
    /// An index with this uid already exists.
    #[error("Index `{0}` already exists.")]
    IndexAlreadyExists(String),
    /// The index uid has characters or a length Meilisearch does not accept.
    #[error(
        "`{0}` is not a valid index uid. Index uid can be an integer or a string containing only alphanumeric characters, hyphens (-) and underscores (_), and can not be more than 400 bytes."
    )]
    InvalidIndexUid(String),
    /// The index already has a primary key and a different one was given.
    #[error("Index `{index}`: Index already has a primary key: `{primary_key}`.")]
    PrimaryKeyAlreadyPresent {
        /// Index uid.
        index: String,
        /// The primary key the index has.
        primary_key: String,
    },
    /// No attribute of the first document could serve as primary key.
    #[error(
        "The primary key inference failed as the engine did not find any field ending with `id` in its name. Please specify the primary key manually using the `primaryKey` query parameter."
    )]
    PrimaryKeyNoCandidate,
    /// Several attributes of the first document could serve as primary key.
    #[error(
        "The primary key inference failed as the engine found {} fields ending with `id` in their names: {}. Please specify the primary key manually using the `primaryKey` query parameter.", .0.len(), quoted_list(.0)
    )]
    PrimaryKeyMultipleCandidates(Vec<String>),
    /// A document lacks its primary key.
    #[error("Document doesn't have a `{primary_key}` attribute: `{document}`.")]
    MissingDocumentId {
        /// The primary key attribute.
        primary_key: String,
        /// The document (abbreviated).
        document: String,
    },
    /// A document id is not an integer nor a string of `[A-Za-z0-9_-]` shorter than 512 bytes.
    #[error(
        "Document identifier `{0}` is invalid. A document identifier can be of type integer or string, only composed of alphanumeric characters (a-z A-Z 0-9), hyphens (-) and underscores (_), and can not be more than 511 bytes."
    )]
    InvalidDocumentId(String),
    /// A document's primary key attribute holds several values.
    #[error("Document `{document}` has several values for the primary key `{primary_key}`.")]
    TooManyDocumentIds {
        /// The primary key attribute.
        primary_key: String,
        /// The document (abbreviated).
        document: String,
    },
    /// No document with this id exists in the index.
    #[error("Document `{0}` not found.")]
    DocumentNotFound(String),
    /// The payload could not be parsed.
    #[error("{0}")]
    MalformedPayload(String),
    /// The payload held no document at all where some were required.
    #[error("A {0} payload is missing.")]
    MissingPayload(&'static str),
    /// A search request parameter is invalid.
    #[error("{message}")]
    InvalidSearch {
        /// Meilisearch code, e.g. `invalid_search_q`.
        code: Code,
        /// Explanation.
        message: String,
    },
    /// A settings value is invalid.
    #[error("{message}")]
    InvalidSettings {
        /// Meilisearch code, e.g. `invalid_settings_ranking_rules`.
        code: Code,
        /// Explanation.
        message: String,
    },
    /// A request parameter is invalid (tasks, documents, indexes routes).
    #[error("{message}")]
    InvalidRequest {
        /// Meilisearch code.
        code: Code,
        /// Explanation.
        message: String,
    },
    /// No task with this uid exists.
    #[error("Task `{0}` not found.")]
    TaskNotFound(u64),
    /// The engine's memory budget is exhausted and did not free up within the wait bound.
    #[error(
        "eddy is overloaded: the memory budget for unflushed writes is exhausted. Retry in {retry_after:?}."
    )]
    Overloaded {
        /// How long a client should wait before retrying.
        retry_after: Duration,
    },
    /// A write failed earlier (I/O error or failed fsync): no more writes are accepted until
    /// the engine is reopened. Reads keep working.
    #[error(
        "eddy stopped accepting writes after an I/O failure ({0}); restart the server to recover from the write-ahead log"
    )]
    Poisoned(String),
    /// Another process owns the data directory.
    #[error(
        "the data directory {} is already in use by another eddy process (lock file is held)", .0.display()
    )]
    Locked(PathBuf),
    /// The data directory was written by an unknown format version.
    #[error(
        "the data directory {path} has format version `{found}`, this eddy reads version `{expected}`", path = .path.display()
    )]
    UnsupportedVersion {
        /// Data directory.
        path: PathBuf,
        /// Version found on disk.
        found: String,
        /// Version this build understands.
        expected: String,
    },
    /// A file-system operation failed.
    #[error("I/O error while trying to {op} {}: {source}", .path.display())]
    Io {
        /// What was attempted.
        op: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// The write-ahead log failed.
    #[error("write-ahead log: {0}")]
    Wal(#[from] eddy_wal::Error),
    /// Tantivy failed.
    #[error("segment store: {0}")]
    Tantivy(#[from] tantivy::TantivyError),
    /// The metadata store failed.
    #[error("metadata store: {0}")]
    Meta(String),
    /// Data on disk does not decode.
    #[error("corrupt data: {0}")]
    Corrupt(String),
    /// The engine has been closed.
    #[error("the engine is shutting down")]
    Closed,
}

fn quoted_list(items: &[String]) -> String {
    items
        .iter()
        .map(|s| format!("`{s}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

impl Error {
    /// The Meilisearch error code of this error.
    pub fn code(&self) -> Code {
        match self {
            Error::IndexNotFound(_) => Code::IndexNotFound,
            Error::IndexAlreadyExists(_) => Code::IndexAlreadyExists,
            Error::InvalidIndexUid(_) => Code::InvalidIndexUid,
            Error::PrimaryKeyAlreadyPresent { .. } => Code::IndexPrimaryKeyAlreadyExists,
            Error::PrimaryKeyNoCandidate => Code::IndexPrimaryKeyNoCandidateFound,
            Error::PrimaryKeyMultipleCandidates(_) => Code::IndexPrimaryKeyMultipleCandidatesFound,
            Error::MissingDocumentId { .. } => Code::MissingDocumentId,
            Error::InvalidDocumentId(_) | Error::TooManyDocumentIds { .. } => {
                Code::InvalidDocumentId
            }
            Error::DocumentNotFound(_) => Code::DocumentNotFound,
            Error::MalformedPayload(_) => Code::MalformedPayload,
            Error::MissingPayload(_) => Code::MissingPayload,
            Error::InvalidSearch { code, .. }
            | Error::InvalidSettings { code, .. }
            | Error::InvalidRequest { code, .. } => *code,
            Error::TaskNotFound(_) => Code::TaskNotFound,
            Error::Overloaded { .. } => Code::TooManyRequests,
            Error::Io { source, .. } if source.raw_os_error() == Some(28) => {
                Code::NoSpaceLeftOnDevice
            }
            Error::Poisoned(_)
            | Error::Locked(_)
            | Error::UnsupportedVersion { .. }
            | Error::Io { .. }
            | Error::Wal(_)
            | Error::Tantivy(_)
            | Error::Meta(_)
            | Error::Corrupt(_)
            | Error::Closed => Code::Internal,
        }
    }

    /// Builds an [`Error::InvalidRequest`].
    pub fn invalid(code: Code, message: impl Into<String>) -> Error {
        Error::InvalidRequest {
            code,
            message: message.into(),
        }
    }

    /// The error as Meilisearch's error object (`message`, `code`, `type`, `link`).
    pub fn to_response(&self) -> ResponseError {
        ResponseError::new(self.code(), self.to_string())
    }

    pub(crate) fn meta(e: impl std::fmt::Display) -> Error {
        Error::Meta(e.to_string())
    }

    pub(crate) fn io(op: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Error {
        Error::Io {
            op,
            path: path.into(),
            source,
        }
    }
}

/// The category Meilisearch puts an error code in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorType {
    /// The request was wrong.
    InvalidRequest,
    /// Authentication or authorization failed.
    Auth,
    /// The server failed.
    Internal,
    /// The system (disk, memory) failed.
    System,
}

impl ErrorType {
    /// Name as Meilisearch spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorType::InvalidRequest => "invalid_request",
            ErrorType::Auth => "auth",
            ErrorType::Internal => "internal",
            ErrorType::System => "system",
        }
    }
}

macro_rules! codes {
    ($($variant:ident => ($name:literal, $status:literal, $ty:ident)),* $(,)?) => {
        /// A Meilisearch error code. This is the single table from error to HTTP status,
        /// `code`, `type` and documentation link.
        #[non_exhaustive]
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        #[allow(missing_docs)]
        pub enum Code { $($variant),* }

        impl Code {
            /// The code as Meilisearch spells it, e.g. `index_not_found`.
            pub fn name(self) -> &'static str {
                match self { $(Code::$variant => $name),* }
            }
            /// The HTTP status Meilisearch answers with.
            pub fn http_status(self) -> u16 {
                match self { $(Code::$variant => $status),* }
            }
            /// The category of the code.
            pub fn error_type(self) -> ErrorType {
                match self { $(Code::$variant => ErrorType::$ty),* }
            }
            /// Looks a code up by its Meilisearch name.
            pub fn from_name(name: &str) -> Option<Code> {
                match name { $($name => Some(Code::$variant),)* _ => None }
            }
        }
    };
}

codes! {
    // Indexes
    IndexNotFound => ("index_not_found", 404, InvalidRequest),
    IndexAlreadyExists => ("index_already_exists", 409, InvalidRequest),
    InvalidIndexUid => ("invalid_index_uid", 400, InvalidRequest),
    InvalidIndexPrimaryKey => ("invalid_index_primary_key", 400, InvalidRequest),
    InvalidIndexLimit => ("invalid_index_limit", 400, InvalidRequest),
    InvalidIndexOffset => ("invalid_index_offset", 400, InvalidRequest),
    MissingIndexUid => ("missing_index_uid", 400, InvalidRequest),
    IndexPrimaryKeyAlreadyExists => ("index_primary_key_already_exists", 400, InvalidRequest),
    IndexPrimaryKeyNoCandidateFound => ("index_primary_key_no_candidate_found", 400, InvalidRequest),
    IndexPrimaryKeyMultipleCandidatesFound => ("index_primary_key_multiple_candidates_found", 400, InvalidRequest),
    // Documents
    DocumentNotFound => ("document_not_found", 404, InvalidRequest),
    InvalidDocumentId => ("invalid_document_id", 400, InvalidRequest),
    MissingDocumentId => ("missing_document_id", 400, InvalidRequest),
    InvalidDocumentFields => ("invalid_document_fields", 400, InvalidRequest),
    InvalidDocumentLimit => ("invalid_document_limit", 400, InvalidRequest),
    InvalidDocumentOffset => ("invalid_document_offset", 400, InvalidRequest),
    InvalidDocumentFilter => ("invalid_document_filter", 400, InvalidRequest),
    InvalidDocumentSort => ("invalid_document_sort", 400, InvalidRequest),
    InvalidDocumentIds => ("invalid_document_ids", 400, InvalidRequest),
    MissingDocumentFilter => ("missing_document_filter", 400, InvalidRequest),
    InvalidDocumentCsvDelimiter => ("invalid_document_csv_delimiter", 400, InvalidRequest),
    // Payloads
    MissingPayload => ("missing_payload", 400, InvalidRequest),
    MalformedPayload => ("malformed_payload", 400, InvalidRequest),
    InvalidContentType => ("invalid_content_type", 415, InvalidRequest),
    MissingContentType => ("missing_content_type", 415, InvalidRequest),
    PayloadTooLarge => ("payload_too_large", 413, InvalidRequest),
    BadRequest => ("bad_request", 400, InvalidRequest),
    // Search
    InvalidSearchQ => ("invalid_search_q", 400, InvalidRequest),
    InvalidSearchOffset => ("invalid_search_offset", 400, InvalidRequest),
    InvalidSearchLimit => ("invalid_search_limit", 400, InvalidRequest),
    InvalidSearchPage => ("invalid_search_page", 400, InvalidRequest),
    InvalidSearchHitsPerPage => ("invalid_search_hits_per_page", 400, InvalidRequest),
    InvalidSearchAttributesToRetrieve => ("invalid_search_attributes_to_retrieve", 400, InvalidRequest),
    InvalidSearchAttributesToCrop => ("invalid_search_attributes_to_crop", 400, InvalidRequest),
    InvalidSearchCropLength => ("invalid_search_crop_length", 400, InvalidRequest),
    InvalidSearchCropMarker => ("invalid_search_crop_marker", 400, InvalidRequest),
    InvalidSearchAttributesToHighlight => ("invalid_search_attributes_to_highlight", 400, InvalidRequest),
    InvalidSearchHighlightPreTag => ("invalid_search_highlight_pre_tag", 400, InvalidRequest),
    InvalidSearchHighlightPostTag => ("invalid_search_highlight_post_tag", 400, InvalidRequest),
    InvalidSearchShowMatchesPosition => ("invalid_search_show_matches_position", 400, InvalidRequest),
    InvalidSearchFilter => ("invalid_search_filter", 400, InvalidRequest),
    InvalidSearchSort => ("invalid_search_sort", 400, InvalidRequest),
    InvalidSearchDistinct => ("invalid_search_distinct", 400, InvalidRequest),
    InvalidSearchFacets => ("invalid_search_facets", 400, InvalidRequest),
    InvalidSearchMatchingStrategy => ("invalid_search_matching_strategy", 400, InvalidRequest),
    InvalidSearchShowRankingScore => ("invalid_search_show_ranking_score", 400, InvalidRequest),
    InvalidSearchShowRankingScoreDetails => ("invalid_search_show_ranking_score_details", 400, InvalidRequest),
    InvalidSearchRankingScoreThreshold => ("invalid_search_ranking_score_threshold", 400, InvalidRequest),
    InvalidSearchAttributesToSearchOn => ("invalid_search_attributes_to_search_on", 400, InvalidRequest),
    InvalidSearchQueries => ("invalid_multi_search_queries", 400, InvalidRequest),
    InvalidMultiSearchFederated => ("invalid_multi_search_federated", 400, InvalidRequest),
    InvalidMultiSearchFederationOptions => ("invalid_multi_search_federation_options", 400, InvalidRequest),
    InvalidMultiSearchQueryFederated => ("invalid_multi_search_query_federated", 400, InvalidRequest),
    InvalidFacetSearchFacetName => ("invalid_facet_search_facet_name", 400, InvalidRequest),
    InvalidFacetSearchFacetQuery => ("invalid_facet_search_facet_query", 400, InvalidRequest),
    MissingFacetSearchFacetName => ("missing_facet_search_facet_name", 400, InvalidRequest),
    // Settings
    InvalidSettingsRankingRules => ("invalid_settings_ranking_rules", 400, InvalidRequest),
    InvalidSettingsDistinctAttribute => ("invalid_settings_distinct_attribute", 400, InvalidRequest),
    InvalidSettingsSearchableAttributes => ("invalid_settings_searchable_attributes", 400, InvalidRequest),
    InvalidSettingsDisplayedAttributes => ("invalid_settings_displayed_attributes", 400, InvalidRequest),
    InvalidSettingsStopWords => ("invalid_settings_stop_words", 400, InvalidRequest),
    InvalidSettingsSynonyms => ("invalid_settings_synonyms", 400, InvalidRequest),
    InvalidSettingsFilterableAttributes => ("invalid_settings_filterable_attributes", 400, InvalidRequest),
    InvalidSettingsSortableAttributes => ("invalid_settings_sortable_attributes", 400, InvalidRequest),
    InvalidSettingsTypoTolerance => ("invalid_settings_typo_tolerance", 400, InvalidRequest),
    InvalidSettingsPagination => ("invalid_settings_pagination", 400, InvalidRequest),
    InvalidSettingsFaceting => ("invalid_settings_faceting", 400, InvalidRequest),
    InvalidSettingsDictionary => ("invalid_settings_dictionary", 400, InvalidRequest),
    InvalidSettingsSeparatorTokens => ("invalid_settings_separator_tokens", 400, InvalidRequest),
    InvalidSettingsNonSeparatorTokens => ("invalid_settings_non_separator_tokens", 400, InvalidRequest),
    InvalidSettingsSearchCutoffMs => ("invalid_settings_search_cutoff_ms", 400, InvalidRequest),
    InvalidSettingsPrefixSearch => ("invalid_settings_prefix_search", 400, InvalidRequest),
    InvalidSettingsProximityPrecision => ("invalid_settings_proximity_precision", 400, InvalidRequest),
    InvalidSettingsLocalizedAttributes => ("invalid_settings_localized_attributes", 400, InvalidRequest),
    InvalidSettingsFacetSearch => ("invalid_settings_facet_search", 400, InvalidRequest),
    InvalidSettingsEmbedders => ("invalid_settings_embedders", 400, InvalidRequest),
    // Tasks
    TaskNotFound => ("task_not_found", 404, InvalidRequest),
    BatchNotFound => ("batch_not_found", 404, InvalidRequest),
    InvalidTaskUids => ("invalid_task_uids", 400, InvalidRequest),
    InvalidTaskBatchUids => ("invalid_task_batch_uids", 400, InvalidRequest),
    InvalidTaskStatuses => ("invalid_task_statuses", 400, InvalidRequest),
    InvalidTaskTypes => ("invalid_task_types", 400, InvalidRequest),
    InvalidTaskIndexUids => ("invalid_task_index_uids", 400, InvalidRequest),
    InvalidTaskCanceledBy => ("invalid_task_canceled_by", 400, InvalidRequest),
    InvalidTaskLimit => ("invalid_task_limit", 400, InvalidRequest),
    InvalidTaskFrom => ("invalid_task_from", 400, InvalidRequest),
    InvalidTaskReverse => ("invalid_task_reverse", 400, InvalidRequest),
    InvalidTaskBeforeEnqueuedAt => ("invalid_task_before_enqueued_at", 400, InvalidRequest),
    InvalidTaskAfterEnqueuedAt => ("invalid_task_after_enqueued_at", 400, InvalidRequest),
    InvalidTaskBeforeStartedAt => ("invalid_task_before_started_at", 400, InvalidRequest),
    InvalidTaskAfterStartedAt => ("invalid_task_after_started_at", 400, InvalidRequest),
    InvalidTaskBeforeFinishedAt => ("invalid_task_before_finished_at", 400, InvalidRequest),
    InvalidTaskAfterFinishedAt => ("invalid_task_after_finished_at", 400, InvalidRequest),
    MissingTaskFilters => ("missing_task_filters", 400, InvalidRequest),
    // Keys and auth
    ApiKeyNotFound => ("api_key_not_found", 404, InvalidRequest),
    ApiKeyAlreadyExists => ("api_key_already_exists", 409, InvalidRequest),
    InvalidApiKeyActions => ("invalid_api_key_actions", 400, InvalidRequest),
    InvalidApiKeyIndexes => ("invalid_api_key_indexes", 400, InvalidRequest),
    InvalidApiKeyExpiresAt => ("invalid_api_key_expires_at", 400, InvalidRequest),
    InvalidApiKeyDescription => ("invalid_api_key_description", 400, InvalidRequest),
    InvalidApiKeyName => ("invalid_api_key_name", 400, InvalidRequest),
    InvalidApiKeyUid => ("invalid_api_key_uid", 400, InvalidRequest),
    InvalidApiKeyLimit => ("invalid_api_key_limit", 400, InvalidRequest),
    InvalidApiKeyOffset => ("invalid_api_key_offset", 400, InvalidRequest),
    ImmutableApiKeyUid => ("immutable_api_key_uid", 400, InvalidRequest),
    ImmutableApiKeyKey => ("immutable_api_key_key", 400, InvalidRequest),
    ImmutableApiKeyActions => ("immutable_api_key_actions", 400, InvalidRequest),
    ImmutableApiKeyIndexes => ("immutable_api_key_indexes", 400, InvalidRequest),
    ImmutableApiKeyExpiresAt => ("immutable_api_key_expires_at", 400, InvalidRequest),
    ImmutableApiKeyCreatedAt => ("immutable_api_key_created_at", 400, InvalidRequest),
    ImmutableApiKeyUpdatedAt => ("immutable_api_key_updated_at", 400, InvalidRequest),
    MissingApiKeyActions => ("missing_api_key_actions", 400, InvalidRequest),
    MissingApiKeyIndexes => ("missing_api_key_indexes", 400, InvalidRequest),
    MissingApiKeyExpiresAt => ("missing_api_key_expires_at", 400, InvalidRequest),
    MissingAuthorizationHeader => ("missing_authorization_header", 401, Auth),
    InvalidApiKey => ("invalid_api_key", 403, Auth),
    MissingMasterKey => ("missing_master_key", 401, Auth),
    // Webhooks and features
    InvalidWebhookUrl => ("invalid_webhook_url", 400, InvalidRequest),
    InvalidWebhookHeaders => ("invalid_webhook_headers", 400, InvalidRequest),
    WebhookNotFound => ("webhook_not_found", 404, InvalidRequest),
    ImmutableWebhook => ("immutable_webhook", 400, InvalidRequest),
    InvalidSwapIndexes => ("invalid_swap_indexes", 400, InvalidRequest),
    // System
    NoSpaceLeftOnDevice => ("no_space_left_on_device", 422, System),
    TooManyRequests => ("too_many_search_requests", 503, System),
    Internal => ("internal", 500, Internal),
    NotFound => ("not_found", 404, InvalidRequest),
    MethodNotAllowed => ("method_not_allowed", 405, InvalidRequest),
}

impl Code {
    /// Link to the documentation of the code.
    pub fn link(self) -> String {
        format!("https://docs.meilisearch.com/errors#{}", self.name())
    }
}

/// Meilisearch's error object, as answered by routes and stored in failed tasks.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ResponseError {
    /// Human-readable explanation.
    pub message: String,
    /// Meilisearch code.
    pub code: String,
    /// Category (`invalid_request`, `auth`, `internal`, `system`).
    #[serde(rename = "type")]
    pub error_type: String,
    /// Documentation link.
    pub link: String,
}

impl ResponseError {
    /// Builds the error object of a code with a message.
    pub fn new(code: Code, message: impl Into<String>) -> ResponseError {
        ResponseError {
            message: message.into(),
            code: code.name().to_string(),
            error_type: code.error_type().as_str().to_string(),
            link: code.link(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_round_trips_names() {
        for code in [
            Code::IndexNotFound,
            Code::MissingDocumentId,
            Code::TooManyRequests,
            Code::InvalidSearchFilter,
        ] {
            assert_eq!(Code::from_name(code.name()), Some(code));
        }
        assert_eq!(Code::IndexNotFound.http_status(), 404);
        assert_eq!(Code::TooManyRequests.http_status(), 503);
        assert_eq!(
            Code::MissingAuthorizationHeader.error_type().as_str(),
            "auth"
        );
    }

    #[test]
    fn response_error_shape() {
        let err = Error::IndexNotFound("movies".into()).to_response();
        let json = serde_json::to_value(&err).expect("serializes");
        assert_eq!(json["code"], "index_not_found");
        assert_eq!(json["type"], "invalid_request");
        assert_eq!(
            json["link"],
            "https://docs.meilisearch.com/errors#index_not_found"
        );
        assert_eq!(json["message"], "Index `movies` not found.");
    }
}
