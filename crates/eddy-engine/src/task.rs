//! Tasks: the record Meilisearch clients read for every write.
//!
//! In eddy a task is finished when its write returns: its uid comes from the write's LSN, it
//! is applied before the acknowledgement, and its record is stored in the metadata store in
//! the same step. The one exception is a settings change that rebuilds the index: its task is
//! `processing` until the rebuilt index is swapped in (see [`crate::rebuild`]). Timestamps are RFC 3339 with nine fractional digits and `Z` (clients reject
//! timestamps without fractional seconds).

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use time::OffsetDateTime;

use crate::error::ResponseError;

/// Task uid of the operation logged at `lsn` (the first task is 0, as in Meilisearch).
pub fn uid_of_lsn(lsn: u64) -> u64 {
    lsn.saturating_sub(1)
}

/// Status of a task.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum TaskStatus {
    /// Waiting (never seen in eddy: writes are applied before they answer).
    Enqueued,
    /// Running (a settings change waiting for its rebuild).
    Processing,
    /// Done.
    Succeeded,
    /// Failed; `error` says why.
    Failed,
    /// Canceled.
    Canceled,
}

impl TaskStatus {
    /// Name as Meilisearch spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            TaskStatus::Enqueued => "enqueued",
            TaskStatus::Processing => "processing",
            TaskStatus::Succeeded => "succeeded",
            TaskStatus::Failed => "failed",
            TaskStatus::Canceled => "canceled",
        }
    }

    /// Parses a status name.
    pub fn parse(s: &str) -> Option<TaskStatus> {
        Some(match s {
            "enqueued" => TaskStatus::Enqueued,
            "processing" => TaskStatus::Processing,
            "succeeded" => TaskStatus::Succeeded,
            "failed" => TaskStatus::Failed,
            "canceled" => TaskStatus::Canceled,
            _ => return None,
        })
    }
}

/// Type of a task.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[allow(missing_docs)]
pub enum TaskKind {
    IndexCreation,
    IndexUpdate,
    IndexDeletion,
    IndexSwap,
    DocumentAdditionOrUpdate,
    DocumentDeletion,
    DocumentEdition,
    SettingsUpdate,
    DumpCreation,
    TaskCancelation,
    TaskDeletion,
    SnapshotCreation,
}

impl TaskKind {
    /// Every kind.
    pub const ALL: [TaskKind; 12] = [
        TaskKind::IndexCreation,
        TaskKind::IndexUpdate,
        TaskKind::IndexDeletion,
        TaskKind::IndexSwap,
        TaskKind::DocumentAdditionOrUpdate,
        TaskKind::DocumentDeletion,
        TaskKind::DocumentEdition,
        TaskKind::SettingsUpdate,
        TaskKind::DumpCreation,
        TaskKind::TaskCancelation,
        TaskKind::TaskDeletion,
        TaskKind::SnapshotCreation,
    ];

    /// Name as Meilisearch spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            TaskKind::IndexCreation => "indexCreation",
            TaskKind::IndexUpdate => "indexUpdate",
            TaskKind::IndexDeletion => "indexDeletion",
            TaskKind::IndexSwap => "indexSwap",
            TaskKind::DocumentAdditionOrUpdate => "documentAdditionOrUpdate",
            TaskKind::DocumentDeletion => "documentDeletion",
            TaskKind::DocumentEdition => "documentEdition",
            TaskKind::SettingsUpdate => "settingsUpdate",
            TaskKind::DumpCreation => "dumpCreation",
            TaskKind::TaskCancelation => "taskCancelation",
            TaskKind::TaskDeletion => "taskDeletion",
            TaskKind::SnapshotCreation => "snapshotCreation",
        }
    }

    /// Parses a kind name.
    pub fn parse(s: &str) -> Option<TaskKind> {
        TaskKind::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

/// A task record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Task {
    /// Global uid.
    pub uid: u64,
    /// Batch uid (eddy: one batch per task, same uid).
    pub batch_uid: Option<u64>,
    /// Index the task is about.
    pub index_uid: Option<String>,
    /// Status.
    pub status: TaskStatus,
    /// Type.
    #[serde(rename = "type")]
    pub kind: TaskKind,
    /// Uid of the task that canceled this one.
    pub canceled_by: Option<u64>,
    /// Type-specific details.
    pub details: Option<Map<String, Value>>,
    /// Error of a failed task.
    pub error: Option<ResponseError>,
    /// ISO 8601 duration.
    pub duration: Option<String>,
    /// When the write was received.
    #[serde(with = "rfc3339_nanos")]
    pub enqueued_at: OffsetDateTime,
    /// When it started applying.
    #[serde(with = "rfc3339_nanos::option")]
    pub started_at: Option<OffsetDateTime>,
    /// When it finished.
    #[serde(with = "rfc3339_nanos::option")]
    pub finished_at: Option<OffsetDateTime>,
}

