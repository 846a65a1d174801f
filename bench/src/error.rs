//! What can stop a run, as data.

use std::path::PathBuf;

use sluice_net::client::ClientError;

#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot write {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("bad workload: {0}")]
    Workload(String),
    #[error("cluster: {0}")]
    Cluster(String),
    #[error("the history holds anomalies: {0}")]
    Anomalies(String),
    #[error("bad result file {path}: {reason}")]
    Result { path: PathBuf, reason: String },
    #[error("bad --cores {given:?}: {reason} (this machine has CPUs 0..{available})")]
    Cores {
        given: String,
        reason: String,
        available: usize,
    },
    #[error("{what}: {source}")]
    Client { what: String, source: ClientError },
    #[error("{what}: {source}")]
    Redis {
        what: String,
        source: crate::resp::RespError,
    },
    #[error("{what}: {source}")]
    Kafka {
        what: String,
        source: rdkafka::error::KafkaError,
    },
    /// A client library's failure, as it words it.
    #[error("{what}: {reason}")]
    Remote { what: String, reason: String },
    #[error("{what} ended")]
    Ended { what: String },
    #[error("cannot start the harness thread on CPU {cpu}: {reason}")]
    Executor { cpu: usize, reason: String },
    #[error("a harness thread stopped: {0}")]
    Worker(String),
}

impl BenchError {
    pub(crate) fn client(what: impl Into<String>) -> impl FnOnce(ClientError) -> BenchError {
        let what = what.into();
        move |source| BenchError::Client { what, source }
    }
}
