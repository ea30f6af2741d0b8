//! The peer's trust policy: the rules of quicconn's certverify package,
//! re-implemented on rustls so that a quinn node pins and endorses quicconn
//! nodes (and is pinned and endorsed by them) the same way.
//!
//! A peer's leaf must parse, be within its validity dates, and carry a valid
//! self-signature. Its endorsement extension (OID 1.2.3.4.5.6), if present,
//! must be well formed and every endorsement in it must verify. Then it is
//! accepted when its SHA-256 is a trusted hash or one of its endorsing keys
//! is a trusted key. With no trusted hash and no trusted key every peer is
//! refused: a verifier that trusts nothing pinned must not trust everyone.

use std::time::{SystemTime, UNIX_EPOCH};

use ring::digest::{digest, SHA256};
use ring::signature::{UnparsedPublicKey, ED25519};
use rustls::client::{ServerCertVerified, ServerCertVerifier};
use rustls::server::{ClientCertVerified, ClientCertVerifier};
use rustls::{Certificate, DistinguishedNames, Error, ServerName};

/// The DER encoding of the endorsement extension's OID, 1.2.3.4.5.6.
const ENDORSEMENT_OID: &[u8] = &[0x2a, 0x03, 0x04, 0x05, 0x06];

/// The length of one endorsement: an ed25519 key and its signature.
const ENDORSEMENT_LEN: usize = 32 + 64;

// The reasons a certificate is refused, worded as certverify words them.
pub const MALFORMED: &str = "malformed certificate";
pub const SIGNATURE: &str = "signature invalid";
pub const EXPIRED: &str = "certificate expired";
pub const NOT_YET_VALID: &str = "certificate not yet valid";
pub const EXT_MALFORMED: &str = "endorsement extension malformed";
pub const ENDORSEMENT_INVALID: &str = "endorsement signature invalid";
pub const HASH_NOT_TRUSTED: &str = "certificate hash not trusted";
pub const NO_ENDORSEMENT: &str = "no trusted endorsement";
pub const NEITHER: &str = "certificate hash not trusted and no trusted endorsement";
pub const NOTHING_PINNED: &str = "nothing pinned: no trusted hash and no trusted key";

/// One DER element: its tag, its contents, and the whole encoding.
struct Tlv<'a> {
    tag: u8,
    body: &'a [u8],
    raw: &'a [u8],
}

/// Reads one DER element from the front of `input` and returns it with what
/// follows it. Lengths must be definite and minimal; tags must fit in one
/// byte (no X.509 field this parser reads needs more).
fn read_tlv(input: &[u8]) -> Result<(Tlv<'_>, &[u8]), &'static str> {
    let (&tag, rest) = input.split_first().ok_or("truncated element")?;
    if tag & 0x1f == 0x1f {
        return Err("multi-byte tag");
    }
    let (&first, mut rest) = rest.split_first().ok_or("truncated length")?;
    let len = if first < 0x80 {
        first as usize
    } else {
        let n = (first & 0x7f) as usize;
        if n == 0 || n > 4 || rest.len() < n {
            return Err("bad length");
        }
        let mut len = 0usize;
        for &b in &rest[..n] {
            len = len << 8 | b as usize;
        }
        if rest[0] == 0 || len < 0x80 || (n > 1 && len < 1 << (8 * (n - 1))) {
            return Err("non-minimal length");
        }
        rest = &rest[n..];
        len
    };
    if rest.len() < len {
        return Err("element longer than its container");
    }
    let header = input.len() - rest.len();
    let (body, after) = rest.split_at(len);
    Ok((
        Tlv {
            tag,
            body,
            raw: &input[..header + len],
        },
        after,
    ))
}

/// Reads an element that must have tag `tag`.
fn expect<'a>(
    input: &'a [u8],
    tag: u8,
    what: &'static str,
) -> Result<(Tlv<'a>, &'a [u8]), &'static str> {
    let (t, rest) = read_tlv(input)?;
    if t.tag != tag {
        return Err(what);
    }
    Ok((t, rest))
}

