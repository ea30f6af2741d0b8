//! The exchange both sides of the interoperability tests run, one side
//! driving and the other responding; the Go side (interop/quinn) runs the
//! same script with quicconn, in either role.
//!
//! The driver, in order:
//!
//!  1. echo: opens a bidirectional stream, sends 'E' and 1 MiB, FIN, and
//!     must read the 1 MiB back; then 8 such streams of 64 KiB at once.
//!  2. messages: opens a unidirectional stream and sends 100 messages in
//!     quicconn's framing (4-byte big-endian length, then the bytes; the
//!     first is empty), FIN; the responder reads them and sends them back on
//!     a unidirectional stream of its own, which the driver must read whole.
//!  3. datagrams: sends 10 datagrams ('D', index, filler); the responder
//!     echoes each; the driver resends the ones not echoed, at most 5 rounds.
//!  4. close: with closer "responder" it opens a bidirectional stream with
//!     'C', an 8-byte big-endian code and a reason phrase, FIN, and the
//!     responder closes the connection with that code and reason, which the
//!     driver must see; with closer "driver" it closes the connection itself.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use quinn::{Connection, ConnectionError, RecvStream, SendStream, VarInt};

use crate::describe;

pub enum Role {
    Drive,
    Respond,
}

pub enum Closer {
    Driver,
    Responder,
}

/// How the driver ends the connection.
pub struct Close {
    pub closer: Closer,
    pub code: u64,
    pub reason: String,
}

const ECHO: u8 = b'E';
const CLOSE: u8 = b'C';
const BIG: usize = 1 << 20;
const PARALLEL: usize = 8;
const SMALL: usize = 64 << 10;
const MESSAGES: usize = 100;
const DATAGRAMS: usize = 10;
/// quicconn's default bound on a message.
const MAX_MESSAGE: usize = 16 << 20;

/// Deterministic filler, different for each seed.
fn pattern(len: usize, seed: usize) -> Vec<u8> {
    (0..len)
        .map(|i| (i.wrapping_mul(31) ^ seed.wrapping_mul(131) ^ (i >> 8)) as u8)
        .collect()
}

/// The driver's messages: 100, of 0 to 20010 bytes, the first empty.
fn messages() -> Vec<Vec<u8>> {
    (0..MESSAGES).map(|i| pattern(i * 997 % 20011, i)).collect()
}

/// Reads until buf is full or the stream ends, and returns how much it read.
async fn read_full(recv: &mut RecvStream, buf: &mut [u8]) -> Result<usize, String> {
    let mut n = 0;
    while n < buf.len() {
        match recv.read(&mut buf[n..]).await {
            Ok(Some(k)) => n += k,
            Ok(None) => break,
            Err(e) => return Err(format!("reading stream {}: {e}", recv.id())),
        }
    }
    Ok(n)
}

/// Reads length-prefixed messages until the stream ends between two.
async fn read_messages(recv: &mut RecvStream) -> Result<Vec<Vec<u8>>, String> {
    let mut out = Vec::new();
    loop {
        let mut prefix = [0u8; 4];
        match read_full(recv, &mut prefix).await? {
            0 => return Ok(out),
            4 => {}
            n => {
                return Err(format!(
                    "stream ended inside a length prefix ({n} of 4 bytes)"
                ))
            }
        }
        let len = u32::from_be_bytes(prefix) as usize;
        if len > MAX_MESSAGE {
            return Err(format!("message of {len} bytes exceeds {MAX_MESSAGE}"));
        }
        let mut body = vec![0u8; len];
        let n = read_full(recv, &mut body).await?;
        if n < len {
            return Err(format!(
                "stream ended inside a message ({n} of {len} bytes)"
            ));
        }
        out.push(body);
    }
}

async fn write_messages(send: &mut SendStream, msgs: &[Vec<u8>]) -> Result<(), String> {
    for m in msgs {
        send.write_all(&(m.len() as u32).to_be_bytes())
            .await
            .map_err(|e| e.to_string())?;
        send.write_all(m).await.map_err(|e| e.to_string())?;
    }
    send.finish().await.map_err(|e| e.to_string())
}

/// Sends ECHO and payload on a new stream and checks that payload comes back.
async fn echo(conn: Connection, payload: Vec<u8>) -> Result<(), String> {
    let (mut send, recv) = conn
        .open_bi()
        .await
        .map_err(|e| format!("opening a stream: {e}"))?;
    let writer = async {
        send.write_all(&[ECHO]).await?;
        send.write_all(&payload).await?;
        send.finish().await
    };
    let (w, r) = tokio::join!(writer, recv.read_to_end(payload.len() + 1));
    w.map_err(|e| format!("writing the echo stream: {e}"))?;
    let got = r.map_err(|e| format!("reading the echo: {e}"))?;
    if got != payload {
        return Err(format!(
            "echo of {} bytes came back as {} different bytes",
            payload.len(),
            got.len()
        ));
    }
    Ok(())
}

