//! How many websocket connections and running operations each account holds
//! on this instance, so that one account cannot take the instance's sockets
//! or its subscription streams.
use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
};

use uuid::Uuid;

use crate::config::websocket::WebSocketSettings;

#[derive(Default)]
struct Held {
    connections: usize,
    operations: usize,
}

/// The per-account counts of one instance.
pub struct SocketCaps {
    max_connections: usize,
    max_operations: usize,
    held: Mutex<HashMap<Uuid, Held>>,
}

impl SocketCaps {
    pub fn new(settings: &WebSocketSettings) -> Self {
        Self {
            max_connections: settings.max_connections_per_user,
            max_operations: settings.max_operations_per_user,
            held: Mutex::new(HashMap::new()),
        }
    }

    /// A connection for `user`, or `None` when the account already holds
    /// as many as it may.
    pub fn open(self: &Arc<Self>, user: Uuid) -> Option<ConnectionSlot> {
        let mut held = self.held.lock().ok()?;
        let entry = held.entry(user).or_default();
        if entry.connections >= self.max_connections {
            return None;
        }
        entry.connections += 1;
        Some(ConnectionSlot {
            caps: self.clone(),
            user,
            operations: 0,
        })
    }

    /// Connections `user` holds now.
    pub fn connections_of(&self, user: Uuid) -> usize {
        self.held
            .lock()
            .map(|held| held.get(&user).map_or(0, |h| h.connections))
            .unwrap_or(0)
    }
}

/// One open connection of an account; dropping it gives back the
/// connection and every operation still counted on it.
pub struct ConnectionSlot {
    caps: Arc<SocketCaps>,
    user: Uuid,
    operations: usize,
}

impl ConnectionSlot {
    /// Counts one more running operation of the account, if it may start.
    pub fn start_operation(&mut self) -> bool {
        let Ok(mut held) = self.caps.held.lock() else {
            return false;
        };
        let entry = held.entry(self.user).or_default();
        if entry.operations >= self.caps.max_operations {
            return false;
        }
        entry.operations += 1;
        self.operations += 1;
        true
    }

    pub fn end_operation(&mut self) {
        if self.operations == 0 {
            return;
        }
        self.operations -= 1;
        if let Ok(mut held) = self.caps.held.lock() {
            if let Some(entry) = held.get_mut(&self.user) {
                entry.operations = entry.operations.saturating_sub(1);
            }
        }
    }
}

impl Drop for ConnectionSlot {
    fn drop(&mut self) {
        let Ok(mut held) = self.caps.held.lock() else {
            return;
        };
        if let Some(entry) = held.get_mut(&self.user) {
            entry.connections = entry.connections.saturating_sub(1);
            entry.operations = entry.operations.saturating_sub(self.operations);
            if entry.connections == 0 {
                held.remove(&self.user);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn caps(connections: usize, operations: usize) -> Arc<SocketCaps> {
        Arc::new(SocketCaps {
            max_connections: connections,
            max_operations: operations,
            held: Mutex::new(HashMap::new()),
        })
    }

    #[test]
    fn an_account_holds_at_most_its_connections_and_gets_them_back() {
        let caps = caps(2, 10);
        let user = Uuid::new_v4();
        let first = caps.open(user).expect("first");
        let second = caps.open(user).expect("second");
        assert!(caps.open(user).is_none());
        assert!(
            caps.open(Uuid::new_v4()).is_some(),
            "others are not affected"
        );
        drop(first);
        assert_eq!(caps.connections_of(user), 1);
        let third = caps.open(user).expect("a slot was given back");
        drop((second, third));
        assert_eq!(caps.connections_of(user), 0);
        assert!(caps.held.lock().expect("lock").is_empty());
    }

    #[test]
    fn operations_are_shared_by_an_accounts_connections() {
        let caps = caps(4, 3);
        let user = Uuid::new_v4();
        let mut a = caps.open(user).expect("a");
        let mut b = caps.open(user).expect("b");
        assert!(a.start_operation());
        assert!(a.start_operation());
        assert!(b.start_operation());
        assert!(!b.start_operation(), "the account's cap is reached");
        a.end_operation();
        assert!(b.start_operation());
        // A closing connection gives back what it still held.
        drop(b);
        let mut c = caps.open(user).expect("c");
        assert!(c.start_operation());
        assert!(c.start_operation());
        assert!(!c.start_operation(), "a's one operation still counts");
    }
}
