//! The live-subscriptions section of the report, its targets, and the
//! stand-alone `LIVE.md` written when the phase runs.
use std::fmt::Write as _;

use crate::{
    live::{CpuCell, Listeners, LiveResults, Path, CROSS_P99_TARGET_MS, FLAT_CPU_TARGET},
    report::{Results, Target},
};

fn ms(x: f64) -> String {
    if x.is_finite() {
        format!("{x:.1}")
    } else {
        "–".into()
    }
}

fn figure(x: Option<f64>, digits: usize) -> String {
    x.map_or_else(|| "not available".to_owned(), |v| format!("{v:.digits$}"))
}

fn cell(l: &LiveResults, listeners: Listeners) -> Option<&CpuCell> {
    l.cpu.iter().find(|c| c.listeners == listeners)
}

/// CPU per send without subscriptions: the mean of the cells before and
/// after those with the subscriptions to other rooms (either alone when the
/// other is missing).
pub fn baseline(l: &LiveResults) -> Option<f64> {
    let cells: Vec<f64> = [Listeners::None, Listeners::Closed]
        .into_iter()
        .filter_map(|k| cell(l, k))
        .map(CpuCell::cpu_ms_per_send)
        .collect();
    let mean = cells.iter().sum::<f64>() / cells.len() as f64;
    (!cells.is_empty() && mean > 0.0).then_some(mean)
}

/// CPU per send with the subscriptions to other rooms over without any.
pub fn flat_ratio(l: &LiveResults) -> Option<f64> {
    Some(cell(l, Listeners::OtherRooms)?.cpu_ms_per_send() / baseline(l)?)
}

/// The targets this phase is held to.
pub fn targets(l: &LiveResults) -> Vec<Target> {
    let cross = l
        .delivery
        .as_ref()
        .ok()
        .and_then(|d| d.paths.iter().find(|p| p.path == Path::CrossInstance))
        .filter(|p| p.received > 0);
    let other = cell(l, Listeners::OtherRooms);
    vec![
        Target {
            name: format!(
                "messageAdded across instances: commit (sendMessage answered on A) to receipt on B, p99 ≤ {CROSS_P99_TARGET_MS:.0} ms"
            ),
            met: cross.map(|p| p.from_answer.p99 <= CROSS_P99_TARGET_MS && p.received == p.expected),
            measured: cross
                .map(|p| {
                    format!(
                        "{:.1} ms (p50 {:.1}, max {:.1}; {} of {} received)",
                        p.from_answer.p99, p.from_answer.p50, p.from_answer.max, p.received, p.expected
                    )
                })
                .ok_or_else(|| "not available".to_owned()),
        },
        Target {
            name: format!(
                "sendMessage server CPU flat with {} subscriptions to other rooms (≤ {FLAT_CPU_TARGET:.2} × with none)",
                other.map_or(l.settings.subscriptions, |c| c.subscriptions)
            ),
            met: flat_ratio(l).map(|r| r <= FLAT_CPU_TARGET),
            measured: flat_ratio(l)
                .zip(baseline(l).zip(other))
                .map(|(r, (none, other))| {
                    format!(
                        "{r:.2} × ({:.3} ms against {none:.3} ms per send)",
                        other.cpu_ms_per_send(),
                    )
                })
                .ok_or_else(|| "not available".to_owned()),
        },
    ]
}

