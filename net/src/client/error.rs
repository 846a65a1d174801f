//! What can go wrong in a client call, as data.

use std::time::Duration;

use sluice_storage::batch::BatchError;

use crate::native::{codec::DecodeError, frame::FrameError, messages::ApiKey, ErrorCode};

/// The error of every client call.
///
/// `Broker` is an answer: the broker understood the request and refused it
/// (or part of it) with a code. The other variants say the answer never came
/// or could not be read. Once a connection has failed with `Io`, `Protocol`
/// or `Closed`, every later call on it fails the same way: connect anew.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("{}", broker_text(*code, message))]
    Broker { code: ErrorCode, message: String },
    #[error("I/O error: {0}")]
    Io(#[from] std::io::Error),
    #[error("protocol error: {0}")]
    Protocol(#[from] ProtocolError),
    #[error("no answer within {after:?}")]
    Timeout { after: Duration },
    #[error("connection closed: {reason}")]
    Closed { reason: String },
    #[error("could not connect to {brokers}: {reasons}")]
    Connect { brokers: String, reasons: String },
    #[error("the broker does not speak {api:?} versions {client_min}..={client_max} (it speaks {broker:?})")]
    Unsupported {
        api: ApiKey,
        client_min: u16,
        client_max: u16,
        /// The broker's (min, max), `None` when it does not know the API.
        broker: Option<(u16, u16)>,
    },
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    /// A partition's leader is a node the connected node does not list as
    /// alive with a native address.
    #[error(
        "node {node} leads the partition, but no alive node {node} with a native address is known"
    )]
    UnknownNode { node: u32 },
}

fn broker_text(code: ErrorCode, message: &str) -> String {
    if message.is_empty() {
        code.to_string()
    } else {
        format!("{code}: {message}")
    }
}

impl ClientError {
    /// The broker's code, when the broker answered with one.
    pub fn code(&self) -> Option<ErrorCode> {
        match self {
            ClientError::Broker { code, .. } => Some(*code),
            _ => None,
        }
    }

    pub(crate) fn broker(code: ErrorCode, message: impl Into<String>) -> ClientError {
        ClientError::Broker {
            code,
            message: message.into(),
        }
    }
}

/// A failed connection fails every request that was waiting on it, and a
/// failed batch every record in it: each gets its own copy of the error.
/// An I/O error is copied as its kind and text.
impl Clone for ClientError {
    fn clone(&self) -> ClientError {
        match self {
            ClientError::Broker { code, message } => ClientError::Broker {
                code: *code,
                message: message.clone(),
            },
            ClientError::Io(error) => {
                ClientError::Io(std::io::Error::new(error.kind(), error.to_string()))
            }
            ClientError::Protocol(error) => ClientError::Protocol(error.clone()),
            ClientError::Timeout { after } => ClientError::Timeout { after: *after },
            ClientError::Closed { reason } => ClientError::Closed {
                reason: reason.clone(),
            },
            ClientError::Connect { brokers, reasons } => ClientError::Connect {
                brokers: brokers.clone(),
                reasons: reasons.clone(),
            },
            ClientError::Unsupported {
                api,
                client_min,
                client_max,
                broker,
            } => ClientError::Unsupported {
                api: *api,
                client_min: *client_min,
                client_max: *client_max,
                broker: *broker,
            },
            ClientError::InvalidArgument(text) => ClientError::InvalidArgument(text.clone()),
            ClientError::UnknownNode { node } => ClientError::UnknownNode { node: *node },
        }
    }
}

/// The broker sent something this client cannot read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProtocolError {
    #[error("undecodable response: {0}")]
    Decode(#[from] DecodeError),
    #[error("bad frame: {0}")]
    Frame(String),
    #[error("bad record batch: {0}")]
    Batch(#[from] BatchError),
    #[error("unexpected response: {0}")]
    Unexpected(String),
}

impl From<DecodeError> for ClientError {
    fn from(error: DecodeError) -> ClientError {
        ClientError::Protocol(ProtocolError::Decode(error))
    }
}

impl From<BatchError> for ClientError {
    fn from(error: BatchError) -> ClientError {
        ClientError::Protocol(ProtocolError::Batch(error))
    }
}

impl From<FrameError> for ClientError {
    fn from(error: FrameError) -> ClientError {
        match error {
            FrameError::Io(error) => ClientError::Io(error),
            FrameError::Stalled(after) | FrameError::Idle(after) => ClientError::Timeout { after },
            FrameError::ClosedMidFrame { buffered } => ClientError::Closed {
                reason: format!(
                    "the broker closed the connection inside a frame ({buffered} bytes buffered)"
                ),
            },
            error @ (FrameError::TooLarge { .. } | FrameError::TooShort { .. }) => {
                ClientError::Protocol(ProtocolError::Frame(error.to_string()))
            }
        }
    }
}