impl Task {
    /// The summarized form a write route answers with (HTTP 202). A finished task answers
    /// its final status (eddy applies writes before answering, as every write route
    /// shows); one still running (a settings change waiting for its rebuild) answers
    /// `enqueued`, the status Meilisearch's summarized tasks carry: a summarized task is never
    /// `processing`. `GET /tasks/{uid}` tells the rest.
    pub fn summary(&self) -> Value {
        let status = match self.status {
            TaskStatus::Processing => TaskStatus::Enqueued,
            other => other,
        };
        serde_json::json!({
            "taskUid": self.uid,
            "indexUid": self.index_uid,
            "status": status.as_str(),
            "type": self.kind.as_str(),
            "enqueuedAt": format_time(self.enqueued_at),
        })
    }
}

/// Formats a timestamp as RFC 3339 with nine fractional digits and `Z`.
pub fn format_time(t: OffsetDateTime) -> String {
    let t = t.to_offset(time::UtcOffset::UTC);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:09}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second(),
        t.nanosecond()
    )
}

/// Formats a duration as ISO 8601 seconds (`PT0.012345S`).
pub fn format_duration(d: std::time::Duration) -> String {
    let nanos = d.subsec_nanos();
    if nanos == 0 {
        format!("PT{}S", d.as_secs())
    } else {
        let frac = format!("{nanos:09}");
        format!("PT{}.{}S", d.as_secs(), frac.trim_end_matches('0'))
    }
}

/// Serde helpers for [`format_time`] timestamps.
pub mod rfc3339_nanos {
    use serde::{Deserialize, Deserializer, Serializer};
    use time::OffsetDateTime;
    use time::format_description::well_known::Rfc3339;