fn delivery_section(s: &mut String, l: &LiveResults) {
    let set = &l.settings;
    let _ = writeln!(s, "### Delivery across instances\n\nTwo `studysync serve` processes (the release binary, each with its default in-process worker) on the same databases. {} subscribers of the busiest seeded room listen on instance B and {} on instance A, each on a websocket of its own (`graphql-transport-ws`, `messageAdded(roomId)`); one member of the room sends `sendMessage` through A at {:.0} messages/s for {:.0} s, open loop (each send starts on time whatever the latency), every body numbered (`live <n>`). A message reaches B through A's worker (woken by the commit) applying it to MongoDB and B's change stream on `messages`; it reaches A's own subscribers right after the commit. Each receipt is stamped when the benchmark reads its frame, on the same clock as the send. **From commit** is from the moment the mutation's HTTP answer was read (the transaction committed before the server answered; negative when the message arrived first); **from send** is from just before the request was sent. {warm} warm-up messages had reached every subscriber before the measurement started.\n",
        set.subscribers, set.subscribers, set.rate, set.secs, warm = crate::live::WARM_UP);
    match &l.delivery {
        Ok(d) => {
            let _ = writeln!(s, "| Subscriber on | subscribers | received / expected | from commit p50 (ms) | p99 | max | from send p50 (ms) | p99 | max |\n|---|---|---|---|---|---|---|---|---|");
            for p in &d.paths {
                let _ = writeln!(
                    s,
                    "| {} | {} | {} / {} | {} | {} | {} | {} | {} | {} |",
                    p.path.label(),
                    p.subscribers,
                    p.received,
                    p.expected,
                    ms(p.from_answer.p50),
                    ms(p.from_answer.p99),
                    ms(p.from_answer.max),
                    ms(p.from_send.p50),
                    ms(p.from_send.p99),
                    ms(p.from_send.max),
                );
            }
            let _ = writeln!(
                s,
                "\n{} messages sent at {:.1}/s achieved, {} failed; the `sendMessage` requests themselves: p50 {} ms, p99 {} ms.\n",
                d.sent,
                d.achieved_rate,
                d.failed,
                ms(d.mutation.p50),
                ms(d.mutation.p99)
            );
        }
        Err(e) => {
            let _ = writeln!(s, "Not available: {e}\n");
        }
    }
}

fn cpu_section(s: &mut String, l: &LiveResults) {
    let set = &l.settings;
    let _ = writeln!(s, "### sendMessage CPU with subscriptions open\n\nOne `studysync serve` (release, default in-process worker). The server's CPU is its process's user + system time from `/proc/<pid>/stat` from the first send until the worker had applied the last message (no outbox event pending), divided by the sends answered; it includes the worker's applying and the change stream bringing each message back. The same member sends to the busiest room: {} messages at {:.0}/s without subscriptions, with the subscriptions to other rooms, and without them again once they were completed (their connections still open; \"× none\" is against the mean of the two cells without subscriptions, which also shows how far the shared machine drifted in between); with subscriptions in the sender's room (as many as its members may hold, see below), {} messages one at a time, each sent once the previous one had reached every subscriber. Idle is the server's CPU over the {} s just before, with the same subscriptions open; \"net\" subtracts it over the cell's wall time. Before each cell the benchmark waits until the server spends under 5 % of a core for a second.\n",
        set.sends, set.send_rate, set.same_room_sends, crate::live::IDLE.as_secs());
    let _ = writeln!(s, "| Subscriptions | open | connections | rooms | sends | server CPU per send (ms) | net of idle (ms) | × none | idle (ms/s) | deliveries | send p50 (ms) | wall (s) |\n|---|---|---|---|---|---|---|---|---|---|---|---|");
    let none = baseline(l);
    for c in &l.cpu {
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} | {} | {:.3} | {:.3} | {} | {:.1} | {} | {} | {:.1} |",
            c.listeners.label(),
            c.subscriptions,
            c.connections,
            c.rooms,
            c.sends.n,
            c.cpu_ms_per_send(),
            c.net_cpu_ms_per_send(),
            figure(none.map(|n| c.cpu_ms_per_send() / n), 2),
            c.idle_cpu_ms_per_sec,
            c.deliveries,
            ms(c.sends.p50),
            c.wall_secs
        );
    }
    if l.cpu.is_empty() {
        let _ = writeln!(s, "| not available | | | | | | | | | | | |");
    }
    let _ = writeln!(s);
}

