//! Request headers as ext_authz receives them: lowercase name/value pairs in a list, looked up
//! by name.
//!
//! Why a list and not a `HashMap`: Envoy sends a dozen headers per Check, and decoding them
//! into a map hashed every name with SipHash (6.6 % of sluice's core in a profile). A short list
//! scanned by name is cheaper to build and to search. On the wire a protobuf map is a
//! repeated entry message (name = 1, value = 2), so the list decodes the same bytes.

use bytes::Bytes;

/// A text field received as `Bytes`, as `str`. ext_authz checks every field it reads to be
/// UTF-8 once, before a decision (`authz::wire::CheckRequest::check_text`); one that was not
/// checked (a request built in a test) and is not UTF-8 reads as empty.
pub fn text(field: &Bytes) -> &str {
    std::str::from_utf8(field).unwrap_or("")
}

/// One header, in the wire shape of a protobuf `map<string, string>` entry. Name and value
/// are `Bytes` so that decoding slices them out of the received message (see
/// [`crate::authz::wire`] for how they are checked to be UTF-8).
#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct HeaderEntry {
    #[prost(bytes = "bytes", tag = "1")]
    pub name: Bytes,
    #[prost(bytes = "bytes", tag = "2")]
    pub value: Bytes,
}

impl HeaderEntry {
    pub fn new(name: impl Into<String>, value: impl Into<String>) -> Self {
        HeaderEntry {
            name: Bytes::from(name.into()),
            value: Bytes::from(value.into()),
        }
    }
}

/// A borrowed view of a request's headers.
#[derive(Clone, Copy, Debug, Default)]
pub struct RequestHeaders<'a>(pub &'a [HeaderEntry]);

impl<'a> RequestHeaders<'a> {
    /// The value of `name` (lowercase). A protobuf map keeps the last of repeated keys, so
    /// the list does too.
    pub fn get(&self, name: &str) -> Option<&'a str> {
        self.0
            .iter()
            .rev()
            .find(|h| h.name == name.as_bytes())
            .map(|h| text(&h.value))
    }

    /// Every header, first to last (a repeated name appears as often as it was sent).
    pub fn iter(&self) -> impl Iterator<Item = (&'a str, &'a str)> + use<'a> {
        self.0.iter().map(|h| (text(&h.name), text(&h.value)))
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use prost::Message;

    use super::{HeaderEntry, RequestHeaders};

    /// A message with a real protobuf map, to check the list reads the same bytes.
    #[derive(Clone, PartialEq, prost::Message)]
    struct WithMap {
        #[prost(map = "string, string", tag = "3")]
        headers: HashMap<String, String>,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    struct WithList {
        #[prost(message, repeated, tag = "3")]
        headers: Vec<HeaderEntry>,
    }

    #[test]
    fn a_list_decodes_what_a_map_encodes_and_back() {
        let map: HashMap<String, String> = [("accept", "text/html"), ("x-a", ""), ("", "v")]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let bytes = WithMap {
            headers: map.clone(),
        }
        .encode_to_vec();
        let list = WithList::decode(bytes.as_slice()).unwrap();
        let view = RequestHeaders(&list.headers);
        for (k, v) in &map {
            assert_eq!(view.get(k), Some(v.as_str()), "{k}");
        }
        assert_eq!(view.iter().count(), map.len());
        assert_eq!(view.get("missing"), None);
        let back = WithMap::decode(list.encode_to_vec().as_slice()).unwrap();
        assert_eq!(back.headers, map);
    }

    #[test]
    fn the_last_of_repeated_names_wins_as_in_a_map() {
        let list = WithList {
            headers: vec![HeaderEntry::new("a", "1"), HeaderEntry::new("a", "2")],
        };
        let map = WithMap::decode(list.encode_to_vec().as_slice()).unwrap();
        assert_eq!(map.headers["a"], "2");
        assert_eq!(RequestHeaders(&list.headers).get("a"), Some("2"));
    }
}