async fn datagrams(conn: &Connection) -> Result<usize, String> {
    let max = conn
        .max_datagram_size()
        .ok_or("the peer does not accept datagrams")?;
    let span = max.min(1200) - 2;
    let sent: Vec<Vec<u8>> = (0..DATAGRAMS)
        .map(|i| {
            let mut d = pattern(2 + i * 97 % span, i);
            d[0] = b'D';
            d[1] = i as u8;
            d
        })
        .collect();
    let mut echoed = [false; DATAGRAMS];
    for round in 1..=5 {
        for (i, d) in sent.iter().enumerate().filter(|(i, _)| !echoed[*i]) {
            conn.send_datagram(Bytes::from(d.clone()))
                .map_err(|e| format!("sending datagram {i}: {e}"))?;
        }
        let deadline = tokio::time::Instant::now() + Duration::from_millis(500);
        while echoed.iter().any(|e| !e) {
            let d = match tokio::time::timeout_at(deadline, conn.read_datagram()).await {
                Err(_) => break, // resend what is missing
                Ok(r) => r.map_err(|e| format!("receiving a datagram: {e}"))?,
            };
            let i = d.get(1).copied().unwrap_or(u8::MAX) as usize;
            if i >= DATAGRAMS || d[..] != sent[i][..] {
                return Err(format!(
                    "echoed datagram of {} bytes matches none sent",
                    d.len()
                ));
            }
            echoed[i] = true;
        }
        if echoed.iter().all(|e| *e) {
            return Ok(round);
        }
    }
    Err("datagrams not echoed after 5 rounds".into())
}

/// Runs the driver's side of the script.
pub async fn drive(conn: &Connection, close: &Close) -> Result<(), String> {
    let step = |name: &str, r: Result<String, String>| match r {
        Ok(detail) => {
            println!("pass {name} {detail}");
            Ok(())
        }
        Err(e) => {
            // Say how the connection ended, when that is why the step failed.
            let e = match conn.close_reason() {
                Some(end) => format!("{e} ({})", describe(&end)),
                None => e,
            };
            println!("fail {name}: {e}");
            Err(format!("{name}: {e}"))
        }
    };

    step(
        "echo",
        echo(conn.clone(), pattern(BIG, 1))
            .await
            .map(|_| format!("{BIG} bytes")),
    )?;
    let mut tasks = Vec::new();
    for i in 0..PARALLEL {
        tasks.push(tokio::spawn(echo(conn.clone(), pattern(SMALL, 100 + i))));
    }
    let mut parallel = Ok(format!("{PARALLEL} streams of {SMALL} bytes"));
    for t in tasks {
        if let Err(e) = t.await.map_err(|e| e.to_string()).and_then(|r| r) {
            parallel = Err(e);
        }
    }
    step("parallel-echo", parallel)?;

    let msgs = messages();
    let r = async {
        let mut send = conn
            .open_uni()
            .await
            .map_err(|e| format!("opening a stream: {e}"))?;
        write_messages(&mut send, &msgs).await?;
        let mut recv = conn
            .accept_uni()
            .await
            .map_err(|e| format!("accepting the reply stream: {e}"))?;
        let got = read_messages(&mut recv).await?;
        if got != msgs {
            return Err(format!(
                "{} messages came back, not the {} sent",
                got.len(),
                msgs.len()
            ));
        }
        Ok(format!("{MESSAGES} each way"))
    };
    step("messages", r.await)?;

    step(
        "datagrams",
        datagrams(conn)
            .await
            .map(|rounds| format!("{DATAGRAMS} echoed in {rounds} round(s)")),
    )?;

    let code =
        VarInt::from_u64(close.code).map_err(|_| format!("close code {} too large", close.code))?;
    match close.closer {
        Closer::Driver => {
            conn.close(code, close.reason.as_bytes());
            println!(
                "closed locally code=0x{:x} reason={:?}",
                close.code, close.reason
            );
            Ok(())
        }
        Closer::Responder => {
            let r = async {
                let (mut send, _recv) = conn
                    .open_bi()
                    .await
                    .map_err(|e| format!("opening a stream: {e}"))?;
                let mut cmd = vec![CLOSE];
                cmd.extend_from_slice(&close.code.to_be_bytes());
                cmd.extend_from_slice(close.reason.as_bytes());
                send.write_all(&cmd).await.map_err(|e| e.to_string())?;
                // The responder closes the connection once it has the
                // command; finish may see that close instead of the ACK.
                let _ = send.finish().await;
                match conn.closed().await {
                    ConnectionError::ApplicationClosed(a)
                        if a.error_code == code && a.reason[..] == *close.reason.as_bytes() =>
                    {
                        Ok(describe(&ConnectionError::ApplicationClosed(a)))
                    }
                    other => Err(format!(
                        "want application close code=0x{:x} reason={:?}, got {}",
                        close.code,
                        close.reason,
                        describe(&other)
                    )),
                }
            };
            step("close", r.await)
        }
    }
}