fn memory_section(s: &mut String, l: &LiveResults) {
    let m = &l.memory;
    let _ = writeln!(s, "### Memory per subscription\n\nThe same server's RSS (`VmRSS` from `/proc/<pid>/status`): idle (after the sends without subscriptions), with the {} websocket connections identified and no operation, with the {} subscriptions to other rooms open (every one of them had received a probe message), and with {} to the sender's room (on the connections of the accounts that are its members: a room holds at most {} members, each account {} operations; the other connections stay open). The allocator keeps what it was given, so each figure is read as the next state opens.\n",
        m.connections, m.subscriptions, m.same_room_subscriptions, studysync::domain::MAX_ROOM_MEMBERS, l.caps.per_user);
    let _ = writeln!(s, "| State | RSS (MiB) |\n|---|---|\n| idle | {} |\n| {} connections | {} |\n| {} subscriptions to other rooms on them | {} |\n| {} subscriptions to the sender's room | {} |\n",
        figure(m.idle_mib, 1),
        m.connections,
        figure(m.connected_mib, 1),
        m.subscriptions,
        figure(m.subscribed_mib, 1),
        m.same_room_subscriptions,
        figure(m.same_room_mib, 1));
    let _ = writeln!(
        s,
        "Per websocket connection: **{} KiB**. Per subscription: **{} KiB** on its own, {} KiB with its share of the connections ({} subscriptions per connection).\n",
        figure(m.per_connection_kib(), 1),
        figure(m.per_subscription_kib(), 2),
        figure(m.per_subscription_all_in_kib(), 2),
        l.caps.per_connection
    );
}

/// The section, from the measured figures.
pub fn section(l: &LiveResults) -> String {
    let mut s = String::new();
    let c = &l.caps;
    let _ = writeln!(s, "## Live subscriptions\n\nEvery server of this phase runs with its defaults except {}: the benchmark is one client address, and sends from few accounts. The websocket caps are the defaults, so the subscriptions are spread over {} seeded accounts, each holding `WS_MAX_OPERATIONS_PER_USER` ({}) operations on connections of `WS_MAX_OPERATIONS_PER_CONNECTION` ({}) each (at most `WS_MAX_CONNECTIONS_PER_USER`, {}), to rooms of theirs other than the sender's, opened in rounds of one per connection, each round once the server and PostgreSQL had gone quiet. The server of the CPU and memory figures also runs with `WS_RECHECK_MS={}` instead of its {}: a subscription that delivers re-reads its caller and membership once that time (spread at random over half as much again) has passed, and these figures are of delivery, not of that re-read.\n",
        crate::report::env_list(&l.server_vars), l.accounts, c.per_user, c.per_connection, c.connections_per_user, crate::live::FANOUT_RECHECK_MS, c.recheck_ms);
    delivery_section(&mut s, l);
    cpu_section(&mut s, l);
    memory_section(&mut s, l);
    s
}

