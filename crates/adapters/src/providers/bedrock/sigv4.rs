//! AWS Signature Version 4 (`AWS4-HMAC-SHA256`), as Bedrock requires it on
//! every request signed with an access key.
//!
//! The signature covers a canonical form of the request: method, path,
//! query, the signed headers and the SHA-256 of the body. Bedrock is not S3,
//! so its canonical URI encodes each path segment of the URL a second time:
//! the model id `v1:0` is sent as `v1%3A0` and signed as `v1%253A0`.
//! The secret key only ever enters HMACs; nothing here formats it.

use std::time::SystemTime;

use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};
use switchyard_common::calendar::UtcTime;

type HmacSha256 = Hmac<Sha256>;

/// The signing algorithm named in the `Authorization` header.
pub const ALGORITHM: &str = "AWS4-HMAC-SHA256";

/// The long-term or temporary credentials a request is signed with.
#[derive(Clone, Copy)]
pub struct Credentials<'a> {
    /// `AKIA…` or `ASIA…`; appears in the `Authorization` header.
    pub access_key_id: &'a str,
    /// Only ever used as an HMAC key.
    pub secret_access_key: &'a str,
    /// The STS session token of temporary credentials, sent (and signed) as
    /// `x-amz-security-token`.
    pub session_token: Option<&'a str>,
}

impl std::fmt::Debug for Credentials<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("access_key_id", &self.access_key_id)
            .finish_non_exhaustive()
    }
}

/// Where a signature is valid: region and service (`bedrock`).
#[derive(Debug, Clone, Copy)]
pub struct Scope<'a> {
    /// AWS region, e.g. `us-east-1`.
    pub region: &'a str,
    /// Signing name of the service.
    pub service: &'a str,
}

/// The parts of a request the signature covers.
#[derive(Debug, Clone, Copy)]
pub struct CanonicalInput<'a> {
    /// `GET`, `POST`, ...
    pub method: &'a str,
    /// The URL path exactly as sent, i.e. already percent-encoded once.
    pub path: &'a str,
    /// The query string as sent (without `?`), its parts already in AWS's
    /// encoding; sorted here.
    pub query: &'a str,
    /// Every header to sign, `host` and `x-amz-date` included; names in any case.
    pub headers: &'a [(&'a str, &'a str)],
    /// Lowercase hex SHA-256 of the body.
    pub payload_sha256: &'a str,
}

/// Headers to add to a request so that AWS accepts it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignatureHeaders {
    /// `x-amz-date`: the signing time, `YYYYMMDD'T'HHMMSS'Z'`.
    pub amz_date: String,
    /// `x-amz-content-sha256`: hex SHA-256 of the body.
    pub content_sha256: String,
    /// `authorization`: credential scope, signed headers and signature.
    pub authorization: String,
}

/// A request with a body, about to be sent.
#[derive(Debug, Clone, Copy)]
pub struct OutgoingRequest<'a> {
    /// `POST`, ...
    pub method: &'a str,
    /// The `Host` header as the HTTP client sends it (`host[:port]`).
    pub host: &'a str,
    /// The URL path exactly as sent.
    pub path: &'a str,
    /// The `Content-Type` header.
    pub content_type: &'a str,
    /// The body.
    pub body: &'a [u8],
}

/// Signs `request`: its `host` and `content-type` plus the `x-amz-*`
/// headers this returns (and `x-amz-security-token` when the credentials
/// have a session token; the caller sends it).
pub fn sign_request(
    request: &OutgoingRequest<'_>,
    credentials: Credentials<'_>,
    scope: Scope<'_>,
    now: SystemTime,
) -> SignatureHeaders {
    let amz_date = amz_date(now);
    let content_sha256 = hex::encode(Sha256::digest(request.body));
    let mut headers = vec![
        ("content-type", request.content_type),
        ("host", request.host),
        ("x-amz-content-sha256", content_sha256.as_str()),
        ("x-amz-date", amz_date.as_str()),
    ];
    if let Some(token) = credentials.session_token {
        headers.push(("x-amz-security-token", token));
    }
    let input = CanonicalInput {
        method: request.method,
        path: request.path,
        query: "",
        headers: &headers,
        payload_sha256: &content_sha256,
    };
    let authorization = authorization(&input, credentials, scope, &amz_date);
    SignatureHeaders {
        amz_date,
        content_sha256,
        authorization,
    }
}