/// The parts of a certificate the policy needs.
pub struct Parsed<'a> {
    tbs: &'a [u8],
    sig_alg: &'a [u8],
    signature: &'a [u8],
    not_before: i64,
    not_after: i64,
    /// The SubjectPublicKeyInfo DER, which endorsements sign.
    pub spki: &'a [u8],
    /// The endorsement extension's value, if the certificate has one.
    pub endorsements: Option<&'a [u8]>,
}

/// Parses an X.509 certificate as far as the policy needs.
pub fn parse(der: &[u8]) -> Result<Parsed<'_>, &'static str> {
    let (cert, rest) = expect(der, 0x30, "certificate is not a SEQUENCE")?;
    if !rest.is_empty() {
        return Err("bytes after the certificate");
    }
    let (tbs, rest) = expect(cert.body, 0x30, "tbsCertificate is not a SEQUENCE")?;
    let (sig_alg, rest) = expect(rest, 0x30, "signatureAlgorithm is not a SEQUENCE")?;
    let (sig, rest) = expect(rest, 0x03, "signature is not a BIT STRING")?;
    if !rest.is_empty() {
        return Err("bytes after the signature");
    }
    let signature = match sig.body.split_first() {
        Some((0, bits)) => bits,
        _ => return Err("signature has unused bits"),
    };

    let mut f = tbs.body;
    let (first, after) = read_tlv(f)?;
    if first.tag == 0xa0 {
        f = after; // version
    }
    let (_serial, f) = expect(f, 0x02, "serialNumber is not an INTEGER")?;
    let (_alg, f) = expect(f, 0x30, "signature is not a SEQUENCE")?;
    let (_issuer, f) = expect(f, 0x30, "issuer is not a SEQUENCE")?;
    let (validity, f) = expect(f, 0x30, "validity is not a SEQUENCE")?;
    let (_subject, f) = expect(f, 0x30, "subject is not a SEQUENCE")?;
    let (spki, mut f) = expect(f, 0x30, "subjectPublicKeyInfo is not a SEQUENCE")?;

    let (nb, v) = read_tlv(validity.body)?;
    let (na, v) = read_tlv(v)?;
    if !v.is_empty() {
        return Err("bytes after notAfter");
    }
    let not_before = parse_time(&nb)?;
    let not_after = parse_time(&na)?;

    let mut endorsements = None;
    while !f.is_empty() {
        let (t, rest) = read_tlv(f)?;
        f = rest;
        if t.tag != 0xa3 {
            continue; // issuerUniqueID, subjectUniqueID
        }
        let (exts, rest) = expect(t.body, 0x30, "extensions is not a SEQUENCE")?;
        if !rest.is_empty() {
            return Err("bytes after the extensions");
        }
        let mut e = exts.body;
        while !e.is_empty() {
            let (ext, rest) = expect(e, 0x30, "extension is not a SEQUENCE")?;
            e = rest;
            let (oid, mut x) = expect(ext.body, 0x06, "extnID is not an OID")?;
            let (t, rest) = read_tlv(x)?;
            if t.tag == 0x01 {
                x = rest; // critical
            }
            let (value, rest) = expect(x, 0x04, "extnValue is not an OCTET STRING")?;
            if !rest.is_empty() {
                return Err("bytes after extnValue");
            }
            if oid.body == ENDORSEMENT_OID {
                if endorsements.is_some() {
                    return Err("two endorsement extensions");
                }
                endorsements = Some(value.body);
            }
        }
    }
    Ok(Parsed {
        tbs: tbs.raw,
        sig_alg: sig_alg.body,
        signature,
        not_before,
        not_after,
        spki: spki.raw,
        endorsements,
    })
}

