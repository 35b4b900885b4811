//! Deterministic generation of demo rows. Pure: given the same random seed
//! and sizes it produces the same data shape, so benchmark runs compare.
use chrono::{DateTime, Duration, Utc};
use rand::{rngs::StdRng, seq::SliceRandom, Rng};
use uuid::Uuid;

use super::words::{
    FIRST_NAMES, LAST_NAMES, MESSAGE_WORDS, ROOM_NAMES, SUBJECTS, TODO_OBJECTS, TODO_VERBS,
};
use crate::entity::{messages, rooms, study_sessions, todos, users};

/// A random (version 4) id drawn from the seeded generator.
pub fn id(rng: &mut StdRng) -> Uuid {
    uuid::Builder::from_random_bytes(rng.gen()).into_uuid()
}

fn pick<'a>(rng: &mut StdRng, list: &[&'a str]) -> &'a str {
    list.choose(rng).copied().unwrap_or_default()
}

/// Millisecond precision, like every time the server writes.
fn millis(at: DateTime<Utc>) -> DateTime<Utc> {
    crate::domain::to_millis(at)
}

/// A time in the history window, skewed towards the present (activity grows
/// as a user base does, and the current week has a real leaderboard).
pub fn recent(rng: &mut StdRng, now: DateTime<Utc>, span: Duration) -> DateTime<Utc> {
    let u: f64 = rng.gen();
    let back = (span.num_seconds() as f64 * u.powf(1.6)) as i64;
    millis(now - Duration::seconds(back))
}

/// How many of `total` items each of `n` owners gets, with a heavy tail: a
/// Pareto(α = 1.16) weight per owner, the "80/20" shape of real activity —
/// a few heavy studiers, many occasional ones.
pub fn skewed_counts(rng: &mut StdRng, n: usize, total: usize) -> Vec<u32> {
    let mut counts = vec![0u32; n];
    if n == 0 {
        return counts;
    }
    let mut cumulative = Vec::with_capacity(n);
    let mut sum = 0.0;
    for _ in 0..n {
        let u: f64 = rng.gen_range(0.0..1.0);
        sum += (1.0 - u).powf(-1.0 / 1.16).min(100.0);
        cumulative.push(sum);
    }
    for _ in 0..total {
        let x = rng.gen_range(0.0..sum);
        let i = cumulative.partition_point(|&c| c <= x).min(n - 1);
        counts[i] += 1;
    }
    counts
}

/// Counts spread evenly at random (todos: everyone keeps a list).
pub fn even_counts(rng: &mut StdRng, n: usize, total: usize) -> Vec<u32> {
    let mut counts = vec![0u32; n];
    if n > 0 {
        for _ in 0..total {
            counts[rng.gen_range(0..n)] += 1;
        }
    }
    counts
}

pub fn user(rng: &mut StdRng, index: usize, created_at: DateTime<Utc>, hash: &str) -> users::Model {
    let name = format!("{} {}", pick(rng, FIRST_NAMES), pick(rng, LAST_NAMES));
    users::Model {
        id: id(rng),
        email: format!("user{index}@example.com"),
        name,
        password_hash: hash.to_owned(),
        role: "user".to_owned(),
        token_generation: 0,
        version: 1,
        created_at,
        updated_at: created_at,
    }
}

pub fn session(
    rng: &mut StdRng,
    user_id: Uuid,
    now: DateTime<Utc>,
    span: Duration,
) -> study_sessions::Model {
    let u: f64 = rng.gen();
    let minutes = 10 + (170.0 * u * u) as i32;
    let started_at = recent(rng, now - Duration::minutes(i64::from(minutes)), span);
    let logged_at = started_at + Duration::minutes(i64::from(minutes));
    study_sessions::Model {
        id: id(rng),
        user_id,
        subject: pick(rng, SUBJECTS).to_owned(),
        minutes,
        started_at,
        version: 1,
        created_at: logged_at,
        updated_at: logged_at,
    }
}

pub fn todo(rng: &mut StdRng, user_id: Uuid, now: DateTime<Utc>, span: Duration) -> todos::Model {
    let created_at = recent(rng, now, span);
    let completed = rng.gen_bool(0.55);
    let completed_at =
        completed.then(|| millis((created_at + Duration::hours(rng.gen_range(1..96))).min(now)));
    let due_at = rng
        .gen_bool(0.6)
        .then(|| millis(created_at + Duration::days(rng.gen_range(1..21))));
    todos::Model {
        id: id(rng),
        user_id,
        title: format!("{} {}", pick(rng, TODO_VERBS), pick(rng, TODO_OBJECTS)),
        completed,
        completed_at,
        due_at,
        version: if completed { 2 } else { 1 },
        created_at,
        updated_at: completed_at.unwrap_or(created_at),
    }
}

/// A room and its members (creator first, then distinct others).
pub fn room(
    rng: &mut StdRng,
    index: usize,
    user_ids: &[Uuid],
    now: DateTime<Utc>,
    span: Duration,
) -> (rooms::Model, Vec<Uuid>) {
    let size = rng.gen_range(3..=40).min(user_ids.len());
    let members: Vec<Uuid> = user_ids.choose_multiple(rng, size).copied().collect();
    let created_at = millis(now - span);
    let room = rooms::Model {
        id: id(rng),
        name: format!("{} #{}", pick(rng, ROOM_NAMES), index + 1),
        created_by: members.first().copied().unwrap_or_default(),
        version: members.len() as i64,
        last_seq: 0,
        created_at,
        updated_at: created_at,
    };
    (room, members)
}

pub fn message(
    rng: &mut StdRng,
    room_id: Uuid,
    members: &[Uuid],
    now: DateTime<Utc>,
    span: Duration,
) -> messages::Model {
    let words = rng.gen_range(3..=12);
    let body: Vec<&str> = (0..words).map(|_| pick(rng, MESSAGE_WORDS)).collect();
    let created_at = recent(rng, now, span);
    messages::Model {
        id: id(rng),
        room_id,
        sender_id: members.choose(rng).copied().unwrap_or_default(),
        body: body.join(" "),
        version: 1,
        seq: None,
        event_seq: None,
        edited_at: None,
        created_at,
        updated_at: created_at,
    }
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;

    use super::*;

    #[test]
    fn skewed_counts_add_up_and_concentrate_on_a_few_users() {
        let mut rng = StdRng::seed_from_u64(7);
        let mut counts = skewed_counts(&mut rng, 1_000, 100_000);
        assert_eq!(counts.iter().map(|&c| c as usize).sum::<usize>(), 100_000);
        counts.sort_unstable_by(|a, b| b.cmp(a));
        let top_tenth: u32 = counts[..100].iter().sum();
        assert!(top_tenth > 30_000, "top 10% hold {top_tenth}");
    }

    #[test]
    fn generated_sessions_are_valid_and_in_the_past() {
        let mut rng = StdRng::seed_from_u64(1);
        let now = crate::domain::now();
        for _ in 0..1_000 {
            let s = session(&mut rng, Uuid::nil(), now, Duration::days(180));
            assert!((1..=1440).contains(&s.minutes));
            assert!(s.created_at <= now && s.started_at >= now - Duration::days(181));
        }
    }
}
