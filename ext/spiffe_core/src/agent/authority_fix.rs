//! Lets grpc-core clients (py-spiffe, the grpc gem, grpc-java) talk to the
//! agent over a Unix socket.
//!
//! Those clients send the %-encoded socket path as the HTTP/2 `:authority`
//! (e.g. `tmp%2Fagent.sock`), which the `http` crate rejects as a malformed
//! host, so h2 resets every stream (hyperium/h2#487, grpc/grpc#38142). The
//! SPIRE agent (grpc-go) accepts it. This adapter sits under h2 on the read
//! side: it passes whole frames through and, in a HEADERS frame, replaces
//! `%` with `_` inside the `:authority` value only. The value keeps its
//! length, so both HPACK dynamic tables stay consistent.
//!
//! It also carries the peer's credentials to the handlers (tonic request
//! extensions) and lets the agent cut the connection (a cancellation token).

use super::attestor::PeerInfo;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio_util::sync::{CancellationToken, WaitForCancellationFutureOwned};

const PREFACE_LEN: usize = 24;
const FRAME_HEADER_LEN: usize = 9;
const HEADERS: u8 = 0x1;
const END_HEADERS: u8 = 0x4;
const PADDED: u8 = 0x8;
const PRIORITY: u8 = 0x20;
/// HPACK static table index of `:authority`.
const AUTHORITY_INDEX: usize = 1;

pub struct AuthorityFix<S> {
    inner: S,
    peer: Option<PeerInfo>,
    cut: Pin<Box<WaitForCancellationFutureOwned>>,
    raw: Vec<u8>,
    ready: Vec<u8>,
    ready_pos: usize,
    preface_done: bool,
    eof: bool,
}

impl<S> AuthorityFix<S> {
    pub fn new(inner: S, peer: Option<PeerInfo>, cut: CancellationToken) -> Self {
        let cut = Box::pin(cut.cancelled_owned());
        Self {
            inner,
            peer,
            cut,
            raw: Vec::new(),
            ready: Vec::new(),
            ready_pos: 0,
            preface_done: false,
            eof: false,
        }
    }

    /// Fails every I/O once the agent cut connections (and wakes the
    /// connection's task when it does).
    fn check_cut(&mut self, cx: &mut Context<'_>) -> io::Result<()> {
        match self.cut.as_mut().poll(cx) {
            Poll::Ready(()) => Err(io::Error::new(
                io::ErrorKind::ConnectionAborted,
                "connection cut by the agent",
            )),
            Poll::Pending => Ok(()),
        }
    }

    /// Moves one complete unit (preface or frame) from `raw` to `ready`.
    fn process_one(&mut self) -> bool {
        if !self.preface_done {
            if self.raw.len() < PREFACE_LEN {
                return false;
            }
            self.ready.extend(self.raw.drain(..PREFACE_LEN));
            self.preface_done = true;
            return true;
        }
        if self.raw.len() < FRAME_HEADER_LEN {
            return false;
        }
        let len = u32::from_be_bytes([0, self.raw[0], self.raw[1], self.raw[2]]) as usize;
        if self.raw.len() < FRAME_HEADER_LEN + len {
            return false;
        }
        let mut frame: Vec<u8> = self.raw.drain(..FRAME_HEADER_LEN + len).collect();
        let (kind, flags) = (frame[3], frame[4]);
        if kind == HEADERS && flags & END_HEADERS != 0 {
            rewrite_headers(&mut frame[FRAME_HEADER_LEN..], flags);
        }
        self.ready.extend(frame);
        true
    }
}

fn rewrite_headers(payload: &mut [u8], flags: u8) {
    let mut start = 0;
    let mut end = payload.len();
    if flags & PADDED != 0 {
        let Some(&pad) = payload.first() else { return };
        start = 1;
        end = end.saturating_sub(pad as usize);
    }
    if flags & PRIORITY != 0 {
        start += 5;
    }
    if start < end {
        let _ = rewrite_block(&mut payload[start..end]);
    }
}

/// Reads an HPACK integer with an N-bit prefix at `*pos`.
fn integer(block: &[u8], pos: &mut usize, prefix_bits: u32) -> Option<usize> {
    let mask = (1u16 << prefix_bits) as usize - 1;
    let mut value = (*block.get(*pos)? as usize) & mask;
    *pos += 1;
    if value < mask {
        return Some(value);
    }
    let mut shift = 0;
    loop {
        let byte = *block.get(*pos)?;
        *pos += 1;
        value = value.checked_add(((byte & 0x7f) as usize).checked_shl(shift)?)?;
        if byte & 0x80 == 0 {
            return Some(value);
        }
        shift += 7;
        if shift > 28 {
            return None;
        }
    }
}

/// Returns (huffman, start, end) of the string literal at `*pos`.
fn string(block: &[u8], pos: &mut usize) -> Option<(bool, usize, usize)> {
    let huffman = *block.get(*pos)? & 0x80 != 0;
    let len = integer(block, pos, 7)?;
    let start = *pos;
    let end = start.checked_add(len).filter(|&e| e <= block.len())?;
    *pos = end;
    Some((huffman, start, end))
}

