//! The kinds of aggregate an event can be about.
use serde::{Deserialize, Serialize};

/// One kind of source row with a read-model collection of its own. Its
/// name is what `outbox.aggregate_type` and consistency tokens store.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Aggregate {
    User,
    Todo,
    StudySession,
    StudyTotal,
    Room,
    Message,
}

impl Aggregate {
    pub const ALL: [Aggregate; 6] = [
        Aggregate::User,
        Aggregate::Todo,
        Aggregate::StudySession,
        Aggregate::StudyTotal,
        Aggregate::Room,
        Aggregate::Message,
    ];

    /// The stored name (`outbox.aggregate_type`).
    pub fn name(self) -> &'static str {
        match self {
            Aggregate::User => "user",
            Aggregate::Todo => "todo",
            Aggregate::StudySession => "study_session",
            Aggregate::StudyTotal => "study_total",
            Aggregate::Room => "room",
            Aggregate::Message => "message",
        }
    }

    /// The source table, and the MongoDB collection its documents live in
    /// (the same name).
    pub fn collection(self) -> &'static str {
        match self {
            Aggregate::User => "users",
            Aggregate::Todo => "todos",
            Aggregate::StudySession => "study_sessions",
            Aggregate::StudyTotal => "study_totals",
            Aggregate::Room => "rooms",
            Aggregate::Message => "messages",
        }
    }

    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|a| a.name() == name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_through_parse_and_serde() {
        for aggregate in Aggregate::ALL {
            assert_eq!(Aggregate::parse(aggregate.name()), Some(aggregate));
            assert_eq!(
                serde_json::to_value(aggregate).unwrap(),
                serde_json::Value::from(aggregate.name())
            );
        }
        assert_eq!(Aggregate::parse("nope"), None);
    }
}