/// Returns the `Authorization` header value for `input`, signed at `amz_date`.
pub fn authorization(
    input: &CanonicalInput<'_>,
    credentials: Credentials<'_>,
    scope: Scope<'_>,
    amz_date: &str,
) -> String {
    let (canonical, signed_headers) = canonical_request(input);
    let date = amz_date.get(..8).unwrap_or(amz_date);
    let credential_scope = format!("{date}/{}/{}/aws4_request", scope.region, scope.service);
    let string_to_sign = format!(
        "{ALGORITHM}\n{amz_date}\n{credential_scope}\n{}",
        hex::encode(Sha256::digest(canonical.as_bytes()))
    );
    let key = signing_key(credentials.secret_access_key, date, scope);
    let signature = hex::encode(hmac(&key, string_to_sign.as_bytes()));
    format!(
        "{ALGORITHM} Credential={}/{credential_scope}, SignedHeaders={signed_headers}, Signature={signature}",
        credentials.access_key_id
    )
}

/// Returns the canonical request and the `SignedHeaders` list.
pub fn canonical_request(input: &CanonicalInput<'_>) -> (String, String) {
    let mut headers: Vec<(String, String)> = input
        .headers
        .iter()
        .map(|(name, value)| (name.to_ascii_lowercase(), normalize_value(value)))
        .collect();
    headers.sort_by(|a, b| a.0.cmp(&b.0));
    // Repeated names become one line, values joined with commas in order.
    let mut merged: Vec<(String, String)> = Vec::with_capacity(headers.len());
    for (name, value) in headers {
        match merged.last_mut() {
            Some((last, values)) if *last == name => {
                values.push(',');
                values.push_str(&value);
            }
            _ => merged.push((name, value)),
        }
    }
    let canonical_headers: String = merged
        .iter()
        .map(|(name, value)| format!("{name}:{value}\n"))
        .collect();
    let signed_headers = merged
        .iter()
        .map(|(name, _)| name.as_str())
        .collect::<Vec<_>>()
        .join(";");
    let canonical = format!(
        "{}\n{}\n{}\n{canonical_headers}\n{signed_headers}\n{}",
        input.method,
        canonical_uri(input.path),
        canonical_query(input.query),
        input.payload_sha256
    );
    (canonical, signed_headers)
}

/// Encodes each segment of an already encoded path once more (the rule for
/// every service but S3).
pub fn canonical_uri(path: &str) -> String {
    if path.is_empty() {
        return "/".to_owned();
    }
    path.split('/')
        .map(|segment| uri_encode(segment.as_bytes()))
        .collect::<Vec<_>>()
        .join("/")
}

/// Percent-encodes every byte but the unreserved ones (`A-Z a-z 0-9 - . _ ~`),
/// with uppercase hex, as SigV4 requires.
pub fn uri_encode(bytes: &[u8]) -> String {
    let mut encoded = String::with_capacity(bytes.len());
    for &byte in bytes {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            encoded.push(char::from(byte));
        } else {
            encoded.push_str(&format!("%{byte:02X}"));
        }
    }
    encoded
}

fn canonical_query(query: &str) -> String {
    if query.is_empty() {
        return String::new();
    }
    let mut pairs: Vec<(&str, &str)> = query
        .split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| pair.split_once('=').unwrap_or((pair, "")))
        .collect();
    pairs.sort_unstable();
    pairs
        .iter()
        .map(|(name, value)| format!("{name}={value}"))
        .collect::<Vec<_>>()
        .join("&")
}