/// Converts a UTCTime or GeneralizedTime ("...Z", seconds precision, as RFC
/// 5280 requires) to seconds since the Unix epoch.
fn parse_time(t: &Tlv<'_>) -> Result<i64, &'static str> {
    let s = std::str::from_utf8(t.body).map_err(|_| "time is not ASCII")?;
    let (year, rest) = match (t.tag, s.len()) {
        (0x17, 13) => {
            let yy: i64 = s[..2].parse().map_err(|_| "bad UTCTime")?;
            (if yy < 50 { 2000 + yy } else { 1900 + yy }, &s[2..])
        }
        (0x18, 15) => (s[..4].parse().map_err(|_| "bad GeneralizedTime")?, &s[4..]),
        _ => return Err("validity time is neither UTCTime nor GeneralizedTime"),
    };
    if !rest.ends_with('Z') || !rest[..10].bytes().all(|b| b.is_ascii_digit()) {
        return Err("validity time is not in UTC");
    }
    let n = |i: usize| -> i64 { rest[i..i + 2].parse().unwrap_or(-1) };
    let (month, day, hour, min, sec) = (n(0), n(2), n(4), n(6), n(8));
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) || hour > 23 || min > 59 || sec > 59 {
        return Err("validity time out of range");
    }
    Ok(days_from_civil(year, month, day) * 86400 + hour * 3600 + min * 60 + sec)
}

/// Days from 1970-01-01 to a proleptic Gregorian date (Howard Hinnant's
/// algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146097 + doe - 719468
}

/// One endorsement: an ed25519 public key and its signature.
type Endorsement<'a> = (&'a [u8], &'a [u8]);

/// Splits the endorsement extension's value into (key, signature) pairs,
/// strictly: a SEQUENCE with a minimal length covering exactly the value,
/// and nothing in it but OCTET STRINGs of exactly 96 bytes.
pub fn endorsements(value: &[u8]) -> Result<Vec<Endorsement<'_>>, &'static str> {
    let (seq, rest) = expect(value, 0x30, "not a SEQUENCE")?;
    if !rest.is_empty() {
        return Err("bytes after the SEQUENCE");
    }
    let mut out = Vec::new();
    let mut e = seq.body;
    while !e.is_empty() {
        let (entry, rest) = expect(e, 0x04, "entry is not an OCTET STRING")?;
        if entry.body.len() != ENDORSEMENT_LEN || entry.raw.len() != 2 + ENDORSEMENT_LEN {
            return Err("entry is not 96 bytes");
        }
        out.push(entry.body.split_at(32));
        e = rest;
    }
    Ok(out)
}

/// Verifies the certificate's signature with its own key: the peers of
/// these tests are self-signed.
fn verify_self_signature(der: &[u8], p: &Parsed<'_>) -> Result<(), &'static str> {
    // The algorithm OIDs (DER contents) of the signatures webpki checks.
    const ECDSA_SHA256: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x02];
    const ECDSA_SHA384: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x03];
    const OID_ED25519: &[u8] = &[0x2b, 0x65, 0x70];
    const RSA_SHA256: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0b];
    let (oid, _) = expect(p.sig_alg, 0x06, "signature algorithm is not an OID")?;
    let algs: Vec<&webpki::SignatureAlgorithm> = match oid.body {
        ECDSA_SHA256 => vec![&webpki::ECDSA_P256_SHA256, &webpki::ECDSA_P384_SHA256],
        ECDSA_SHA384 => vec![&webpki::ECDSA_P384_SHA384, &webpki::ECDSA_P256_SHA384],
        OID_ED25519 => vec![&webpki::ED25519],
        RSA_SHA256 => vec![&webpki::RSA_PKCS1_2048_8192_SHA256],
        _ => return Err("unsupported signature algorithm"),
    };
    let ee = webpki::EndEntityCert::try_from(der).map_err(|_| "webpki cannot parse it")?;
    if algs
        .iter()
        .any(|alg| ee.verify_signature(alg, p.tbs, p.signature).is_ok())
    {
        Ok(())
    } else {
        Err("self-signature does not verify")
    }
}

