//! What this instance's subscribers listen to. Committed messages (and
//! membership changes), one channel per room: a message is cloned for, and wakes, only the subscribers of its
//! own room, so a room with thousands of subscribers costs nothing to a
//! message posted elsewhere.
use std::{
    collections::HashMap,
    ops::{Deref, DerefMut},
    sync::{Arc, Mutex},
};

use tokio::sync::{broadcast, watch};
use uuid::Uuid;

use crate::entity::messages;

/// What a room's channel carries.
#[derive(Clone, Debug)]
pub enum RoomSignal {
    /// A committed message, as added or edited.
    Message(messages::Model),
    /// A committed deletion: the message and its change number.
    Deleted { message_id: Uuid, number: i64 },
    /// The room's changes are committed through this number (said after
    /// some may have been missed): a subscriber behind it reads the rest
    /// from the source of truth.
    Reached(i64),
    /// Someone left or was removed: subscribers re-read their rights now.
    Members,
}

/// Messages a slow subscriber may fall behind by before it skips some.
const CAPACITY: usize = 256;
/// Rooms tracked before channels nobody listens to are first swept; the next
/// sweep waits until the map has doubled, so sweeping stays amortised O(1).
const FIRST_SWEEP: usize = 1_024;

pub struct RoomFeeds {
    rooms: Mutex<Rooms>,
}

struct Rooms {
    channels: HashMap<Uuid, broadcast::Sender<RoomSignal>>,
    sweep_at: usize,
}

impl Default for RoomFeeds {
    fn default() -> Self {
        Self {
            rooms: Mutex::new(Rooms {
                channels: HashMap::new(),
                sweep_at: FIRST_SWEEP,
            }),
        }
    }
}

impl RoomFeeds {
    /// Hands `message` to the subscribers of its room, if it has any.
    pub fn publish(&self, message: &messages::Model) {
        self.signal(message.room_id, RoomSignal::Message(message.clone()));
    }

    /// Tells the subscribers of `room_id` that `message_id` was deleted by
    /// change `number`.
    pub fn deleted(&self, room_id: Uuid, message_id: Uuid, number: i64) {
        self.signal(room_id, RoomSignal::Deleted { message_id, number });
    }

    /// Tells the subscribers of `room_id` that its changes are committed
    /// through `number`.
    pub fn reached(&self, room_id: Uuid, number: i64) {
        self.signal(room_id, RoomSignal::Reached(number));
    }

    /// Tells the subscribers of `room_id` that its members changed.
    pub fn members_changed(&self, room_id: Uuid) {
        self.signal(room_id, RoomSignal::Members);
    }

    fn signal(&self, room_id: Uuid, signal: RoomSignal) {
        let Ok(mut rooms) = self.rooms.lock() else {
            return;
        };
        if let Some(channel) = rooms.channels.get(&room_id) {
            // An error means nobody listens any more.
            if channel.send(signal).is_err() {
                rooms.channels.remove(&room_id);
            }
        }
    }

    /// Messages of `room_id` published from now on.
    pub fn subscribe(&self, room_id: Uuid) -> broadcast::Receiver<RoomSignal> {
        let mut rooms = match self.rooms.lock() {
            Ok(rooms) => rooms,
            Err(poisoned) => poisoned.into_inner(),
        };
        if rooms.channels.len() >= rooms.sweep_at {
            rooms
                .channels
                .retain(|_, channel| channel.receiver_count() > 0);
            rooms.sweep_at = (rooms.channels.len() * 2).max(FIRST_SWEEP);
        }
        rooms
            .channels
            .entry(room_id)
            .or_insert_with(|| broadcast::channel(CAPACITY).0)
            .subscribe()
    }

