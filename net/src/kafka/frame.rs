//! Kafka's framing: an i32 big-endian length, then a request header and body
//! (or a response header and body). The header's own version follows from
//! the API and its version; the codecs are `kafka-protocol`'s.

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::{
    messages::{ApiKey, RequestHeader, ResponseHeader},
    protocol::{Decodable, Encodable},
};

/// A request as read from a frame: its header decoded, its body not yet.
#[derive(Debug)]
pub struct KafkaRequest {
    pub api: ApiKey,
    pub version: i16,
    pub correlation_id: i32,
    pub client_id: Option<String>,
    /// Where the request came from, as Kafka shows it (`/127.0.0.1`); set
    /// by the server, not read from the frame.
    pub client_host: String,
    pub body: Bytes,
}

#[derive(Debug, thiserror::Error)]
pub enum KafkaFrameError {
    #[error("request of {bytes} bytes is too short for a header")]
    TooShort { bytes: usize },
    #[error("unknown api key {0}")]
    UnknownApi(i16),
    #[error("{api:?} request header: {reason}")]
    Header { api: ApiKey, reason: String },
    #[error("{api:?} v{version} request: {reason}")]
    Body {
        api: ApiKey,
        version: i16,
        reason: String,
    },
    #[error("{api:?} v{version} response: {reason}")]
    Encode {
        api: ApiKey,
        version: i16,
        reason: String,
    },
}

/// Splits a frame into its header and body. The header's fixed part (api
/// key, version, correlation id) is read first; an unknown API cannot be
/// answered (no response shape exists for it), so it is an error.
pub fn parse_request(mut frame: Bytes) -> Result<KafkaRequest, KafkaFrameError> {
    if frame.len() < 8 {
        return Err(KafkaFrameError::TooShort { bytes: frame.len() });
    }
    let api_key = i16::from_be_bytes([frame[0], frame[1]]);
    let version = i16::from_be_bytes([frame[2], frame[3]]);
    let api = ApiKey::try_from(api_key).map_err(|()| KafkaFrameError::UnknownApi(api_key))?;
    let header_version = api.request_header_version(version);
    let header = RequestHeader::decode(&mut frame, header_version).map_err(|error| {
        KafkaFrameError::Header {
            api,
            reason: error.to_string(),
        }
    })?;
    Ok(KafkaRequest {
        api,
        version,
        correlation_id: header.correlation_id,
        client_id: header.client_id.map(|id| id.to_string()),
        client_host: String::new(),
        body: frame,
    })
}

impl KafkaRequest {
    /// Decodes the body at the request's version. Bytes after it are
    /// ignored, as Kafka does: some clients send fields a version dropped
    /// (librdkafka's Metadata v12 does).
    pub fn decode<T: Decodable>(&self) -> Result<T, KafkaFrameError> {
        let mut body = self.body.clone();
        T::decode(&mut body, self.version).map_err(|error| self.body_error(error))
    }

    fn body_error(&self, error: impl std::fmt::Display) -> KafkaFrameError {
        KafkaFrameError::Body {
            api: self.api,
            version: self.version,
            reason: error.to_string(),
        }
    }
}

/// A whole response frame: length, header (at the version that goes with
/// the request's) and `body` at `version`.
pub fn encode_response<T: Encodable>(
    api: ApiKey,
    version: i16,
    correlation_id: i32,
    body: &T,
) -> Result<BytesMut, KafkaFrameError> {
    let encode_error = |error: anyhow::Error| KafkaFrameError::Encode {
        api,
        version,
        reason: error.to_string(),
    };
    let header_version = api.response_header_version(version);
    let header = ResponseHeader::default().with_correlation_id(correlation_id);
    let header_bytes = header.compute_size(header_version).map_err(encode_error)?;
    let body_bytes = body.compute_size(version).map_err(encode_error)?;
    let length = header_bytes + body_bytes;
    let mut frame = BytesMut::with_capacity(4 + length);
    frame.put_i32(i32::try_from(length).map_err(|_| KafkaFrameError::Encode {
        api,
        version,
        reason: format!("a response of {length} bytes"),
    })?);
    header
        .encode(&mut frame, header_version)
        .map_err(encode_error)?;
    body.encode(&mut frame, version).map_err(encode_error)?;
    debug_assert_eq!(frame.len(), 4 + length);
    Ok(frame)
}

#[cfg(test)]
mod tests {
    use kafka_protocol::messages::{ApiVersionsRequest, ApiVersionsResponse, MetadataRequest};

    use bytes::Buf;

    use super::*;

    fn request_frame<T: Encodable>(
        api: ApiKey,
        version: i16,
        correlation_id: i32,
        body: &T,
    ) -> Bytes {
        let header = RequestHeader::default()
            .with_request_api_key(api as i16)
            .with_request_api_version(version)
            .with_correlation_id(correlation_id)
            .with_client_id(Some("test".to_string().into()));
        let mut frame = BytesMut::new();
        header
            .encode(&mut frame, api.request_header_version(version))
            .unwrap();
        body.encode(&mut frame, version).unwrap();
        frame.freeze()
    }

    #[test]
    fn a_request_round_trips_at_flexible_and_old_versions() {
        for version in [0, 4, 9, 12] {
            let body = MetadataRequest::default().with_topics(None);
            let request =
                parse_request(request_frame(ApiKey::Metadata, version, 7, &body)).unwrap();
            assert_eq!((request.api, request.version), (ApiKey::Metadata, version));
            assert_eq!(request.correlation_id, 7);
            assert_eq!(request.client_id.as_deref(), Some("test"));
            let decoded: MetadataRequest = request.decode().unwrap();
            if version > 0 {
                assert_eq!(decoded.topics, None);
            }
        }
    }

    #[test]
    fn unknown_apis_short_frames_and_short_bodies_are_errors() {
        let mut frame = BytesMut::new();
        frame.put_i16(999);
        frame.put_i16(0);
        frame.put_i32(1);
        frame.put_i16(-1);
        assert!(matches!(
            parse_request(frame.freeze()),
            Err(KafkaFrameError::UnknownApi(999))
        ));
        assert!(matches!(
            parse_request(Bytes::from_static(&[0, 18, 0])),
            Err(KafkaFrameError::TooShort { bytes: 3 })
        ));
        // A body cut short does not decode.
        let metadata = MetadataRequest::default().with_topics(Some(Vec::new()));
        let mut frame = BytesMut::from(&request_frame(ApiKey::Metadata, 4, 1, &metadata)[..]);
        frame.truncate(frame.len() - 2);
        let request = parse_request(frame.freeze()).unwrap();
        assert!(request.decode::<MetadataRequest>().is_err());
        // Bytes after a body are ignored, as Kafka does.
        let mut frame = BytesMut::from(
            &request_frame(ApiKey::ApiVersions, 0, 1, &ApiVersionsRequest::default())[..],
        );
        frame.put_u8(0);
        let request = parse_request(frame.freeze()).unwrap();
        assert!(request.decode::<ApiVersionsRequest>().is_ok());
    }

    #[test]
    fn api_versions_responses_have_a_v0_header_even_when_flexible() {
        let body = ApiVersionsResponse::default();
        let frame = encode_response(ApiKey::ApiVersions, 3, 42, &body).unwrap();
        let mut bytes = frame.freeze();
        let length = bytes.get_i32() as usize;
        assert_eq!(length, bytes.len());
        assert_eq!(bytes.get_i32(), 42);
        // The body follows the correlation id at once: no tagged fields.
        assert_eq!(ApiVersionsResponse::decode(&mut bytes, 3).unwrap(), body);
    }
}