/// The trust policy: pinned certificate hashes and trusted endorser keys.
#[derive(Default)]
pub struct Policy {
    pub hashes: Vec<[u8; 32]>,
    pub keys: Vec<[u8; 32]>,
}

impl Policy {
    /// Applies the policy to a leaf certificate; on refusal it returns the
    /// reason, worded as certverify words it.
    pub fn check(&self, der: &[u8], now: SystemTime) -> Result<(), String> {
        if self.hashes.is_empty() && self.keys.is_empty() {
            return Err(NOTHING_PINNED.into());
        }
        let p = parse(der).map_err(|e| format!("{MALFORMED}: {e}"))?;
        let now = match now.duration_since(UNIX_EPOCH) {
            Ok(d) => d.as_secs() as i64,
            Err(_) => 0,
        };
        if now < p.not_before {
            return Err(NOT_YET_VALID.into());
        }
        if now > p.not_after {
            return Err(EXPIRED.into());
        }
        verify_self_signature(der, &p).map_err(|e| format!("{SIGNATURE}: {e}"))?;
        let mut endorsers = Vec::new();
        if let Some(value) = p.endorsements {
            for (key, sig) in endorsements(value).map_err(|e| format!("{EXT_MALFORMED}: {e}"))? {
                UnparsedPublicKey::new(&ED25519, key)
                    .verify(p.spki, sig)
                    .map_err(|_| ENDORSEMENT_INVALID.to_string())?;
                endorsers.push(key);
            }
        }
        let hash = digest(&SHA256, der);
        if self.hashes.iter().any(|h| h[..] == *hash.as_ref()) {
            return Ok(());
        }
        if endorsers
            .iter()
            .any(|k| self.keys.iter().any(|t| t[..] == **k))
        {
            return Ok(());
        }
        Err(match (self.hashes.is_empty(), self.keys.is_empty()) {
            (false, true) => HASH_NOT_TRUSTED,
            (true, false) => NO_ENDORSEMENT,
            _ => NEITHER,
        }
        .into())
    }

    fn verify(
        &self,
        end_entity: &Certificate,
        intermediates: &[Certificate],
        now: SystemTime,
    ) -> Result<(), Error> {
        if !intermediates.is_empty() {
            return self.refuse("intermediates are not accepted: peers are self-signed".into());
        }
        self.check(&end_entity.0, now)
            .or_else(|reason| self.refuse(reason))
    }

    fn refuse(&self, reason: String) -> Result<(), Error> {
        // The Go tests read which rule refused the peer from this line.
        println!("refused peer certificate: {reason}");
        Err(Error::InvalidCertificateData(reason))
    }
}

impl ServerCertVerifier for Policy {
    fn verify_server_cert(
        &self,
        end_entity: &Certificate,
        intermediates: &[Certificate],
        _server_name: &ServerName,
        _scts: &mut dyn Iterator<Item = &[u8]>,
        _ocsp_response: &[u8],
        now: SystemTime,
    ) -> Result<ServerCertVerified, Error> {
        // Pinning replaces the name check: a pinned hash or endorsement
        // names the peer.
        self.verify(end_entity, intermediates, now)
            .map(|_| ServerCertVerified::assertion())
    }
}

impl ClientCertVerifier for Policy {
    fn client_auth_root_subjects(&self) -> Option<DistinguishedNames> {
        Some(DistinguishedNames::new())
    }

    fn verify_client_cert(
        &self,
        end_entity: &Certificate,
        intermediates: &[Certificate],
        now: SystemTime,
    ) -> Result<ClientCertVerified, Error> {
        self.verify(end_entity, intermediates, now)
            .map(|_| ClientCertVerified::assertion())
    }
}