    /// Rooms that have subscribers now.
    pub fn listened(&self) -> Vec<Uuid> {
        self.rooms
            .lock()
            .map(|r| {
                r.channels
                    .iter()
                    .filter(|(_, channel)| channel.receiver_count() > 0)
                    .map(|(room, _)| *room)
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Rooms with a channel now (some may have no subscriber left).
    pub fn rooms(&self) -> usize {
        self.rooms.lock().map(|r| r.channels.len()).unwrap_or(0)
    }
}

/// Which leaderboard tops changed, per top (`sync::boards::key`): a
/// `watch` channel keeps only the latest count, so a subscriber that is
/// busy sees one change however many happened meanwhile (coalescing).
#[derive(Default)]
pub struct BoardFeeds {
    boards: Mutex<HashMap<String, watch::Sender<u64>>>,
}

impl BoardFeeds {
    /// Changes of the top `key` from now on.
    pub fn subscribe(&self, key: &str) -> watch::Receiver<u64> {
        let mut boards = match self.boards.lock() {
            Ok(boards) => boards,
            Err(poisoned) => poisoned.into_inner(),
        };
        boards.retain(|_, channel| channel.receiver_count() > 0);
        boards
            .entry(key.to_owned())
            .or_insert_with(|| watch::channel(0).0)
            .subscribe()
    }

    /// The top `key` was written.
    pub fn changed(&self, key: &str) {
        if let Ok(boards) = self.boards.lock() {
            if let Some(channel) = boards.get(key) {
                channel.send_modify(|n| *n = n.wrapping_add(1));
            }
        }
    }

    /// Changes may have been missed: every subscriber looks again.
    pub fn all_changed(&self) {
        if let Ok(boards) = self.boards.lock() {
            for channel in boards.values() {
                channel.send_modify(|n| *n = n.wrapping_add(1));
            }
        }
    }
}

/// How many of this instance's subscriptions follow changes made through
/// other instances. The change stream is open only while some do (see
/// `read::mongo::live::follow`): an instance nobody subscribes to costs the
/// read model no cursor on its oplog.
#[derive(Clone)]
pub struct Listeners(Arc<watch::Sender<usize>>);

impl Default for Listeners {
    fn default() -> Self {
        Self(Arc::new(watch::channel(0).0))
    }
}

impl Listeners {
    /// Counts one more listener until the returned guard is dropped.
    fn listen(&self) -> Listening {
        self.0.send_modify(|n| *n += 1);
        Listening(self.clone())
    }

    /// The number of listeners, as it changes.
    pub fn watch(&self) -> watch::Receiver<usize> {
        self.0.subscribe()
    }
}

/// One counted listener (see [`Listeners`]).
struct Listening(Listeners);

impl Drop for Listening {
    fn drop(&mut self) {
        self.0 .0.send_modify(|n| *n = n.saturating_sub(1));
    }
}

/// A subscription's receiver, counted among the [`Listeners`] for as long
/// as it lives.
pub struct Followed<R> {
    receiver: R,
    _listening: Listening,
}

impl<R> Followed<R> {
    pub fn new(listeners: &Listeners, receiver: R) -> Self {
        Self {
            receiver,
            _listening: listeners.listen(),
        }
    }
}

impl<R> Deref for Followed<R> {
    type Target = R;
    fn deref(&self) -> &R {
        &self.receiver
    }
}

impl<R> DerefMut for Followed<R> {
    fn deref_mut(&mut self) -> &mut R {
        &mut self.receiver
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(room_id: Uuid, body: &str) -> messages::Model {
        messages::Model {
            id: Uuid::new_v4(),
            room_id,
            sender_id: Uuid::new_v4(),
            body: body.to_owned(),
            version: 1,
            seq: Some(1),
            event_seq: None,
            edited_at: None,
            created_at: chrono::Utc::now(),
            updated_at: chrono::Utc::now(),
        }
    }

    #[test]
    fn a_message_reaches_only_its_rooms_subscribers() {
        let feeds = RoomFeeds::default();
        let (a, b) = (Uuid::new_v4(), Uuid::new_v4());
        let mut in_a = feeds.subscribe(a);
        let mut in_b = feeds.subscribe(b);
        feeds.publish(&message(a, "for a"));
        match in_a.try_recv().expect("delivered") {
            RoomSignal::Message(m) => assert_eq!(m.body, "for a"),
            other => panic!("{other:?}"),
        }
        assert!(in_b.try_recv().is_err(), "b saw a's message");
        feeds.members_changed(b);
        assert!(matches!(in_b.try_recv(), Ok(RoomSignal::Members)));
    }

    #[tokio::test]
    async fn a_busy_board_subscriber_sees_one_change_for_many() {
        let feeds = BoardFeeds::default();
        let mut day = feeds.subscribe("day:2026-12-01");
        let mut week = feeds.subscribe("week:2026-11-30");
        for _ in 0..5 {
            feeds.changed("day:2026-12-01");
        }
        assert!(day.has_changed().expect("open"));
        day.changed().await.expect("a change");
        assert!(!day.has_changed().expect("open"), "coalesced into one");
        assert!(!week.has_changed().expect("open"));
        feeds.all_changed();
        week.changed().await.expect("a change");
    }

    #[test]
    fn listeners_are_counted_while_their_receivers_live() {
        let listeners = Listeners::default();
        let count = listeners.watch();
        let feeds = RoomFeeds::default();
        let room = Followed::new(&listeners, feeds.subscribe(Uuid::new_v4()));
        let board = Followed::new(
            &listeners,
            BoardFeeds::default().subscribe("day:2026-12-01"),
        );
        assert_eq!(*count.borrow(), 2);
        drop(room);
        assert_eq!(*count.borrow(), 1);
        drop(board);
        assert_eq!(*count.borrow(), 0);
    }

    #[test]
    fn channels_nobody_listens_to_are_dropped() {
        let feeds = RoomFeeds::default();
        let room = Uuid::new_v4();
        drop(feeds.subscribe(room));
        assert_eq!(feeds.rooms(), 1);
        feeds.publish(&message(room, "nobody"));
        assert_eq!(feeds.rooms(), 0);
        // and by the sweep, for rooms nobody posts to again
        for _ in 0..FIRST_SWEEP {
            drop(feeds.subscribe(Uuid::new_v4()));
        }
        let _kept = feeds.subscribe(room);
        assert_eq!(feeds.rooms(), 1);
    }
}
