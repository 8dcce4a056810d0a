//! Request-response framing: each message is a varint length followed by that many bytes of
//! protobuf. The length is checked against the limit before anything is read, so a peer cannot
//! make a node allocate more than the limit; and memory grows with the bytes that arrive, not
//! with the length a peer announces.

use std::io;

use futures::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use goodwill_proto::v1 as wire;
use libp2p::StreamProtocol;
use prost::Message;

/// Largest request: a status, a block request, or one transaction.
pub const MAX_REQUEST_BYTES: usize = 64 * 1024;
/// Largest response: a batch of blocks.
pub const MAX_RESPONSE_BYTES: usize = 16 * 1024 * 1024;

/// Frames `Request` and `Response` protobufs.
#[derive(Debug, Clone, Copy, Default)]
pub struct ProstCodec;

fn invalid(error: impl std::fmt::Display) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, error.to_string())
}

/// Memory set aside for a message before its bytes arrive: a prefix alone buys no more.
const FIRST_READ_BYTES: usize = 64 * 1024;

/// Reads one framed message of at most `limit` bytes.
pub async fn read_message<M, T>(io: &mut T, limit: usize) -> io::Result<M>
where
    M: Message + Default,
    T: AsyncRead + Unpin + Send,
{
    let length = unsigned_varint::aio::read_usize(&mut *io).await.map_err(invalid)?;
    if length > limit {
        return Err(invalid(format!("a message of {length} bytes exceeds the limit of {limit}")));
    }
    let mut buffer = Vec::with_capacity(length.min(FIRST_READ_BYTES));
    (&mut *io).take(length as u64).read_to_end(&mut buffer).await?;
    if buffer.len() < length {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            format!("the stream ended after {} of {length} bytes", buffer.len()),
        ));
    }
    M::decode(buffer.as_slice()).map_err(invalid)
}

/// Writes one framed message, refusing to send more than `limit` bytes.
pub async fn write_message<M, T>(io: &mut T, message: &M, limit: usize) -> io::Result<()>
where
    M: Message,
    T: AsyncWrite + Unpin + Send,
{
    let bytes = message.encode_to_vec();
    if bytes.len() > limit {
        return Err(invalid(format!("refusing to send {} bytes, over the limit of {limit}", bytes.len())));
    }
    let mut prefix = unsigned_varint::encode::usize_buffer();
    io.write_all(unsigned_varint::encode::usize(bytes.len(), &mut prefix)).await?;
    io.write_all(&bytes).await?;
    io.close().await
}

impl libp2p::request_response::Codec for ProstCodec {
    type Protocol = StreamProtocol;
    type Request = wire::Request;
    type Response = wire::Response;

    async fn read_request<T>(&mut self, _: &StreamProtocol, io: &mut T) -> io::Result<wire::Request>
    where
        T: AsyncRead + Unpin + Send,
    {
        read_message(io, MAX_REQUEST_BYTES).await
    }

    async fn read_response<T>(&mut self, _: &StreamProtocol, io: &mut T) -> io::Result<wire::Response>
    where
        T: AsyncRead + Unpin + Send,
    {
        read_message(io, MAX_RESPONSE_BYTES).await
    }

    async fn write_request<T>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
        request: wire::Request,
    ) -> io::Result<()>
    where
        T: AsyncWrite + Unpin + Send,
    {
        write_message(io, &request, MAX_REQUEST_BYTES).await
    }

    async fn write_response<T>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
        response: wire::Response,
    ) -> io::Result<()>
    where
        T: AsyncWrite + Unpin + Send,
    {
        write_message(io, &response, MAX_RESPONSE_BYTES).await
    }
}

#[cfg(test)]
mod tests {
    use futures::io::Cursor;

    use super::*;

    #[test]
    fn messages_round_trip_and_oversized_lengths_are_refused_before_reading() {
        futures::executor::block_on(async {
            let request = wire::Request {
                kind: Some(wire::request::Kind::BlocksByRange(wire::BlocksByRange {
                    start_height: 7,
                    count: 3,
                })),
            };
            let mut buffer = Cursor::new(Vec::new());
            write_message(&mut buffer, &request, MAX_REQUEST_BYTES).await.unwrap();
            let mut reader = Cursor::new(buffer.into_inner());
            let read: wire::Request = read_message(&mut reader, MAX_REQUEST_BYTES).await.unwrap();
            assert_eq!(read, request);

            // A length prefix of 1 GiB with no body: refused from the prefix alone.
            let mut prefix = unsigned_varint::encode::usize_buffer();
            let huge = unsigned_varint::encode::usize(1 << 30, &mut prefix).to_vec();
            let error = read_message::<wire::Request, _>(&mut Cursor::new(huge), MAX_REQUEST_BYTES)
                .await
                .unwrap_err();
            assert!(error.to_string().contains("exceeds the limit"), "{error}");

            // A prefix announcing the largest response, then a few bytes: refused when the stream
            // ends, having held only what arrived.
            let mut announced = unsigned_varint::encode::usize(MAX_RESPONSE_BYTES, &mut prefix).to_vec();
            announced.extend_from_slice(&[0; 10]);
            let error = read_message::<wire::Response, _>(&mut Cursor::new(announced), MAX_RESPONSE_BYTES)
                .await
                .unwrap_err();
            assert_eq!(error.kind(), io::ErrorKind::UnexpectedEof, "{error}");

            // Garbage of a legal length: a clean error, not a panic.
            let mut garbage = vec![4u8];
            garbage.extend_from_slice(&[0xff; 4]);
            assert!(
                read_message::<wire::Request, _>(&mut Cursor::new(garbage), MAX_REQUEST_BYTES).await.is_err()
            );
        });
    }
}