/// Handles one bidirectional stream of the driver's.
async fn respond_bi(
    conn: Connection,
    mut send: SendStream,
    mut recv: RecvStream,
) -> Result<(), String> {
    let mut cmd = [0u8; 1];
    if read_full(&mut recv, &mut cmd).await? == 0 {
        return Err("stream ended before its command".into());
    }
    match cmd[0] {
        ECHO => {
            let mut buf = vec![0u8; 64 << 10];
            loop {
                match recv.read(&mut buf).await {
                    Ok(Some(n)) => send.write_all(&buf[..n]).await.map_err(|e| e.to_string())?,
                    Ok(None) => break,
                    Err(e) => return Err(format!("reading the echo stream: {e}")),
                }
            }
            send.finish().await.map_err(|e| e.to_string())
        }
        CLOSE => {
            let rest = recv
                .read_to_end(8 + 1024)
                .await
                .map_err(|e| format!("reading the close command: {e}"))?;
            if rest.len() < 8 {
                return Err(format!("close command of {} bytes", rest.len()));
            }
            let code = u64::from_be_bytes(rest[..8].try_into().unwrap());
            let reason = &rest[8..];
            let v = VarInt::from_u64(code).map_err(|_| format!("close code {code} too large"))?;
            println!(
                "closing code=0x{code:x} reason={:?}",
                String::from_utf8_lossy(reason)
            );
            conn.close(v, reason);
            Ok(())
        }
        c => Err(format!("unknown command 0x{c:02x}")),
    }
}

/// Reads the driver's messages on one unidirectional stream and sends them
/// back on one of ours.
async fn respond_uni(conn: Connection, mut recv: RecvStream) -> Result<(), String> {
    let msgs = read_messages(&mut recv).await?;
    let mut send = conn
        .open_uni()
        .await
        .map_err(|e| format!("opening the reply stream: {e}"))?;
    write_messages(&mut send, &msgs).await
}

/// Runs the responder's side of the script until the connection ends; it
/// succeeds when nothing failed and the connection was closed by the peer
/// or, on the peer's command, by us.
pub async fn respond(conn: &Connection) -> Result<(), String> {
    let failed = Arc::new(AtomicBool::new(false));
    let report =
        |conn: Connection, failed: Arc<AtomicBool>, what: &'static str, r: Result<(), String>| {
            // Errors caused by the connection's end are not the script's.
            if let Err(e) = r {
                if conn.close_reason().is_none() {
                    println!("fail {what}: {e}");
                    failed.store(true, Ordering::SeqCst);
                }
            }
        };
    let end = loop {
        tokio::select! {
            r = conn.accept_bi() => match r {
                Ok((send, recv)) => {
                    let (c, f) = (conn.clone(), failed.clone());
                    tokio::spawn(async move { report(c.clone(), f, "stream", respond_bi(c, send, recv).await) });
                }
                Err(e) => break e,
            },
            r = conn.accept_uni() => match r {
                Ok(recv) => {
                    let (c, f) = (conn.clone(), failed.clone());
                    tokio::spawn(async move { report(c.clone(), f, "messages", respond_uni(c, recv).await) });
                }
                Err(e) => break e,
            },
            r = conn.read_datagram() => match r {
                Ok(d) => {
                    let r = conn.send_datagram(d).map_err(|e| format!("echoing a datagram: {e}"));
                    report(conn.clone(), failed.clone(), "datagram", r);
                }
                Err(e) => break e,
            },
        }
    };
    let result = match &end {
        ConnectionError::ApplicationClosed(_) => {
            println!("closed by peer: {}", describe(&end));
            Ok(())
        }
        ConnectionError::LocallyClosed => {
            println!("closed locally");
            Ok(())
        }
        other => Err(format!("connection lost: {}", describe(other))),
    };
    if failed.load(Ordering::SeqCst) {
        return Err("the responder failed a step".into());
    }
    result
}
