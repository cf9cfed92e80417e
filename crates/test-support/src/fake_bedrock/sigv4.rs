//! Verification of AWS Signature Version 4, as Bedrock does it: recompute
//! the signature of the received request with the secret key of the access
//! key it names, and compare. Written apart from the adapter's signer (it
//! shares no code with it), so a test passing means both read the
//! specification the same way.

use axum::http::{HeaderMap, Uri};
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

/// Why a request is refused, with Bedrock's exception name and message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    /// `x-amzn-ErrorType` name, e.g. `InvalidSignatureException`.
    pub exception: &'static str,
    /// The message Bedrock sends.
    pub message: String,
}

impl Rejection {
    fn new(exception: &'static str, message: &str) -> Self {
        Self {
            exception,
            message: message.to_owned(),
        }
    }
}

/// The access key the fake accepts.
#[derive(Debug, Clone)]
pub struct AccessKey {
    /// `AKIA…`.
    pub id: String,
    /// Its secret.
    pub secret: String,
}

/// What a verified signature was made for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    /// Region of the credential scope.
    pub region: String,
}

/// Checks the `Authorization` header of a Bedrock request against `key`.
pub fn verify(
    method: &str,
    uri: &Uri,
    headers: &HeaderMap,
    body: &[u8],
    key: &AccessKey,
) -> Result<Verified, Rejection> {
    verify_for_service(method, uri, headers, body, key, "bedrock")
}

fn verify_for_service(
    method: &str,
    uri: &Uri,
    headers: &HeaderMap,
    body: &[u8],
    key: &AccessKey,
    expected_service: &str,
) -> Result<Verified, Rejection> {
    let incomplete = || {
        Rejection::new(
            "IncompleteSignatureException",
            "Authorization header requires 'Credential', 'Signature' and 'SignedHeaders' parameters.",
        )
    };
    let header = |name: &str| headers.get(name).and_then(|value| value.to_str().ok());
    let authorization = header("authorization").ok_or_else(|| {
        Rejection::new(
            "MissingAuthenticationTokenException",
            "Missing Authentication Token",
        )
    })?;
    let parameters = authorization
        .strip_prefix("AWS4-HMAC-SHA256 ")
        .ok_or_else(incomplete)?;
    let mut credential = None;
    let mut signed_headers = None;
    let mut signature = None;
    for part in parameters.split(',') {
        match part.trim().split_once('=') {
            Some(("Credential", value)) => credential = Some(value),
            Some(("SignedHeaders", value)) => signed_headers = Some(value),
            Some(("Signature", value)) => signature = Some(value),
            _ => return Err(incomplete()),
        }
    }
    let (Some(credential), Some(signed_headers), Some(signature)) =
        (credential, signed_headers, signature)
    else {
        return Err(incomplete());
    };
    let scope: Vec<&str> = credential.split('/').collect();
    let [key_id, date, region, service, terminator] = scope[..] else {
        return Err(incomplete());
    };
    if key_id != key.id {
        return Err(Rejection::new(
            "UnrecognizedClientException",
            "The security token included in the request is invalid.",
        ));
    }
    let mismatch = || {
        Rejection::new(
            "InvalidSignatureException",
            "The request signature we calculated does not match the signature you provided. \
             Check your AWS Secret Access Key and signing method. Consult the service \
             documentation for details.",
        )
    };
    let amz_date = header("x-amz-date").ok_or_else(incomplete)?;
    let names: Vec<&str> = signed_headers.split(';').collect();
    if service != expected_service
        || terminator != "aws4_request"
        || !amz_date.starts_with(date)
        || !names.contains(&"host")
        || !names.contains(&"x-amz-date")
    {
        return Err(mismatch());
    }
    let payload_hash = hex::encode(Sha256::digest(body));
    if header("x-amz-content-sha256").is_some_and(|claimed| claimed != payload_hash) {
        return Err(Rejection::new(
            "InvalidSignatureException",
            "The provided 'x-amz-content-sha256' header does not match what was computed.",
        ));
    }
    let mut canonical = String::new();
    canonical.push_str(method);
    canonical.push('\n');
    canonical.push_str(&canonical_path(uri.path()));
    canonical.push('\n');
    canonical.push_str(&canonical_query(uri.query().unwrap_or("")));
    canonical.push('\n');
    for name in &names {
        let values: Vec<String> = headers
            .get_all(*name)
            .iter()
            .map(|value| {
                String::from_utf8_lossy(value.as_bytes())
                    .split_whitespace()
                    .collect::<Vec<_>>()
                    .join(" ")
            })
            .collect();
        canonical.push_str(name);
        canonical.push(':');
        canonical.push_str(&values.join(","));
        canonical.push('\n');
    }
    canonical.push('\n');
    canonical.push_str(signed_headers);
    canonical.push('\n');
    canonical.push_str(&payload_hash);

    let string_to_sign = [
        "AWS4-HMAC-SHA256",
        amz_date,
        &format!("{date}/{region}/{service}/aws4_request"),
        &hex::encode(Sha256::digest(canonical.as_bytes())),
    ]
    .join("\n");
    let mut signing_key = format!("AWS4{}", key.secret).into_bytes();
    for part in [date, region, service, "aws4_request"] {
        signing_key = mac(&signing_key, part.as_bytes());
    }
    let expected = hex::encode(mac(&signing_key, string_to_sign.as_bytes()));
    if expected != signature {
        return Err(mismatch());
    }
    Ok(Verified {
        region: region.to_owned(),
    })
}

