//! Store-neutral answers of the routed reads. MongoDB queries and their
//! CockroachDB fallbacks both produce these, so a test can compare them and
//! the GraphQL layer does not care which store answered.
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::{
    domain::search,
    error::{AppError, AppResult},
};

/// A user as search shows them (no secrets: the read model has none).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UserRow {
    pub id: Uuid,
    pub name: String,
    pub email: String,
    pub created_at: DateTime<Utc>,
}

/// Position in a newest-first list: `(created_at, id)`, both descending.
pub type TimePosition = (DateTime<Utc>, Uuid);

/// Position in search results: rank (0 = an exact word matched, 1 = only a
/// prefix matched), then newest first.
pub type SearchPosition = (u8, DateTime<Utc>, Uuid);

/// Where a message stands in its room: `Message.cursor`, from which
/// `messageAdded(after:)` resumes. The number decides; the time and id
/// find it for a message read from a document projected before messages
/// were numbered.
pub type MessagePosition = (Uuid, Option<i64>, DateTime<Utc>, Uuid);

/// Where a change stands in its room's numbered changes: `RoomEvent.cursor`,
/// from which `roomEvents(after:)` resumes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ChangePosition {
    #[serde(rename = "r")]
    pub room_id: Uuid,
    #[serde(rename = "n")]
    pub number: i64,
}

/// What happened to a room's message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChangeKind {
    Added,
    Edited,
    Deleted,
}

/// One numbered change to a room's messages. A change read back from the
/// source of truth carries the message as it is now (an addition read after
/// an edit carries the edited body).
#[derive(Debug, Clone, PartialEq)]
pub struct RoomChange {
    pub room_id: Uuid,
    pub number: i64,
    pub kind: ChangeKind,
    pub message_id: Uuid,
    /// None once deleted.
    pub message: Option<crate::entity::messages::Model>,
}

impl RoomChange {
    /// The change a committed message's latest state announces: its
    /// addition, or (once edited) its latest edit. `None` for a message a
    /// release before numbering wrote.
    pub fn of_message(message: crate::entity::messages::Model) -> Option<Self> {
        let number = message.change_seq()?;
        let kind = if message.event_seq.is_some_and(|e| Some(e) != message.seq) {
            ChangeKind::Edited
        } else {
            ChangeKind::Added
        };
        Some(Self {
            room_id: message.room_id,
            number,
            kind,
            message_id: message.id,
            message: Some(message),
        })
    }
}

/// Exact word matches rank before prefix-only matches.
pub const EXACT: u8 = 0;
pub const PREFIX: u8 = 1;

/// The folded words of a search query: at most [`MAX_QUERY_WORDS`], so a
/// very long query costs a bounded `$in`, never a scan. A query longer than
/// [`search::MAX_QUERY_BYTES`] is refused before any of it is folded.
pub fn query_words(query: &str) -> AppResult<Vec<String>> {
    if query.len() > search::MAX_QUERY_BYTES {
        return Err(AppError::bad_input(format!(
            "a search query may be at most {} bytes long",
            search::MAX_QUERY_BYTES
        )));
    }
    Ok(search::first_words(query, MAX_QUERY_WORDS))
}

pub const MAX_QUERY_WORDS: usize = 16;

/// How a text matches the query words, by the same folding the read model
/// stores (`search_words`, `search_prefixes`); `None` when it does not.
pub fn match_rank(text: &str, query: &[String]) -> Option<u8> {
    let words = search::words(text);
    if words.iter().any(|w| query.contains(w)) {
        return Some(EXACT);
    }
    let prefixes = search::prefixes(&words);
    prefixes.iter().any(|p| query.contains(p)).then_some(PREFIX)
}

/// One leaderboard row.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BoardEntry {
    pub rank: i64,
    pub user_id: Uuid,
    pub minutes: i64,
}

/// Where a leaderboard page ended: the last row's sort key, its 0-based
/// position and its rank, so the next page ranks ties without counting.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BoardPosition {
    pub minutes: i64,
    pub user_id: Uuid,
    pub index: i64,
    pub rank: i64,
}