/// `LIVE.md`: this phase's figures on their own, so a run of this phase
/// alone need not rewrite the whole report.
pub fn standalone(r: &Results, l: &LiveResults) -> String {
    crate::report::standalone(
        r,
        "live subscriptions across instances and at scale",
        &targets(l),
        &section(l),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        live::{Caps, Delivery, DeliveryRun, Memory, Settings},
        stats::{summarize_ms, Summary},
    };
    use std::time::Duration;

    fn summary(ms: &[f64]) -> Summary {
        summarize_ms(&mut ms.to_vec(), 0, Duration::from_secs(10))
    }

    fn cpu(listeners: Listeners, cpu_secs: f64) -> CpuCell {
        CpuCell {
            listeners,
            subscriptions: if listeners == Listeners::None {
                0
            } else {
                10_000
            },
            connections: 313,
            rooms: 99,
            sends: summary(&[1.0; 500]),
            cpu_secs,
            wall_secs: 12.5,
            idle_cpu_ms_per_sec: 4.0,
            deliveries: 0,
        }
    }

    fn results() -> LiveResults {
        LiveResults {
            settings: Settings {
                rate: 20.0,
                secs: 10.0,
                subscribers: 4,
                sends: 500,
                send_rate: 40.0,
                subscriptions: 10_000,
                same_room_sends: 20,
            },
            caps: Caps {
                per_connection: 32,
                per_user: 64,
                connections_per_user: 8,
                recheck_ms: 5_000,
            },
            server_vars: vec![("MUTATION_BURST", "100000".to_owned())],
            delivery: Ok(DeliveryRun {
                sent: 200,
                failed: 0,
                achieved_rate: 20.0,
                mutation: summary(&[3.0, 4.0]),
                paths: vec![
                    Delivery {
                        path: Path::CrossInstance,
                        subscribers: 4,
                        expected: 800,
                        received: 800,
                        from_send: summary(&[20.0, 30.0, 44.0]),
                        from_answer: summary(&[16.0, 26.0, 40.0]),
                    },
                    Delivery {
                        path: Path::SameInstance,
                        subscribers: 4,
                        expected: 800,
                        received: 800,
                        from_send: summary(&[3.0]),
                        from_answer: summary(&[-0.5]),
                    },
                ],
            }),
            cpu: vec![
                cpu(Listeners::None, 0.5),
                cpu(Listeners::OtherRooms, 0.52),
                cpu(Listeners::Closed, 0.5),
            ],
            memory: Memory {
                idle_mib: Some(40.0),
                connections: 313,
                connected_mib: Some(45.0),
                subscriptions: 10_000,
                subscribed_mib: Some(70.0),
                same_room_mib: None,
                same_room_subscriptions: 0,
            },
            accounts: 157,
        }
    }

    #[test]
    fn both_targets_are_judged_from_the_figures() {
        let t = targets(&results());
        assert_eq!(t[0].met, Some(true));
        assert!(t[0]
            .measured
            .as_ref()
            .is_ok_and(|m| m.starts_with("40.0 ms")));
        assert_eq!(t[1].met, Some(true));
        assert!(t[1]
            .measured
            .as_ref()
            .is_ok_and(|m| m.starts_with("1.04 ×")));
    }

    #[test]
    fn the_baseline_is_the_mean_of_the_cells_without_subscriptions() {
        let mut r = results();
        r.cpu[2].cpu_secs = 0.6;
        // (1.0 + 1.2) / 2 ms per send.
        assert!(baseline(&r).is_some_and(|b| (b - 1.1).abs() < 1e-9));
        assert!(flat_ratio(&r).is_some_and(|x| (x - 1.04 / 1.1).abs() < 1e-9));
        r.cpu.retain(|c| c.listeners == Listeners::OtherRooms);
        assert_eq!(baseline(&r), None);
        assert_eq!(flat_ratio(&r), None);
    }

    #[test]
    fn a_lost_message_or_a_missing_cell_is_not_a_met_target() {
        let mut r = results();
        if let Ok(d) = &mut r.delivery {
            d.paths[0].received = 799;
        }
        r.cpu.retain(|c| c.listeners != Listeners::OtherRooms);
        assert!(baseline(&r).is_some_and(|b| (b - 1.0).abs() < 1e-9));
        let t = targets(&r);
        assert_eq!(t[0].met, Some(false));
        assert_eq!(t[1].met, None);
        r.delivery = Err("server did not start".into());
        assert_eq!(targets(&r)[0].met, None);
        assert!(section(&r).contains("Not available: server did not start"));
    }

    #[test]
    fn the_section_shows_the_settings_and_the_derived_figures() {
        let s = section(&results());
        assert!(s.contains("`MUTATION_BURST=100000`"));
        assert!(s.contains("| other instance (B) | 4 | 800 / 800 | 26.0 | 40.0 | 40.0 |"));
        assert!(s.contains("| same instance (A) | 4 | 800 / 800 | -0.5 |"));
        // (45 − 40) MiB over 313 connections; (70 − 45) MiB over 10,000.
        assert!(s.contains("Per websocket connection: **16.4 KiB**"), "{s}");
        assert!(s.contains("Per subscription: **2.56 KiB**"), "{s}");
        assert!(s.contains("| subscriptions to other rooms | 10000 | 313 | 99 | 500 | 1.040 |"));
    }
}
