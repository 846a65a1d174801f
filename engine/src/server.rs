//! The native protocol's listener and connection loop, on every shard.
//!
//! Each connection has a reader (this loop) and a writer task. Frames are
//! read with their length checked against the cap first; each request is
//! served in its own task, at most `in_flight_per_connection_max` at a time
//! (beyond that the reader stops reading: backpressure), and its response is
//! written when it is ready, in any order.

use std::rc::Rc;

use bytes::BytesMut;
use futures_lite::{AsyncWriteExt, StreamExt};
use glommio::{
    channels::local_channel,
    net::{TcpListener, TcpStream},
    sync::Semaphore,
};
use sluice_net::native::{
    frame::{encode_error_response, split_request, FrameError, FrameReader, ReadTimeouts},
    ErrorCode,
};

use crate::{handlers, shard::Shard};

pub async fn accept_loop(shard: Rc<Shard>, listener: TcpListener) {
    loop {
        let stream = match listener.accept().await {
            Ok(stream) => stream,
            Err(error) => {
                tracing::warn!(shard = shard.id, %error, "accept failed");
                glommio::timer::sleep(std::time::Duration::from_millis(10)).await;
                continue;
            }
        };
        if shard.shutting_down.get() {
            continue;
        }
        let per_shard_max = shard
            .config
            .connections_max
            .div_ceil(shard.shard_count())
            .max(1);
        if shard.connections.get() >= per_shard_max {
            glommio::spawn_local(refuse(stream, per_shard_max)).detach();
            continue;
        }
        shard.connections.set(shard.connections.get() + 1);
        let shard = shard.clone();
        glommio::spawn_local(async move {
            let peer = stream
                .peer_addr()
                .map(|a| a.to_string())
                .unwrap_or_default();
            if let Err(error) = serve(&shard, stream).await {
                tracing::debug!(shard = shard.id, %peer, %error, "connection closed");
            }
            shard.connections.set(shard.connections.get() - 1);
        })
        .detach();
    }
}

async fn refuse(mut stream: TcpStream, max: usize) {
    let message = format!("this shard holds its most connections ({max}); try again later");
    let frame = encode_error_response(0, ErrorCode::TooManyRequests, &message);
    let _ = stream.write_all(&frame).await;
    let _ = stream.close().await;
}

async fn serve(shard: &Rc<Shard>, stream: TcpStream) -> Result<(), FrameError> {
    let _ = stream.set_nodelay(true);
    let (mut reader_half, mut writer_half) = sluice_net::split::split(stream);
    let (responses, outbox) = local_channel::new_unbounded::<BytesMut>();
    let responses = Rc::new(responses);
    let writer = glommio::spawn_local(async move {
        let mut stream = outbox.stream();
        while let Some(frame) = stream.next().await {
            if writer_half.write_all(&frame).await.is_err() {
                break;
            }
            // Everything already queued goes out before the flush.
            if writer_half.flush().await.is_err() {
                break;
            }
        }
        let _ = writer_half.close().await;
    });

    let slots = Rc::new(Semaphore::new(
        shard.config.in_flight_per_connection_max as u64,
    ));
    let mut frames = FrameReader::new(shard.config.frame_bytes_max);
    let timeouts = ReadTimeouts {
        idle: Some(shard.config.connection_idle_timeout),
        stalled: shard.config.partial_frame_timeout,
    };
    let outcome = loop {
        let frame = match frames.next(&mut reader_half, timeouts).await {
            Ok(Some(frame)) => frame,
            Ok(None) => break Ok(()),
            Err(FrameError::TooLarge { declared, max }) => {
                let message =
                    format!("frame of {declared} bytes is over the cap of {max} bytes; closing");
                let _ = responses.try_send(encode_error_response(0, ErrorCode::TooLarge, &message));
                break Err(FrameError::TooLarge { declared, max });
            }
            Err(error) => break Err(error),
        };
        let (header, body) = match split_request(frame) {
            Ok(parts) => parts,
            Err(error) => {
                let message = format!("{error}; closing");
                let _ = responses.try_send(encode_error_response(
                    0,
                    ErrorCode::InvalidRequest,
                    &message,
                ));
                break Err(error);
            }
        };
        let permit = match slots.acquire_static_permit(1).await {
            Ok(permit) => permit,
            Err(_) => break Ok(()),
        };
        let shard = shard.clone();
        let responses = responses.clone();
        shard.in_flight.set(shard.in_flight.get() + 1);
        glommio::spawn_local(async move {
            if let Some(response) = handlers::handle(&shard, header, body).await {
                let _ = responses.try_send(response);
            }
            shard.in_flight.set(shard.in_flight.get() - 1);
            drop(permit);
        })
        .detach();
    };
    // Let what is in flight answer, then close.
    let _ = slots
        .acquire(shard.config.in_flight_per_connection_max as u64)
        .await;
    drop(responses);
    writer.await;
    outcome
}
