//! quinn-peer: a QUIC peer on quinn and rustls that quicconn's
//! interoperability tests (interop/quinn, in Go) start as a server or a
//! client and talk to over loopback.
//!
//! Usage:
//!
//!   quinn-peer server --listen 127.0.0.1:0 --cert C.pem --key K.pem [trust] [script]
//!   quinn-peer client --connect 127.0.0.1:PORT --cert C.pem --key K.pem [trust] [script]
//!
//! trust:  --trust-hash HEX (SHA-256 of a peer certificate's DER) and
//!         --trust-key HEX (an ed25519 endorser key), each repeatable; the
//!         peer must match one (see cert.rs). Without either, every peer is
//!         refused.
//! script: --role drive|respond (default respond), --alpn PROTO,
//!         --closer driver|responder, --close-code N, --close-reason TEXT,
//!         --timeout SECONDS (default 20; the peer exits with failure then).
//!
//! The script is the one the Go side runs (see script.rs). Everything the
//! Go tests check is printed to stdout, one event a line: "listening ADDR",
//! "refused peer certificate: REASON", "handshake failed: ...",
//! "connected peer-sha256=HEX alpn=PROTO", "pass STEP ...",
//! "fail STEP: ...", "closed ...". The exit status is 0 when the script
//! passed, 1 when it failed, 2 for bad usage.

mod cert;
mod script;

use std::fs;
use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use quinn::{ConnectionError, Endpoint, TransportConfig, VarInt};
use ring::digest::{digest, SHA256};
use rustls::{Certificate, PrivateKey};

use script::{Close, Closer, Role};

/// What the command line asks for.
struct Args {
    server: bool,
    addr: SocketAddr,
    cert: String,
    key: String,
    policy: cert::Policy,
    role: Role,
    alpn: String,
    close: Close,
    timeout: Duration,
}

fn hex32(s: &str) -> Result<[u8; 32], String> {
    let s = s.trim();
    if s.len() != 64 {
        return Err(format!("{s:?} is not 64 hex digits"));
    }
    let mut out = [0u8; 32];
    for (i, b) in out.iter_mut().enumerate() {
        *b = u8::from_str_radix(&s[2 * i..2 * i + 2], 16)
            .map_err(|_| format!("{s:?} is not hex"))?;
    }
    Ok(out)
}

fn parse_args() -> Result<Args, String> {
    let mut it = std::env::args().skip(1);
    let server = match it.next().as_deref() {
        Some("server") => true,
        Some("client") => false,
        other => return Err(format!("first argument {other:?}: want server or client")),
    };
    let mut a = Args {
        server,
        addr: "127.0.0.1:0".parse().unwrap(),
        cert: String::new(),
        key: String::new(),
        policy: cert::Policy::default(),
        role: Role::Respond,
        alpn: "quicconn-interop/1".into(),
        close: Close {
            closer: Closer::Responder,
            code: 0x51,
            reason: "done".into(),
        },
        timeout: Duration::from_secs(20),
    };
    let mut addr = None;
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or(format!("{flag} needs a value"));
        match flag.as_str() {
            "--listen" if server => addr = Some(value()?),
            "--connect" if !server => addr = Some(value()?),
            "--cert" => a.cert = value()?,
            "--key" => a.key = value()?,
            "--trust-hash" => a.policy.hashes.push(hex32(&value()?)?),
            "--trust-key" => a.policy.keys.push(hex32(&value()?)?),
            "--alpn" => a.alpn = value()?,
            "--role" => {
                a.role = match value()?.as_str() {
                    "drive" => Role::Drive,
                    "respond" => Role::Respond,
                    r => return Err(format!("--role {r:?}: want drive or respond")),
                }
            }
            "--closer" => {
                a.close.closer = match value()?.as_str() {
                    "driver" => Closer::Driver,
                    "responder" => Closer::Responder,
                    c => return Err(format!("--closer {c:?}: want driver or responder")),
                }
            }
            "--close-code" => {
                let v = value()?;
                a.close.code = match v.strip_prefix("0x") {
                    Some(h) => u64::from_str_radix(h, 16),
                    None => v.parse(),
                }
                .map_err(|e| format!("--close-code {v:?}: {e}"))?;
            }
            "--close-reason" => a.close.reason = value()?,
            "--timeout" => {
                let v = value()?;
                a.timeout =
                    Duration::from_secs(v.parse().map_err(|e| format!("--timeout {v:?}: {e}"))?);
            }
            _ => return Err(format!("unknown flag {flag:?}")),
        }
    }
    let addr = addr.ok_or(if server {
        "--listen is required"
    } else {
        "--connect is required"
    })?;
    a.addr = addr.parse().map_err(|e| format!("address {addr:?}: {e}"))?;
    if a.cert.is_empty() || a.key.is_empty() {
        return Err("--cert and --key are required".into());
    }
    Ok(a)
}

/// Loads a PEM certificate chain and the first private key of a PEM file
/// (PKCS#8, SEC1 or PKCS#1).
fn load_identity(cert: &str, key: &str) -> Result<(Vec<Certificate>, PrivateKey), String> {
    let pem = fs::read(cert).map_err(|e| format!("reading {cert}: {e}"))?;
    let chain: Vec<Certificate> = rustls_pemfile::certs(&mut &pem[..])
        .map_err(|e| format!("parsing {cert}: {e}"))?
        .into_iter()
        .map(Certificate)
        .collect();
    if chain.is_empty() {
        return Err(format!("{cert}: no certificate"));
    }
    let pem = fs::read(key).map_err(|e| format!("reading {key}: {e}"))?;
    for item in
        rustls_pemfile::read_all(&mut &pem[..]).map_err(|e| format!("parsing {key}: {e}"))?
    {
        match item {
            rustls_pemfile::Item::PKCS8Key(k)
            | rustls_pemfile::Item::ECKey(k)
            | rustls_pemfile::Item::RSAKey(k) => return Ok((chain, PrivateKey(k))),
            _ => {}
        }
    }
    Err(format!("{key}: no private key"))
}