    /// Serializes.
    pub fn serialize<S: Serializer>(t: &OffsetDateTime, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&super::format_time(*t))
    }

    /// Deserializes.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<OffsetDateTime, D::Error> {
        let s = String::deserialize(d)?;
        OffsetDateTime::parse(&s, &Rfc3339).map_err(serde::de::Error::custom)
    }

    /// Optional timestamps.
    pub mod option {
        use super::*;

        /// Serializes.
        pub fn serialize<S: Serializer>(
            t: &Option<OffsetDateTime>,
            s: S,
        ) -> Result<S::Ok, S::Error> {
            match t {
                Some(t) => s.serialize_str(&super::super::format_time(*t)),
                None => s.serialize_none(),
            }
        }

        /// Deserializes.
        pub fn deserialize<'de, D: Deserializer<'de>>(
            d: D,
        ) -> Result<Option<OffsetDateTime>, D::Error> {
            let s: Option<String> = Option::deserialize(d)?;
            s.map(|s| OffsetDateTime::parse(&s, &Rfc3339).map_err(serde::de::Error::custom))
                .transpose()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_always_have_fractional_seconds() {
        let t = OffsetDateTime::from_unix_timestamp(1_689_291_440).unwrap();
        assert_eq!(format_time(t), "2023-07-13T23:37:20.000000000Z");
        let t = t + time::Duration::nanoseconds(130_457_000);
        assert_eq!(format_time(t), "2023-07-13T23:37:20.130457000Z");
    }

    #[test]
    fn durations_are_iso8601() {
        assert_eq!(
            format_duration(std::time::Duration::from_micros(12_345)),
            "PT0.012345S"
        );
        assert_eq!(format_duration(std::time::Duration::from_secs(3)), "PT3S");
    }

    #[test]
    fn task_round_trips_through_json() {
        let t = Task {
            uid: 4,
            batch_uid: Some(4),
            index_uid: Some("movies".into()),
            status: TaskStatus::Succeeded,
            kind: TaskKind::DocumentAdditionOrUpdate,
            canceled_by: None,
            details: Some(serde_json::from_str(r#"{"receivedDocuments":2}"#).unwrap()),
            error: None,
            duration: Some("PT0.001S".into()),
            enqueued_at: OffsetDateTime::from_unix_timestamp(10).unwrap(),
            started_at: Some(OffsetDateTime::from_unix_timestamp(10).unwrap()),
            finished_at: Some(OffsetDateTime::from_unix_timestamp(11).unwrap()),
        };
        let json = serde_json::to_value(&t).unwrap();
        assert_eq!(json["type"], "documentAdditionOrUpdate");
        assert_eq!(json["enqueuedAt"], "1970-01-01T00:00:10.000000000Z");
        let back: Task = serde_json::from_value(json).unwrap();
        assert_eq!(back, t);
        assert_eq!(t.summary()["taskUid"], 4);
        assert_eq!(t.summary()["status"], "succeeded");
        let running = Task {
            status: TaskStatus::Processing,
            ..t
        };
        assert_eq!(running.summary()["status"], "enqueued");
    }
}

/// Which tasks a list, cancel or delete request is about. Absent criteria match everything.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct TaskFilter {
    /// Task uids.
    pub uids: Option<Vec<u64>>,
    /// Batch uids.
    pub batch_uids: Option<Vec<u64>>,
    /// Statuses.
    pub statuses: Option<Vec<TaskStatus>>,
    /// Types.
    pub types: Option<Vec<TaskKind>>,
    /// Index uids.
    pub index_uids: Option<Vec<String>>,
    /// Index patterns (`*`, `prefix*` or a uid) of what the caller may see: a task matches
    /// when its index matches one of them (tasks of no index never do). Set by the server
    /// from an API key's indexes, never from a request.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub index_patterns: Option<Vec<String>>,
    /// Uids of canceling tasks.
    pub canceled_by: Option<Vec<u64>>,
    /// Enqueued strictly before.
    #[serde(with = "rfc3339_nanos::option")]
    pub before_enqueued_at: Option<OffsetDateTime>,
    /// Enqueued strictly after.
    #[serde(with = "rfc3339_nanos::option")]
    pub after_enqueued_at: Option<OffsetDateTime>,
    /// Started strictly before.
    #[serde(with = "rfc3339_nanos::option")]
    pub before_started_at: Option<OffsetDateTime>,
    /// Started strictly after.
    #[serde(with = "rfc3339_nanos::option")]
    pub after_started_at: Option<OffsetDateTime>,
    /// Finished strictly before.
    #[serde(with = "rfc3339_nanos::option")]
    pub before_finished_at: Option<OffsetDateTime>,
    /// Finished strictly after.
    #[serde(with = "rfc3339_nanos::option")]
    pub after_finished_at: Option<OffsetDateTime>,
}

/// Whether an index pattern (`*`, `prefix*` or an exact uid) covers `index`.
pub fn index_pattern_matches(pattern: &str, index: &str) -> bool {
    match pattern.strip_suffix('*') {
        Some(prefix) => index.starts_with(prefix),
        None => pattern == index,
    }
}

impl TaskFilter {
    /// Whether no criterion is set.
    pub fn is_empty(&self) -> bool {
        *self == TaskFilter::default()
    }

    /// Whether a task matches every criterion.
    pub fn matches(&self, t: &Task) -> bool {
        fn within(
            v: Option<OffsetDateTime>,
            before: Option<OffsetDateTime>,
            after: Option<OffsetDateTime>,
        ) -> bool {
            if before.is_none() && after.is_none() {
                return true;
            }
            let Some(v) = v else { return false };
            before.is_none_or(|b| v < b) && after.is_none_or(|a| v > a)
        }
        self.uids.as_ref().is_none_or(|u| u.contains(&t.uid))
            && self
                .batch_uids
                .as_ref()
                .is_none_or(|u| t.batch_uid.is_some_and(|b| u.contains(&b)))
            && self.statuses.as_ref().is_none_or(|s| s.contains(&t.status))
            && self.types.as_ref().is_none_or(|k| k.contains(&t.kind))
            && self
                .index_uids
                .as_ref()
                .is_none_or(|i| t.index_uid.as_ref().is_some_and(|u| i.contains(u)))
            && self.index_patterns.as_ref().is_none_or(|patterns| {
                t.index_uid
                    .as_ref()
                    .is_some_and(|u| patterns.iter().any(|p| index_pattern_matches(p, u)))
            })
            && self
                .canceled_by
                .as_ref()
                .is_none_or(|c| t.canceled_by.is_some_and(|b| c.contains(&b)))
            && within(
                Some(t.enqueued_at),
                self.before_enqueued_at,
                self.after_enqueued_at,
            )
            && within(t.started_at, self.before_started_at, self.after_started_at)
            && within(
                t.finished_at,
                self.before_finished_at,
                self.after_finished_at,
            )
    }
}