/// The path as received, each segment encoded again (non-S3 rule).
fn canonical_path(path: &str) -> String {
    if path.is_empty() {
        return "/".to_owned();
    }
    let mut out = String::with_capacity(path.len() * 2);
    for (position, segment) in path.split('/').enumerate() {
        if position > 0 {
            out.push('/');
        }
        for byte in segment.bytes() {
            let unreserved =
                matches!(byte, b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~');
            if unreserved {
                out.push(char::from(byte));
            } else {
                out.push_str(&format!("%{byte:02X}"));
            }
        }
    }
    out
}

fn canonical_query(query: &str) -> String {
    let mut pairs: Vec<&str> = query.split('&').filter(|pair| !pair.is_empty()).collect();
    pairs.sort_by_key(|pair| pair.split_once('=').map_or((*pair, ""), |(k, v)| (k, v)));
    pairs
        .iter()
        .map(|pair| {
            if pair.contains('=') {
                (*pair).to_owned()
            } else {
                format!("{pair}=")
            }
        })
        .collect::<Vec<_>>()
        .join("&")
}

fn mac(key: &[u8], data: &[u8]) -> Vec<u8> {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes keys of any length");
    mac.update(data);
    mac.finalize().into_bytes().to_vec()
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    fn headers(authorization: &'static str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert("host", HeaderValue::from_static("example.amazonaws.com"));
        headers.insert("x-amz-date", HeaderValue::from_static("20150830T123600Z"));
        headers.insert("authorization", HeaderValue::from_static(authorization));
        headers
    }

    fn example_key() -> AccessKey {
        AccessKey {
            id: "AKIDEXAMPLE".to_owned(),
            secret: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY".to_owned(),
        }
    }

    #[test]
    fn accepts_the_get_vanilla_vector_of_the_aws_test_suite() {
        let headers = headers(
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=host;x-amz-date, Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31",
        );
        let uri: Uri = "/".parse().expect("valid uri");
        let verified = verify_for_service("GET", &uri, &headers, b"", &example_key(), "service")
            .expect("the published signature verifies");
        assert_eq!(verified.region, "us-east-1");
        // The same signature for another method, secret or key is refused.
        let rejection = verify_for_service("POST", &uri, &headers, b"", &example_key(), "service")
            .expect_err("signed for GET");
        assert_eq!(rejection.exception, "InvalidSignatureException");
        let wrong_secret = AccessKey {
            secret: "other".to_owned(),
            ..example_key()
        };
        assert!(verify_for_service("GET", &uri, &headers, b"", &wrong_secret, "service").is_err());
        let other_key = AccessKey {
            id: "AKIDOTHER".to_owned(),
            ..example_key()
        };
        let rejection = verify("GET", &uri, &headers, b"", &other_key).expect_err("unknown key");
        assert_eq!(rejection.exception, "UnrecognizedClientException");
    }

    #[test]
    fn bedrock_paths_are_encoded_twice() {
        assert_eq!(
            canonical_path("/model/anthropic.claude-3-5-sonnet-20240620-v1%3A0/converse"),
            "/model/anthropic.claude-3-5-sonnet-20240620-v1%253A0/converse"
        );
        assert_eq!(canonical_query("b=2&a=1"), "a=1&b=2");
    }
}