impl BoardPosition {
    /// Standard competition ranking ("1224"): a row tied with the previous
    /// one shares its rank, any other row's rank is its 1-based position.
    pub fn next(previous: Option<BoardPosition>, minutes: i64, user_id: Uuid) -> BoardPosition {
        match previous {
            None => BoardPosition {
                minutes,
                user_id,
                index: 0,
                rank: 1,
            },
            Some(p) => {
                let index = p.index + 1;
                let rank = if p.minutes == minutes {
                    p.rank
                } else {
                    index + 1
                };
                BoardPosition {
                    minutes,
                    user_id,
                    index,
                    rank,
                }
            }
        }
    }

    /// Ranks `rows` (`(user_id, minutes)` in board order) that follow
    /// `after`: each with its position (the page cursor) and its entry.
    pub fn rank_rows(
        after: Option<BoardPosition>,
        rows: impl IntoIterator<Item = (Uuid, i64)>,
    ) -> Vec<(BoardPosition, BoardEntry)> {
        let mut previous = after;
        rows.into_iter()
            .map(|(user_id, minutes)| {
                let position = BoardPosition::next(previous, minutes, user_id);
                previous = Some(position);
                (
                    position,
                    BoardEntry {
                        rank: position.rank,
                        user_id,
                        minutes,
                    },
                )
            })
            .collect()
    }
}

/// Minutes per key (a day `YYYY-MM-DD` or a subject).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyMinutes {
    pub key: String,
    pub minutes: i64,
}

#[derive(Clone, Debug, PartialEq, Default)]
pub struct Stats {
    pub total_minutes: i64,
    pub sessions: i64,
    /// Ascending by day.
    pub by_day: Vec<KeyMinutes>,
    /// Most minutes first, then by subject.
    pub by_subject: Vec<KeyMinutes>,
    pub todos_created: i64,
    pub todos_completed: i64,
}

#[derive(Clone, Debug, PartialEq, Default)]
pub struct DashboardRow {
    pub active_users: i64,
    pub total_minutes: i64,
    pub sessions: i64,
    pub todos_created: i64,
    pub todos_completed: i64,
    pub top_subjects: Vec<KeyMinutes>,
}

/// Subjects shown on the dashboard.
pub const TOP_SUBJECTS: usize = 5;

/// Completed share of created todos; 0 when none were created.
pub fn completion_rate(created: i64, completed: i64) -> f64 {
    if created <= 0 {
        0.0
    } else {
        completed as f64 / created as f64
    }
}

/// Sorts by minutes descending, then key ascending (ties stay stable across
/// stores).
pub fn sort_by_minutes(rows: &mut [KeyMinutes]) {
    rows.sort_by(|a, b| b.minutes.cmp(&a.minutes).then_with(|| a.key.cmp(&b.key)));
}

/// A time range `[from, to)`; `None` is unbounded.
#[derive(Clone, Copy, Debug, Default)]
pub struct Range {
    pub from: Option<DateTime<Utc>>,
    pub to: Option<DateTime<Utc>>,
}

impl Range {
    pub fn contains(&self, at: DateTime<Utc>) -> bool {
        self.from.is_none_or(|f| at >= f) && self.to.is_none_or(|t| at < t)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ties_share_a_rank_and_the_next_rank_skips() {
        let u = Uuid::nil();
        let a = BoardPosition::next(None, 50, u);
        let b = BoardPosition::next(Some(a), 30, u);
        let c = BoardPosition::next(Some(b), 30, u);
        let d = BoardPosition::next(Some(c), 10, u);
        assert_eq!([a.rank, b.rank, c.rank, d.rank], [1, 2, 2, 4]);
    }

    #[test]
    fn exact_words_outrank_prefixes() {
        let q = query_words("alg").unwrap();
        assert_eq!(match_rank("Alg study", &q), Some(EXACT));
        assert_eq!(match_rank("Algebra", &q), Some(PREFIX));
        assert_eq!(match_rank("Biology", &q), None);
        assert_eq!(query_words(&"w ".repeat(250)).unwrap().len(), 1);
    }

    #[test]
    fn a_search_query_is_cut_at_sixteen_words_and_refused_when_too_long() {
        let many: String = (0..40).map(|i| format!("w{i} ")).collect();
        assert_eq!(query_words(&many).unwrap().len(), MAX_QUERY_WORDS);
        let long = "a".repeat(search::MAX_QUERY_BYTES + 1);
        assert!(matches!(query_words(&long), Err(AppError::BadInput(_))));
    }
}
