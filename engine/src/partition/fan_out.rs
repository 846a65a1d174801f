//! Many partitions' parts of one request: all sent before any answer is
//! awaited, then gathered in the order they were sent.

use super::{Answer, Failure};

/// A partition's part of a request: on its way to the owner, or refused
/// before it went.
pub type Pending<T> = Result<Answer<Result<T, Failure>>, Failure>;

/// The answer of one part.
async fn settle<T>(part: Pending<T>) -> Result<T, Failure> {
    match part {
        Ok(answer) => answer.await,
        Err(failure) => Err(failure),
    }
}

/// The answer of each part, in order.
pub async fn gather_all<T>(parts: Vec<Pending<T>>) -> Vec<Result<T, Failure>> {
    let mut answers = Vec::with_capacity(parts.len());
    for part in parts {
        answers.push(settle(part).await);
    }
    answers
}

/// One topic's parts, each with its label: (topic, [(partition, part)]).
pub type TopicParts<P, R> = (String, Vec<(P, R)>);

/// The parts of a request that names partitions topic by topic (as both
/// protocols' produce, list-offsets and delete-records requests do), each
/// labelled with its partition as the request named it (`P`). A topic's
/// parts are added first, each sent as it is added, and then the topic is
/// closed under its name ([`FanOut::end_topic`]), which takes the name by
/// value once nothing needs it any more.
pub struct FanOut<P, T> {
    topics: Vec<TopicParts<P, Pending<T>>>,
    /// The parts of the topic not yet closed.
    open: Vec<(P, Pending<T>)>,
}

impl<P, T> Default for FanOut<P, T> {
    fn default() -> Self {
        FanOut {
            topics: Vec::new(),
            open: Vec::new(),
        }
    }
}

impl<P, T> FanOut<P, T> {
    /// Adds a part of the topic being added.
    pub fn part(&mut self, partition: P, pending: Pending<T>) {
        self.open.push((partition, pending));
    }

    /// Closes the parts added since the last topic as topic `name`'s (none:
    /// a topic the request named with no partitions).
    pub fn end_topic(&mut self, name: String) {
        let parts = std::mem::take(&mut self.open);
        self.topics.push((name, parts));
    }

    /// Every part's answer, topic by topic, in the order added.
    ///
    /// Panics if parts were added after the last topic was closed: a bug.
    pub async fn gather(self) -> Vec<TopicParts<P, Result<T, Failure>>> {
        assert!(
            self.open.is_empty(),
            "{} parts added after the last topic was closed",
            self.open.len()
        );
        let mut topics = Vec::with_capacity(self.topics.len());
        for (name, parts) in self.topics {
            let mut answers = Vec::with_capacity(parts.len());
            for (partition, part) in parts {
                answers.push((partition, settle(part).await));
            }
            topics.push((name, answers));
        }
        topics
    }
}
