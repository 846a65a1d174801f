//! What a leader pushes to each follower, and when.
//!
//! Per follower the leader keeps where its next push starts. A push takes
//! the offsets from there to the leader's log end (at most
//! `records_max`), and several may be in flight (`in_flight_max`): the
//! next one starts where the last ended, without waiting for its
//! acknowledgement. A follower with nothing to take still gets a push
//! every `heartbeat_ms`, carrying the high watermark.
//!
//! The leader's log is batches, and a push carries whole ones: the range
//! [`Pushes::next`] gives says where to start and about how far to go;
//! the leader reads the batches from its start (up to its byte cap) and
//! says where they ended with [`Pushes::sent`], which is where the next
//! push starts.
//!
//! A follower that refuses a push as not contiguous names its log end:
//! pushes start there again. A follower that acknowledges nothing for
//! `resend_ms` while pushes are in flight gets them again from the end it
//! last acknowledged (a push may have been lost); one it already holds is
//! acknowledged again and changes nothing.

use std::ops::Range;

use super::{leader::Node, wire::AckStatus};

/// How pushes are paced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PushConfig {
    pub records_max: u64,
    pub in_flight_max: u32,
    pub heartbeat_ms: u64,
    pub resend_ms: u64,
}

#[derive(Debug, Clone)]
struct Cursor {
    node: Node,
    /// Where the next push starts.
    next: u64,
    /// The follower's log end as it last said.
    acked_end: u64,
    in_flight: u32,
    sent_ms: Option<u64>,
    heard_ms: u64,
}

#[derive(Debug, Clone)]
pub struct Pushes {
    config: PushConfig,
    cursors: Vec<Cursor>,
}

impl Pushes {
    /// Pushes to `followers`, starting at the leader's log end `log_end`
    /// (a follower behind it says so on the first heartbeat).
    pub fn new(followers: &[Node], log_end: u64, config: PushConfig, now_ms: u64) -> Pushes {
        Pushes {
            config,
            cursors: followers
                .iter()
                .map(|node| Cursor {
                    node: *node,
                    next: log_end,
                    acked_end: log_end,
                    in_flight: 0,
                    sent_ms: None,
                    heard_ms: now_ms,
                })
                .collect(),
        }
    }

    /// The offsets to push to `follower` now, the leader's log ending at
    /// `log_end`: records, an empty range for a heartbeat, or `None`.
    pub fn next(&mut self, follower: Node, log_end: u64, now_ms: u64) -> Option<Range<u64>> {
        let config = self.config;
        let cursor = self.cursors.iter_mut().find(|c| c.node == follower)?;
        if cursor.in_flight > 0 && cursor.heard_ms + config.resend_ms <= now_ms {
            // Nothing heard for a while: what is in flight may be lost.
            cursor.next = cursor.acked_end;
            cursor.in_flight = 0;
            cursor.heard_ms = now_ms;
        }
        cursor.next = cursor.next.min(log_end);
        let records = cursor.next < log_end && cursor.in_flight < config.in_flight_max;
        let heartbeat = cursor
            .sent_ms
            .is_none_or(|sent| sent + config.heartbeat_ms <= now_ms);
        if !records && !heartbeat {
            return None;
        }
        let start = cursor.next;
        let end = if records {
            log_end.min(start + config.records_max.max(1))
        } else {
            start
        };
        cursor.next = end;
        cursor.in_flight += 1;
        cursor.sent_ms = Some(now_ms);
        Some(start..end)
    }

    /// The push [`Pushes::next`] just gave for `follower` carried batches
    /// up to `end` (whole batches: before the range's end when the byte
    /// cap came first, past it when a batch straddles it; the range's
    /// start for a heartbeat). Call it before the next call to `next` for
    /// that follower.
    pub fn sent(&mut self, follower: Node, end: u64) {
        if let Some(cursor) = self.cursors.iter_mut().find(|c| c.node == follower) {
            cursor.next = end;
        }
    }

    /// `follower` answered a push with `status`, its log ending at
    /// `log_end`.
    pub fn answered(&mut self, follower: Node, status: AckStatus, log_end: u64, now_ms: u64) {
        let Some(cursor) = self.cursors.iter_mut().find(|c| c.node == follower) else {
            return;
        };
        cursor.heard_ms = now_ms;
        cursor.in_flight = cursor.in_flight.saturating_sub(1);
        match status {
            AckStatus::Ok => cursor.acked_end = cursor.acked_end.max(log_end),
            AckStatus::NotContiguous => {
                cursor.acked_end = log_end;
                cursor.next = log_end;
                cursor.in_flight = 0;
            }
            // The follower knows a newer leader, or does not follow:
            // the controller's metadata will say what this node is now.
            AckStatus::StaleEpoch | AckStatus::NotFollower => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CONFIG: PushConfig = PushConfig {
        records_max: 10,
        in_flight_max: 2,
        heartbeat_ms: 50,
        resend_ms: 100,
    };

    #[test]
    fn pushes_pipeline_up_to_the_window_then_resend_what_went_unheard() {
        let mut pushes = Pushes::new(&[2, 3], 0, CONFIG, 0);
        assert_eq!(pushes.next(2, 25, 1), Some(0..10));
        assert_eq!(pushes.next(2, 25, 1), Some(10..20));
        assert_eq!(pushes.next(2, 25, 1), None, "two in flight");
        pushes.answered(2, AckStatus::Ok, 10, 2);
        assert_eq!(pushes.next(2, 25, 2), Some(20..25));
        assert_eq!(pushes.next(2, 25, 3), None);
        // Nothing heard for 100 ms: from the end last acknowledged.
        assert_eq!(pushes.next(2, 25, 102), Some(10..20));
        assert_eq!(pushes.next(9, 25, 102), None, "not a follower");
    }

    #[test]
    fn a_refusal_restarts_at_the_followers_end_and_idle_followers_get_heartbeats() {
        let mut pushes = Pushes::new(&[2], 40, CONFIG, 0);
        assert_eq!(pushes.next(2, 40, 0), Some(40..40), "a heartbeat");
        assert_eq!(pushes.next(2, 40, 10), None);
        pushes.answered(2, AckStatus::NotContiguous, 12, 11);
        assert_eq!(pushes.next(2, 40, 11), Some(12..22));
        pushes.answered(2, AckStatus::Ok, 22, 12);
        assert_eq!(pushes.next(2, 40, 12), Some(22..32));
        assert_eq!(pushes.next(2, 40, 12), Some(32..40));
        pushes.answered(2, AckStatus::Ok, 32, 13);
        pushes.answered(2, AckStatus::Ok, 40, 13);
        assert_eq!(pushes.next(2, 40, 20), None);
        assert_eq!(pushes.next(2, 40, 62), Some(40..40));
    }

    #[test]
    fn a_push_ends_where_its_batches_did() {
        let mut pushes = Pushes::new(&[2], 0, CONFIG, 0);
        // A batch of 14 straddles the range's end: the push takes it whole.
        assert_eq!(pushes.next(2, 30, 1), Some(0..10));
        pushes.sent(2, 14);
        // The byte cap cut the next push at 17.
        assert_eq!(pushes.next(2, 30, 1), Some(14..24));
        pushes.sent(2, 17);
        pushes.answered(2, AckStatus::Ok, 14, 2);
        assert_eq!(pushes.next(2, 30, 2), Some(17..27));
    }
}