/// Walks a header block; rewrites a raw `:authority` value in place.
fn rewrite_block(block: &mut [u8]) -> Option<()> {
    let mut pos = 0;
    while pos < block.len() {
        let first = block[pos];
        if first & 0x80 != 0 {
            integer(block, &mut pos, 7)?; // indexed field
            continue;
        }
        if first & 0xe0 == 0x20 {
            integer(block, &mut pos, 5)?; // dynamic table size update
            continue;
        }
        let prefix = if first & 0xc0 == 0x40 { 6 } else { 4 };
        let index = integer(block, &mut pos, prefix)?;
        let is_authority = if index == 0 {
            let (huffman, s, e) = string(block, &mut pos)?;
            !huffman && &block[s..e] == b":authority"
        } else {
            index == AUTHORITY_INDEX
        };
        let (huffman, s, e) = string(block, &mut pos)?;
        if is_authority && !huffman {
            block[s..e]
                .iter_mut()
                .filter(|b| **b == b'%')
                .for_each(|b| *b = b'_');
        }
    }
    Some(())
}

impl<S: AsyncRead + Unpin> AsyncRead for AuthorityFix<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let me = &mut *self;
        if let Err(e) = me.check_cut(cx) {
            return Poll::Ready(Err(e));
        }
        loop {
            if me.ready_pos < me.ready.len() {
                let n = buf.remaining().min(me.ready.len() - me.ready_pos);
                buf.put_slice(&me.ready[me.ready_pos..me.ready_pos + n]);
                me.ready_pos += n;
                if me.ready_pos == me.ready.len() {
                    me.ready.clear();
                    me.ready_pos = 0;
                }
                return Poll::Ready(Ok(()));
            }
            if me.process_one() {
                continue;
            }
            if me.eof {
                // A truncated frame at EOF: hand it over as is; h2 reports it.
                me.ready.append(&mut me.raw);
                if me.ready.is_empty() {
                    return Poll::Ready(Ok(()));
                }
                continue;
            }
            let mut chunk = [0u8; 16 * 1024];
            let mut chunk_buf = ReadBuf::new(&mut chunk);
            match Pin::new(&mut me.inner).poll_read(cx, &mut chunk_buf) {
                Poll::Ready(Ok(())) => {
                    let filled = chunk_buf.filled();
                    if filled.is_empty() {
                        me.eof = true;
                    } else {
                        me.raw.extend_from_slice(filled);
                    }
                }
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Pending => return Poll::Pending,
            }
        }
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for AuthorityFix<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        if let Err(e) = self.check_cut(cx) {
            return Poll::Ready(Err(e));
        }
        Pin::new(&mut self.inner).poll_write(cx, data)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        if let Err(e) = self.check_cut(cx) {
            return Poll::Ready(Err(e));
        }
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

/// The peer as tonic hands it to handlers (`request.extensions()`).
#[derive(Debug, Clone, Copy)]
pub struct Peer(pub Option<PeerInfo>);

impl<S> tonic::transport::server::Connected for AuthorityFix<S> {
    type ConnectInfo = Peer;

    fn connect_info(&self) -> Self::ConnectInfo {
        Peer(self.peer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rewrites_only_the_authority_value() {
        // :authority (static 1) literal with incremental indexing, raw value;
        // then a literal whose value has a '%' but another name; a length byte of 0x25.
        let mut block = vec![0x41, 11];
        block.extend(b"tmp%2Fa.sck");
        block.extend([0x40, 3]);
        block.extend(b"x-a");
        block.push(0x25);
        block.extend(std::iter::repeat_n(b'%', 0x25));
        rewrite_block(&mut block).unwrap();
        assert_eq!(&block[2..13], b"tmp_2Fa.sck");
        assert!(block[19..].iter().all(|&b| b == b'%'));
        assert_eq!(block[18], 0x25, "length byte untouched");
    }

    #[test]
    fn leaves_huffman_and_malformed_blocks_alone() {
        let mut huffman = vec![0x41, 0x82, b'%', b'%'];
        rewrite_block(&mut huffman);
        assert_eq!(huffman, [0x41, 0x82, b'%', b'%']);
        let mut truncated = vec![0x41, 40, b'%'];
        assert!(rewrite_block(&mut truncated).is_none());
        assert_eq!(truncated, [0x41, 40, b'%']);
    }

    #[tokio::test]
    async fn passes_frames_through_across_reads() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let (mut client, server) = tokio::io::duplex(64);
        let mut input = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".to_vec();
        let block = [&[0x41u8, 5][..], b"a%2Fb"].concat();
        input.extend([0, 0, block.len() as u8, HEADERS, END_HEADERS, 0, 0, 0, 1]);
        input.extend(&block);
        input.extend([0, 0, 2, 0x0, 0, 0, 0, 0, 1, b'%', b'%']);
        let expected = {
            let mut e = input.clone();
            let at = e.len() - 11 - 4;
            e[at] = b'_';
            e
        };
        let writer = tokio::spawn(async move {
            for piece in input.chunks(7) {
                client.write_all(piece).await.unwrap();
            }
        });
        let mut fixed = AuthorityFix::new(server, None, CancellationToken::new());
        let mut out = vec![0; expected.len()];
        fixed.read_exact(&mut out).await.unwrap();
        writer.await.unwrap();
        assert_eq!(out, expected);
    }
}
