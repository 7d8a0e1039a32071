//! The QUIC stream's framing (`docs/PROTOCOL.md` §4): every frame is a 4-byte
//! big-endian length followed by that many bytes of JSON.

use anyhow::{Context, Result, bail};
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// Largest frame the client accepts from the server (the server's default limit is
/// 1 MiB; this leaves room for a server configured higher).
pub const MAX_INCOMING_FRAME: usize = 16 * 1024 * 1024;

/// A frame's bytes on the wire: length prefix and JSON.
pub fn encode<T: Serialize>(frame: &T) -> Result<Vec<u8>> {
    let json = serde_json::to_vec(frame).context("cannot encode a frame")?;
    let len = u32::try_from(json.len()).context("a frame is too large")?;
    let mut out = Vec::with_capacity(4 + json.len());
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(&json);
    Ok(out)
}

/// Write one frame.
pub async fn write_frame<W: AsyncWrite + Unpin, T: Serialize>(w: &mut W, frame: &T) -> Result<()> {
    w.write_all(&encode(frame)?)
        .await
        .context("cannot send a frame")?;
    w.flush().await.context("cannot send a frame")?;
    Ok(())
}

/// Read one frame's JSON bytes. `None` when the stream ends cleanly between frames;
/// an error when it ends inside a frame or announces a frame over `max` bytes.
pub async fn read_frame<R: AsyncRead + Unpin>(r: &mut R, max: usize) -> Result<Option<Vec<u8>>> {
    let mut len = [0u8; 4];
    let mut got = 0;
    while got < 4 {
        let n = r
            .read(&mut len[got..])
            .await
            .context("cannot read a frame")?;
        if n == 0 {
            if got == 0 {
                return Ok(None);
            }
            bail!("the stream ended inside a frame's length");
        }
        got += n;
    }
    let len = u32::from_be_bytes(len) as usize;
    if len > max {
        bail!("the server sent a frame of {len} bytes (at most {max} accepted)");
    }
    let mut buf = vec![0u8; len];
    r.read_exact(&mut buf)
        .await
        .context("the stream ended inside a frame")?;
    Ok(Some(buf))
}

/// Read and decode one frame.
pub async fn read_json<R: AsyncRead + Unpin, T: DeserializeOwned>(
    r: &mut R,
    max: usize,
) -> Result<Option<T>> {
    match read_frame(r, max).await? {
        None => Ok(None),
        Some(bytes) => Ok(Some(
            serde_json::from_slice(&bytes).context("the server sent an unreadable frame")?,
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::relay::frame::{ClientFrame, ServerFrame};

    #[tokio::test]
    async fn round_trip() {
        let (mut a, mut b) = tokio::io::duplex(64);
        let frames = vec![
            ClientFrame::Authenticate {
                token: "od_x".into(),
                consent_version: Some(2),
            },
            ClientFrame::Ack { up_to: 7 },
            ClientFrame::Ping { nonce: None },
        ];
        let sent = frames.clone();
        let writer = tokio::spawn(async move {
            for f in &sent {
                write_frame(&mut a, f).await.unwrap();
            }
        });
        let mut got = Vec::new();
        while let Some(f) = read_json::<_, ClientFrame>(&mut b, 1024).await.unwrap() {
            got.push(serde_json::to_string(&f).unwrap());
        }
        writer.await.unwrap();
        let want: Vec<String> = frames
            .iter()
            .map(|f| serde_json::to_string(f).unwrap())
            .collect();
        assert_eq!(got, want);
    }

    #[test]
    fn encoding_is_length_then_json() {
        let bytes = encode(&ServerFrame::Pong {
            nonce: Some("n".into()),
        })
        .unwrap();
        let json = br#"{"type":"pong","nonce":"n"}"#;
        assert_eq!(&bytes[..4], &(json.len() as u32).to_be_bytes());
        assert_eq!(&bytes[4..], json);
    }

    #[tokio::test]
    async fn refuses_bad_input() {
        // Too large.
        let mut r: &[u8] = &[0, 0, 4, 1, b'{'];
        assert!(read_frame(&mut r, 1024).await.is_err());
        // Ends inside the length, inside the body.
        let mut r: &[u8] = &[0, 0];
        assert!(read_frame(&mut r, 1024).await.is_err());
        let mut r: &[u8] = &[0, 0, 0, 5, b'{', b'}'];
        assert!(read_frame(&mut r, 1024).await.is_err());
        // Clean end.
        let mut r: &[u8] = &[];
        assert!(read_frame(&mut r, 1024).await.unwrap().is_none());
        // Not JSON.
        let mut r: &[u8] = &[0, 0, 0, 2, b'h', b'i'];
        assert!(read_json::<_, ServerFrame>(&mut r, 1024).await.is_err());
    }
}