fn transport() -> Arc<TransportConfig> {
    let mut t = TransportConfig::default();
    t.max_idle_timeout(Some(VarInt::from_u32(10_000).into()));
    // The peer only ever talks over loopback. The default initial RTT of
    // 333 ms would make a connection refused before any RTT sample drain
    // for three probe timeouts, about 3 s, before the process can exit.
    t.initial_rtt(Duration::from_millis(10));
    Arc::new(t)
}

/// Describes how a connection ended, codes in hex, for the Go side to read.
pub fn describe(e: &ConnectionError) -> String {
    match e {
        ConnectionError::ApplicationClosed(a) => format!(
            "application close code=0x{:x} reason={:?}",
            a.error_code.into_inner(),
            String::from_utf8_lossy(&a.reason)
        ),
        ConnectionError::ConnectionClosed(c) => format!(
            "transport close code=0x{:x} reason={:?}",
            u64::from(c.error_code),
            String::from_utf8_lossy(&c.reason)
        ),
        ConnectionError::TransportError(t) => {
            format!(
                "local transport error code=0x{:x} reason={:?}",
                u64::from(t.code),
                t.reason
            )
        }
        other => other.to_string(),
    }
}

async fn run(a: Args) -> Result<(), String> {
    let (chain, key) = load_identity(&a.cert, &a.key)?;
    let policy = Arc::new(a.policy);
    let versions = &[&rustls::version::TLS13];
    let (endpoint, connecting) = if a.server {
        let mut tls = rustls::ServerConfig::builder()
            .with_safe_default_cipher_suites()
            .with_safe_default_kx_groups()
            .with_protocol_versions(versions)
            .map_err(|e| e.to_string())?
            .with_client_cert_verifier(policy)
            .with_single_cert(chain, key)
            .map_err(|e| format!("server certificate: {e}"))?;
        tls.alpn_protocols = vec![a.alpn.clone().into_bytes()];
        let mut cfg = quinn::ServerConfig::with_crypto(Arc::new(tls));
        cfg.transport_config(transport());
        let endpoint =
            Endpoint::server(cfg, a.addr).map_err(|e| format!("listening on {}: {e}", a.addr))?;
        let local = endpoint.local_addr().map_err(|e| e.to_string())?;
        println!("listening {local}");
        let connecting = endpoint
            .accept()
            .await
            .ok_or("endpoint closed before a connection came")?;
        (endpoint, connecting)
    } else {
        let mut tls = rustls::ClientConfig::builder()
            .with_safe_default_cipher_suites()
            .with_safe_default_kx_groups()
            .with_protocol_versions(versions)
            .map_err(|e| e.to_string())?
            .with_custom_certificate_verifier(policy)
            .with_single_cert(chain, key)
            .map_err(|e| format!("client certificate: {e}"))?;
        tls.alpn_protocols = vec![a.alpn.clone().into_bytes()];
        let mut cfg = quinn::ClientConfig::new(Arc::new(tls));
        cfg.transport_config(transport());
        let endpoint =
            Endpoint::client("127.0.0.1:0".parse().unwrap()).map_err(|e| e.to_string())?;
        // rustls 0.20 takes DNS names only; the policy ignores the name.
        let connecting = endpoint
            .connect_with(cfg, a.addr, "localhost")
            .map_err(|e| e.to_string())?;
        (endpoint, connecting)
    };
    let conn = match connecting.await {
        Ok(c) => c,
        Err(e) => {
            let msg = format!("handshake failed: {}", describe(&e));
            println!("{msg}");
            // Let the CONNECTION_CLOSE reach the peer.
            endpoint.wait_idle().await;
            return Err(msg);
        }
    };
    let peer = conn
        .peer_identity()
        .and_then(|id| id.downcast::<Vec<Certificate>>().ok())
        .and_then(|chain| chain.first().map(|c| digest(&SHA256, &c.0)))
        .ok_or("connected without a peer certificate")?;
    let hex: String = peer.as_ref().iter().map(|b| format!("{b:02x}")).collect();
    let alpn = conn
        .handshake_data()
        .and_then(|h| h.downcast::<quinn::crypto::rustls::HandshakeData>().ok())
        .and_then(|h| h.protocol)
        .map(|p| String::from_utf8_lossy(&p).into_owned())
        .unwrap_or_default();
    println!("connected peer-sha256={hex} alpn={alpn}");
    let result = match a.role {
        Role::Drive => script::drive(&conn, &a.close).await,
        Role::Respond => script::respond(&conn).await,
    };
    // Deliver our CONNECTION_CLOSE (or wait for the peer's) before exiting.
    endpoint.wait_idle().await;
    result
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("quinn-peer: {e}");
            return ExitCode::from(2);
        }
    };
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("quinn-peer: tokio runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let timeout = args.timeout;
    let outcome = rt.block_on(async move {
        match tokio::time::timeout(timeout, run(args)).await {
            Ok(r) => r,
            Err(_) => Err(format!("timed out after {timeout:?}")),
        }
    });
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            println!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
