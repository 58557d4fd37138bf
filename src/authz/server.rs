//! The gRPC method `envoy.service.auth.v3.Authorization/Check`, framed by hand: the request
//! body's one length-prefixed message decoded as [`wire::CheckRequest`], the answer encoded
//! the same way. The HTTP/2 side (streams, headers, trailers) is `app::connection`'s.

use bytes::{BufMut, Bytes, BytesMut};
use envoy_types::ext_authz::v3::pb::CheckResponse;
use prost::Message;

use super::service::AuthzService;
use super::wire;

/// The service's gRPC name, as Envoy's `grpc_service` calls it.
pub const SERVICE_NAME: &str = "envoy.service.auth.v3.Authorization";
/// The path of its one method.
pub const CHECK_PATH: &str = "/envoy.service.auth.v3.Authorization/Check";

/// The largest Check message read, tonic's default limit: a request past it is refused
/// before it is buffered whole.
pub const MAX_CHECK_BYTES: usize = 4 << 20;

/// gRPC's 5-byte message prefix: a compression flag, then the length (big-endian).
const PREFIX: usize = 5;

/// The gRPC status codes a Check can end with besides OK.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Code {
    InvalidArgument = 3,
    ResourceExhausted = 8,
    Unimplemented = 12,
    Internal = 13,
}

/// How a gRPC call ends.
#[derive(Debug, PartialEq)]
pub enum Reply {
    /// One framed message, then `grpc-status: 0` in the trailers.
    Message(Bytes),
    /// A status and its message alone, in the response headers (gRPC's "trailers-only").
    Status(Code, &'static str),
}

/// Whether `path` names a method of the Authorization service (`/<service>/<method>`).
pub fn is_authorization(path: &str) -> bool {
    path.strip_prefix('/')
        .and_then(|rest| rest.strip_prefix(SERVICE_NAME))
        .is_some_and(|rest| rest.starts_with('/'))
}

/// Answers one Check from its whole request body.
pub async fn check(service: &AuthzService, body: Bytes) -> Reply {
    let message = match unframe(body) {
        Ok(message) => message,
        Err(reply) => return reply,
    };
    // Decoding from `Bytes` makes the request's text fields slices of the body, not copies.
    let Ok(request) = wire::CheckRequest::decode(message) else {
        return Reply::Status(Code::Internal, "the body is not a CheckRequest");
    };
    if request.check_text().is_err() {
        return Reply::Status(
            Code::InvalidArgument,
            "CheckRequest: a text field is not UTF-8",
        );
    }
    Reply::Message(frame(&service.check_request(&request).await))
}

/// The one message of a unary request body.
fn unframe(body: Bytes) -> Result<Bytes, Reply> {
    if body.len() < PREFIX {
        return Err(Reply::Status(
            Code::Internal,
            "the body is not one length-prefixed gRPC message",
        ));
    }
    if body[0] != 0 {
        // Envoy's ext_authz never compresses; no `grpc-encoding` is offered either.
        return Err(Reply::Status(
            Code::Unimplemented,
            "compressed messages are not supported",
        ));
    }
    let length = u32::from_be_bytes([body[1], body[2], body[3], body[4]]) as usize;
    if body.len() - PREFIX != length {
        return Err(Reply::Status(
            Code::Internal,
            "the body is not one length-prefixed gRPC message",
        ));
    }
    Ok(body.slice(PREFIX..))
}

/// `response` as one uncompressed gRPC message.
fn frame(response: &CheckResponse) -> Bytes {
    let length = response.encoded_len();
    let mut out = BytesMut::with_capacity(PREFIX + length);
    out.put_u8(0);
    out.put_u32(length as u32);
    response
        .encode(&mut out)
        .expect("the buffer was sized for the message");
    out.freeze()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_authorization_service_matches() {
        assert!(is_authorization(CHECK_PATH));
        assert!(is_authorization(
            "/envoy.service.auth.v3.Authorization/Other"
        ));
        for other in [
            "/envoy.service.auth.v3.AuthorizationX/Check",
            "/envoy.service.auth.v3.Authorization",
            "/envoy.service.discovery.v3.AggregatedDiscoveryService/StreamAggregatedResources",
            "/.sluice/status",
            "/",
            "",
        ] {
            assert!(!is_authorization(other), "{other}");
        }
    }

    #[test]
    fn a_message_round_trips_through_its_prefix() {
        let response = CheckResponse {
            status: Some(Default::default()),
            ..Default::default()
        };
        let framed = frame(&response);
        assert_eq!(framed[0], 0);
        let message = unframe(framed).expect("one message");
        assert_eq!(CheckResponse::decode(message).unwrap(), response);
    }

    #[test]
    fn bodies_that_are_not_one_message_are_refused() {
        let status = |body: &[u8]| match unframe(Bytes::copy_from_slice(body)) {
            Err(Reply::Status(code, _)) => Some(code),
            _ => None,
        };
        assert_eq!(status(b""), Some(Code::Internal));
        assert_eq!(status(&[0, 0, 0]), Some(Code::Internal));
        assert_eq!(status(&[0, 0, 0, 0, 2, 1]), Some(Code::Internal), "short");
        assert_eq!(status(&[0, 0, 0, 0, 1, 1, 1]), Some(Code::Internal), "long");
        assert_eq!(status(&[1, 0, 0, 0, 1, 1]), Some(Code::Unimplemented));
        assert_eq!(status(&[0, 0, 0, 0, 0]), None, "an empty message is one");
    }
}
