//! One document type per aggregate: the row's public columns, under their
//! column names. The same value is the event's payload (JSON) and, with
//! `_id` and `version`, the read model's document (BSON).
use chrono::{DateTime, NaiveDate, Utc};
use mongodb::bson::{self, Bson, Document};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::Aggregate;
use crate::{
    domain::search,
    entity::{messages, rooms, study_sessions, study_totals, todos, users},
};

/// A user as the read model sees it: never the password hash or the role.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UserDoc {
    pub name: String,
    pub email: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TodoDoc {
    pub user_id: Uuid,
    pub title: String,
    pub completed: bool,
    pub completed_at: Option<DateTime<Utc>>,
    pub due_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StudySessionDoc {
    pub user_id: Uuid,
    pub subject: String,
    pub minutes: i32,
    pub started_at: DateTime<Utc>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// A user's totals for one period bucket (`period`: `day`, `week`, `month`
/// or `all`), as absolute figures, so replaying one cannot double-count.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StudyTotalDoc {
    pub user_id: Uuid,
    pub period: String,
    pub period_start: NaiveDate,
    pub minutes: i64,
    pub sessions: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// A room with its member ids in user id order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RoomDoc {
    pub name: String,
    pub created_by: Uuid,
    pub member_ids: Vec<Uuid>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MessageDoc {
    pub room_id: Uuid,
    pub sender_id: Uuid,
    pub body: String,
    /// The message's number in its room; events written before messages
    /// were numbered have none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seq: Option<i64>,
    /// The number of its latest edit, from the same counter; none until it
    /// is edited.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event_seq: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub edited_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// The document of any aggregate.
#[derive(Debug, Clone, PartialEq)]
pub enum Doc {
    User(UserDoc),
    Todo(TodoDoc),
    StudySession(StudySessionDoc),
    StudyTotal(StudyTotalDoc),
    Room(RoomDoc),
    Message(MessageDoc),
}

impl From<&users::Model> for UserDoc {
    fn from(m: &users::Model) -> Self {
        Self {
            name: m.name.clone(),
            email: m.email.clone(),
            created_at: m.created_at,
            updated_at: m.updated_at,
        }
    }
}

impl From<&todos::Model> for TodoDoc {
    fn from(m: &todos::Model) -> Self {
        Self {
            user_id: m.user_id,
            title: m.title.clone(),
            completed: m.completed,
            completed_at: m.completed_at,
            due_at: m.due_at,
            created_at: m.created_at,
            updated_at: m.updated_at,
        }
    }
}

impl From<&study_sessions::Model> for StudySessionDoc {
    fn from(m: &study_sessions::Model) -> Self {
        Self {
            user_id: m.user_id,
            subject: m.subject.clone(),
            minutes: m.minutes,
            started_at: m.started_at,
            created_at: m.created_at,
            updated_at: m.updated_at,
        }
    }
}

impl From<&study_totals::Model> for StudyTotalDoc {
    fn from(m: &study_totals::Model) -> Self {
        Self {
            user_id: m.user_id,
            period: m.period.clone(),
            period_start: m.period_start,
            minutes: m.minutes,
            sessions: m.sessions,
            created_at: m.created_at,
            updated_at: m.updated_at,
        }
    }
}

impl RoomDoc {
    pub fn new(m: &rooms::Model, member_ids: &[Uuid]) -> Self {
        Self {
            name: m.name.clone(),
            created_by: m.created_by,
            member_ids: member_ids.to_vec(),
            created_at: m.created_at,
            updated_at: m.updated_at,
        }
    }
}

impl From<&messages::Model> for MessageDoc {
    fn from(m: &messages::Model) -> Self {
        Self {
            room_id: m.room_id,
            sender_id: m.sender_id,
            body: m.body.clone(),
            seq: m.seq,
            event_seq: m.event_seq,
            edited_at: m.edited_at,
            created_at: m.created_at,
            updated_at: m.updated_at,
        }
    }
}

macro_rules! into_doc {
    ($($variant:ident($ty:ty)),* $(,)?) => {
        $(impl From<$ty> for Doc {
            fn from(doc: $ty) -> Self {
                Doc::$variant(doc)
            }
        })*
    };
}

into_doc!(
    User(UserDoc),
    Todo(TodoDoc),
    StudySession(StudySessionDoc),
    StudyTotal(StudyTotalDoc),
    Room(RoomDoc),
    Message(MessageDoc),
);

fn date(t: DateTime<Utc>) -> Bson {
    Bson::DateTime(bson::DateTime::from_millis(t.timestamp_millis()))
}

fn maybe_date(t: Option<DateTime<Utc>>) -> Bson {
    t.map(date).unwrap_or(Bson::Null)
}

fn id(u: Uuid) -> Bson {
    Bson::String(u.to_string())
}

/// Folded search terms of `text`, as the search reads them.
fn terms(doc: &mut Document, text: &str) {
    let words = search::words(text);
    doc.insert("search_prefixes", search::prefixes(&words));
    doc.insert("search_words", words);
}

impl Doc {
    pub fn aggregate(&self) -> Aggregate {
        match self {
            Doc::User(_) => Aggregate::User,
            Doc::Todo(_) => Aggregate::Todo,
            Doc::StudySession(_) => Aggregate::StudySession,
            Doc::StudyTotal(_) => Aggregate::StudyTotal,
            Doc::Room(_) => Aggregate::Room,
            Doc::Message(_) => Aggregate::Message,
        }
    }

    /// The read model's document for row `row_id` at `version`: times as
    /// BSON dates, ids as strings, integers as 64-bit, and for users and
    /// messages the folded search terms (`search_words`, `search_prefixes`).
    pub fn to_document(&self, row_id: Uuid, version: i64) -> Document {
        let mut doc = Document::new();
        doc.insert("_id", row_id.to_string());
        doc.insert("version", version);
        match self {
            Doc::User(u) => {
                doc.insert("name", u.name.as_str());
                doc.insert("email", u.email.as_str());
                doc.insert("created_at", date(u.created_at));
                doc.insert("updated_at", date(u.updated_at));
                terms(&mut doc, &u.name);
            }
            Doc::Todo(t) => {
                doc.insert("user_id", id(t.user_id));
                doc.insert("title", t.title.as_str());
                doc.insert("completed", t.completed);
                doc.insert("completed_at", maybe_date(t.completed_at));
                doc.insert("due_at", maybe_date(t.due_at));
                doc.insert("created_at", date(t.created_at));
                doc.insert("updated_at", date(t.updated_at));
            }
            Doc::StudySession(s) => {
                doc.insert("user_id", id(s.user_id));
                doc.insert("subject", s.subject.as_str());
                doc.insert("minutes", i64::from(s.minutes));
                doc.insert("started_at", date(s.started_at));
                doc.insert("created_at", date(s.created_at));
                doc.insert("updated_at", date(s.updated_at));
            }
            Doc::StudyTotal(t) => {
                doc.insert("user_id", id(t.user_id));
                doc.insert("period", t.period.as_str());
                doc.insert("period_start", t.period_start.to_string());
                doc.insert("minutes", t.minutes);
                doc.insert("sessions", t.sessions);
                doc.insert("created_at", date(t.created_at));
                doc.insert("updated_at", date(t.updated_at));
            }
            Doc::Room(r) => {
                doc.insert("name", r.name.as_str());
                doc.insert("created_by", id(r.created_by));
                doc.insert(
                    "member_ids",
                    r.member_ids.iter().map(|m| id(*m)).collect::<Vec<_>>(),
                );
                doc.insert("created_at", date(r.created_at));
                doc.insert("updated_at", date(r.updated_at));
            }
            Doc::Message(m) => {
                doc.insert("room_id", id(m.room_id));
                doc.insert("sender_id", id(m.sender_id));
                doc.insert("body", m.body.as_str());
                if let Some(seq) = m.seq {
                    doc.insert("seq", seq);
                }
                if let Some(seq) = m.event_seq {
                    doc.insert("event_seq", seq);
                }
                if let Some(at) = m.edited_at {
                    doc.insert("edited_at", date(at));
                }
                doc.insert("created_at", date(m.created_at));
                doc.insert("updated_at", date(m.updated_at));
                terms(&mut doc, &m.body);
            }
        }
        doc
    }
}