/// Trims a header value and collapses runs of spaces to one.
fn normalize_value(value: &str) -> String {
    value.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn signing_key(secret: &str, date: &str, scope: Scope<'_>) -> Vec<u8> {
    let key = hmac(format!("AWS4{secret}").as_bytes(), date.as_bytes());
    let key = hmac(&key, scope.region.as_bytes());
    let key = hmac(&key, scope.service.as_bytes());
    hmac(&key, b"aws4_request")
}

fn hmac(key: &[u8], data: &[u8]) -> Vec<u8> {
    // HMAC accepts keys of any length; `new_from_slice` cannot fail for it.
    let Ok(mut mac) = HmacSha256::new_from_slice(key) else {
        return Vec::new();
    };
    mac.update(data);
    mac.finalize().into_bytes().to_vec()
}

/// Formats a time as `YYYYMMDD'T'HHMMSS'Z'` (UTC).
pub fn amz_date(time: SystemTime) -> String {
    let UtcTime {
        year,
        month,
        day,
        hour,
        minute,
        second,
        ..
    } = UtcTime::of(time);
    format!("{year:04}{month:02}{day:02}T{hour:02}{minute:02}{second:02}Z")
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, UNIX_EPOCH};

    use super::*;

    /// The example credentials of AWS's SigV4 documentation and test suite.
    const EXAMPLE: Credentials<'static> = Credentials {
        access_key_id: "AKIDEXAMPLE",
        secret_access_key: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
        session_token: None,
    };
    const EMPTY_SHA256: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    fn suite_authorization(method: &str, query: &str) -> String {
        let headers = [
            ("Host", "example.amazonaws.com"),
            ("X-Amz-Date", "20150830T123600Z"),
        ];
        let input = CanonicalInput {
            method,
            path: "/",
            query,
            headers: &headers,
            payload_sha256: EMPTY_SHA256,
        };
        let scope = Scope {
            region: "us-east-1",
            service: "service",
        };
        authorization(&input, EXAMPLE, scope, "20150830T123600Z")
    }

    #[test]
    fn matches_the_aws_sigv4_test_suite() {
        // get-vanilla, get-vanilla-query-order-key-case and post-vanilla of
        // the AWS Signature Version 4 test suite.
        let prefix = "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=host;x-amz-date, Signature=";
        assert_eq!(
            suite_authorization("GET", ""),
            format!("{prefix}5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31")
        );
        assert_eq!(
            suite_authorization("GET", "Param2=value2&Param1=value1"),
            format!("{prefix}b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500")
        );
        assert_eq!(
            suite_authorization("POST", ""),
            format!("{prefix}5da7c1a2acd57cee7505fc6676e4e544621c30862966e37dddb68e92efbe5d6b")
        );
    }

    #[test]
    fn matches_the_iam_example_of_the_sigv4_documentation() {
        let headers = [
            (
                "Content-Type",
                "application/x-www-form-urlencoded; charset=utf-8",
            ),
            ("Host", "iam.amazonaws.com"),
            ("X-Amz-Date", "20150830T123600Z"),
        ];
        let input = CanonicalInput {
            method: "GET",
            path: "/",
            query: "Action=ListUsers&Version=2010-05-08",
            headers: &headers,
            payload_sha256: EMPTY_SHA256,
        };
        let (canonical, _) = canonical_request(&input);
        assert_eq!(
            hex::encode(Sha256::digest(canonical.as_bytes())),
            "f536975d06c0309214f805bb90ccff089219ecd68b2577efef23edd43b7e1a59"
        );
        let scope = Scope {
            region: "us-east-1",
            service: "iam",
        };
        assert_eq!(
            authorization(&input, EXAMPLE, scope, "20150830T123600Z"),
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/iam/aws4_request, SignedHeaders=content-type;host;x-amz-date, Signature=5d672d79c15b13162d9279b0855cfba6789a8edb4c82c400e06b5924a6f2b5d7"
        );
    }

    #[test]
    fn bedrock_paths_are_encoded_twice() {
        assert_eq!(
            canonical_uri("/model/anthropic.claude-3-5-sonnet-20240620-v1%3A0/converse"),
            "/model/anthropic.claude-3-5-sonnet-20240620-v1%253A0/converse"
        );
        assert_eq!(canonical_uri(""), "/");
        assert_eq!(uri_encode("a b/c:~".as_bytes()), "a%20b%2Fc%3A~");
    }

    #[test]
    fn sign_request_signs_the_session_token_and_body_hash() {
        let credentials = Credentials {
            session_token: Some("token"),
            ..EXAMPLE
        };
        let now = UNIX_EPOCH + Duration::from_secs(1_440_938_160);
        let request = OutgoingRequest {
            method: "POST",
            host: "bedrock-runtime.us-east-1.amazonaws.com",
            path: "/model/m/converse",
            content_type: "application/json",
            body: b"{}",
        };
        let headers = sign_request(
            &request,
            credentials,
            Scope {
                region: "us-east-1",
                service: "bedrock",
            },
            now,
        );
        assert_eq!(headers.amz_date, "20150830T123600Z");
        assert_eq!(
            headers.content_sha256,
            "44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"
        );
        assert!(headers.authorization.starts_with(
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/bedrock/aws4_request, SignedHeaders=content-type;host;x-amz-content-sha256;x-amz-date;x-amz-security-token, Signature="
        ));
    }

    #[test]
    fn dates_format_in_utc() {
        assert_eq!(amz_date(UNIX_EPOCH), "19700101T000000Z");
        let leap_day = UNIX_EPOCH + Duration::from_secs(951_782_400 + 3_723);
        assert_eq!(amz_date(leap_day), "20000229T010203Z");
    }
}
