//! For drivers whose client library runs on threads of its own (librdkafka's
//! threads, the NATS client's tokio runtime): what those threads send back
//! to the harness thread, and the tasks there that record it.
//!
//! Every outcome and every record read is stamped with the run's clock on
//! the client's thread, where it happened, so the hop to the harness
//! thread is never in a latency.

use glommio::Task;
use tokio::sync::mpsc;

use crate::{
    driver::{self, Pending, Recorder, FETCH_WAIT},
    schedule::Nanos,
    BenchError,
};

/// Batches of reads taken at most per [`Inbox::poll`], so that a consumer
/// that is behind still lets the harness thread's other tasks run.
const BATCHES_PER_POLL_MAX: usize = 64;

/// Reads a client's thread sends over at most at once: the records that
/// were ready together. One send per record (a cross-thread channel
/// operation each) cost the harness's core more than the recording.
pub const READS_PER_BATCH_MAX: usize = 256;

/// Moves what `batch` holds into a vector of its own size, leaving `batch`
/// empty with its capacity, to gather the next batch in.
pub fn sized(batch: &mut Vec<Read>) -> Vec<Read> {
    let mut sent = Vec::with_capacity(batch.len());
    sent.append(batch);
    sent
}

/// Batches read and not yet recorded: with [`READS_PER_BATCH_MAX`], bounds
/// the memory between a consumer's thread and the harness thread (only
/// sizes and times travel, never the records).
pub const BATCHES_QUEUED_MAX: usize = 256;

/// What a producer's client thread says of one record.
#[derive(Debug)]
pub enum Outcome {
    Delivered {
        pending: Pending,
        at: Nanos,
        result: Result<(), String>,
    },
    /// Sent by the harness thread after the last record: this many were
    /// sent in all.
    Done { sent: u64 },
}

/// The producer side: outcomes come in from any thread, a collector task
/// records them.
pub struct Outcomes {
    sender: mpsc::UnboundedSender<Outcome>,
    receiver: Option<mpsc::UnboundedReceiver<Outcome>>,
    collector: Option<Task<u64>>,
    /// Records handed to the client whose outcome is to come.
    sent: u64,
}

impl Default for Outcomes {
    fn default() -> Outcomes {
        Outcomes::new()
    }
}

impl Outcomes {
    pub fn new() -> Outcomes {
        let (sender, receiver) = mpsc::unbounded_channel();
        Outcomes {
            sender,
            receiver: Some(receiver),
            collector: None,
            sent: 0,
        }
    }

    /// For the client's threads.
    pub fn sender(&self) -> mpsc::UnboundedSender<Outcome> {
        self.sender.clone()
    }

    /// Starts the collector on the harness thread.
    pub fn start(&mut self, recorder: &Recorder) {
        let receiver = self.receiver.take().expect("started once");
        self.collector = Some(glommio::spawn_local(collect(receiver, recorder.clone())));
    }

    /// One more record whose outcome will come.
    pub fn sent(&mut self) {
        self.sent += 1;
    }

    /// After the last record: waits for every outcome until the drain
    /// deadline, and counts those that never came.
    pub async fn finish(mut self, recorder: &Recorder) {
        let _ = self.sender.send(Outcome::Done { sent: self.sent });
        let heard = match self.collector.take() {
            Some(collector) => collector.await,
            None => 0,
        };
        recorder.unacknowledged(self.sent.saturating_sub(heard));
    }
}

/// Records each outcome; ends once every record sent is heard of (after
/// [`Outcome::Done`]) or at the drain deadline. Returns how many were
/// heard.
async fn collect(mut receiver: mpsc::UnboundedReceiver<Outcome>, recorder: Recorder) -> u64 {
    let clock = recorder.clock();
    let deadline = recorder.timeline().drain_deadline;
    let (mut heard, mut sent) = (0u64, None);
    // Every record's outcome comes exactly once, so the count tells the
    // producer what is missing.
    loop {
        // What has come is taken without a timer (one per outcome was a
        // timer armed and cancelled per record); the wait has one.
        let next = match receiver.try_recv() {
            Ok(outcome) => Some(Some(outcome)),
            Err(_) => driver::until(clock, deadline, receiver.recv()).await,
        };
        match next {
            None | Some(None) => return heard,
            Some(Some(Outcome::Done { sent: total })) => sent = Some(total),
            Some(Some(Outcome::Delivered {
                pending,
                at,
                result,
            })) => {
                heard += 1;
                match result {
                    Ok(()) => recorder.acknowledged(at, pending),
                    Err(reason) => recorder.produce_failed(at, &reason),
                }
            }
        }
        if sent.is_some_and(|sent| heard >= sent) {
            return heard;
        }
    }
}

/// What a consumer's client thread says.
#[derive(Debug)]
pub enum Read {
    Record {
        at: Nanos,
        intended: Option<Nanos>,
        bytes: usize,
    },
    Failed(String),
}

/// The consumer side: records read on the client's thread, in batches of
/// those ready together (at most [`READS_PER_BATCH_MAX`]), recorded on the
/// harness thread.
pub struct Inbox {
    receiver: mpsc::Receiver<Vec<Read>>,
    what: String,
}

impl Inbox {
    /// `what` names the consumer in errors.
    pub fn new(what: String) -> (mpsc::Sender<Vec<Read>>, Inbox) {
        let (sender, receiver) = mpsc::channel(BATCHES_QUEUED_MAX);
        (sender, Inbox { receiver, what })
    }

    /// Takes what has come (up to [`BATCHES_PER_POLL_MAX`] batches); if
    /// nothing has, waits up to [`FETCH_WAIT`] for the first batch.
    pub async fn poll(&mut self, recorder: &Recorder) -> Result<(), BenchError> {
        let first = match self.receiver.try_recv() {
            Ok(batch) => batch,
            Err(_) => {
                let deadline = recorder.now() + FETCH_WAIT.as_nanos() as Nanos;
                match driver::until(recorder.clock(), deadline, self.receiver.recv()).await {
                    None => return Ok(()),
                    Some(None) => {
                        return Err(BenchError::Ended {
                            what: format!("the client thread of {}", self.what),
                        })
                    }
                    Some(Some(batch)) => batch,
                }
            }
        };
        let mut batch = Some(first);
        let mut count = 0;
        while let Some(reads) = batch.take() {
            for read in reads {
                match read {
                    Read::Record {
                        at,
                        intended,
                        bytes,
                    } => recorder.consumed(at, intended, bytes),
                    Read::Failed(reason) => {
                        return Err(BenchError::Remote {
                            what: self.what.clone(),
                            reason,
                        })
                    }
                }
            }
            count += 1;
            if count < BATCHES_PER_POLL_MAX {
                batch = self.receiver.try_recv().ok();
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_batch_is_sent_at_its_own_size_and_the_buffer_kept() {
        let mut batch = Vec::with_capacity(READS_PER_BATCH_MAX);
        for at in 0..3 {
            batch.push(Read::Record {
                at,
                intended: Some(at),
                bytes: 100,
            });
        }
        let sent = sized(&mut batch);
        assert_eq!(sent.len(), 3);
        assert_eq!(sent.capacity(), 3);
        assert!(matches!(sent[2], Read::Record { at: 2, .. }));
        assert!(batch.is_empty());
        assert!(batch.capacity() >= READS_PER_BATCH_MAX);
    }
}
