//! [`RequestFields`]: the request header fields the layers' rules read,
//! found in one pass over the request's headers.

use http::header::{
    AUTHORIZATION, CACHE_CONTROL, CONTENT_LENGTH, HOST, IF_MODIFIED_SINCE, IF_NONE_MATCH, PRAGMA,
    RANGE, TRANSFER_ENCODING,
};
use http::{HeaderMap, HeaderValue};

/// Which of the fields a cache's rules read a request sends, and what the
/// value of a few says.
///
/// A hit needs half a dozen of them (the body's, `Host`, `Authorization`,
/// the preconditions and `Range`, and the directives under RFC 9111), and
/// most requests send none but `Host`. Looked up one by one, each costs a
/// hash of its name and a probe of the map (about 100 instructions); one
/// pass over the fields compares names, which costs less for any request
/// of up to a few dozen fields, and the rules then skip what is absent.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct RequestFields {
    /// A body is announced: `Transfer-Encoding`, or a `Content-Length`
    /// other than 0 (one that cannot be read counts as a body).
    pub(crate) body: bool,
    /// An `Authorization` field whose value is not blank.
    pub(crate) authorized: bool,
    /// `If-None-Match` or `If-Modified-Since`: a `304` may answer.
    pub(crate) preconditions: bool,
    /// `Range`: a `206` may answer (under RFC 9111).
    pub(crate) range: bool,
    /// `Cache-Control` or `Pragma`: request directives to parse.
    pub(crate) directives: bool,
    /// `Host` is sent more than once: such a request is never cached.
    pub(crate) several_hosts: bool,
}

impl RequestFields {
    /// The fields of `headers`, and the value of its only `Host` field.
    pub(crate) fn scan(headers: &HeaderMap) -> (RequestFields, Option<&HeaderValue>) {
        let mut fields = RequestFields::default();
        let mut host = None;
        // By the name of each value: a field sent on several lines is met
        // once per line.
        for (name, value) in headers {
            if name == HOST {
                fields.several_hosts |= host.is_some();
                host = Some(value);
            } else if name == CONTENT_LENGTH {
                fields.body |= !is_zero(value);
            } else if name == TRANSFER_ENCODING {
                fields.body = true;
            } else if name == AUTHORIZATION {
                fields.authorized |= !value.as_bytes().iter().all(u8::is_ascii_whitespace);
            } else if name == IF_NONE_MATCH || name == IF_MODIFIED_SINCE {
                fields.preconditions = true;
            } else if name == RANGE {
                fields.range = true;
            } else if name == CACHE_CONTROL || name == PRAGMA {
                fields.directives = true;
            }
        }
        (fields, host.filter(|_| !fields.several_hosts))
    }
}

/// Whether a `Content-Length` value says 0.
fn is_zero(length: &HeaderValue) -> bool {
    std::str::from_utf8(length.as_bytes())
        .ok()
        .and_then(|text| text.trim().parse::<u64>().ok())
        == Some(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scan(pairs: &[(&'static str, &'static str)]) -> (RequestFields, Option<String>) {
        let mut headers = HeaderMap::new();
        for (name, value) in pairs {
            headers.append(*name, HeaderValue::from_static(value));
        }
        let (fields, host) = RequestFields::scan(&headers);
        (fields, host.map(|h| h.to_str().unwrap().to_owned()))
    }

    #[test]
    fn a_plain_request_asks_nothing_of_the_rules() {
        let (fields, host) = scan(&[
            ("host", "example.com"),
            ("accept", "*/*"),
            ("content-length", " 0 "),
            ("authorization", "  "),
            ("if-match", "\"x\""),
            ("x-range", "bytes=0-1"),
        ]);
        assert_eq!(fields, RequestFields::default());
        assert_eq!(host.as_deref(), Some("example.com"));
    }

    #[test]
    fn each_field_is_found_whatever_its_place() {
        let one = |name, value| scan(&[("accept", "*/*"), (name, value), ("host", "h")]).0;
        let body = RequestFields {
            body: true,
            ..RequestFields::default()
        };
        assert_eq!(one("transfer-encoding", "chunked"), body);
        assert_eq!(one("content-length", "1"), body);
        assert_eq!(one("content-length", "zero"), body);
        assert!(one("authorization", "Basic dTpw").authorized);
        assert!(one("if-none-match", "*").preconditions);
        assert!(one("if-modified-since", "x").preconditions);
        assert!(one("range", "bytes=0-1").range);
        assert!(one("cache-control", "no-cache").directives);
        assert!(one("pragma", "no-cache").directives);
        // One line of two saying 0 is still a body.
        let (fields, _) = scan(&[("content-length", "0"), ("content-length", "5")]);
        assert!(fields.body);
    }

    #[test]
    fn a_host_sent_twice_is_no_host() {
        let (fields, host) = scan(&[("host", "a"), ("host", "b")]);
        assert!(fields.several_hosts);
        assert_eq!(host, None);
        let (fields, host) = scan(&[("accept", "*/*")]);
        assert!(!fields.several_hosts);
        assert_eq!(host, None);
    }
}
