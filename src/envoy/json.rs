//! envoy-types messages → proto3 JSON (with `@type` on every `Any`) by reflection over the
//! descriptor set that envoy-types ships. Keys are sorted, so output is byte-stable even
//! though prost keeps proto maps in `HashMap`s.

use std::sync::OnceLock;

use prost::{Message, Name};
use prost_reflect::{DescriptorPool, DynamicMessage, SerializeOptions};
use serde_json::Value;

static DESCRIPTORS: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/envoy_descriptors.bin"));

/// The descriptor pool of every Envoy API message.
pub fn pool() -> &'static DescriptorPool {
    static POOL: OnceLock<DescriptorPool> = OnceLock::new();
    POOL.get_or_init(|| {
        DescriptorPool::decode(DESCRIPTORS).expect("envoy-types ships a valid descriptor set")
    })
}

#[derive(Debug, thiserror::Error)]
pub enum JsonError {
    #[error("no descriptor for {0}")]
    UnknownMessage(String),
    #[error("cannot decode {0}: {1}")]
    Decode(String, prost::DecodeError),
    #[error("cannot render {0}: {1}")]
    Render(String, serde_json::Error),
}

/// Proto3 JSON of a message, with proto field names (as Envoy's docs write them).
pub fn to_json<M: Message + Name>(message: &M) -> Result<Value, JsonError> {
    let name = M::full_name();
    let descriptor = pool()
        .get_message_by_name(&name)
        .ok_or_else(|| JsonError::UnknownMessage(name.clone()))?;
    let dynamic = DynamicMessage::decode(descriptor, message.encode_to_vec().as_slice())
        .map_err(|e| JsonError::Decode(name.clone(), e))?;
    let options = SerializeOptions::new().use_proto_field_name(true);
    let value = dynamic
        .serialize_with_options(serde_json::value::Serializer, &options)
        .map_err(|e| JsonError::Render(name, e))?;
    Ok(sorted(value))
}

/// Rebuilds every object with its keys in order, whatever map type serde_json is using.
pub fn sorted(value: Value) -> Value {
    match value {
        Value::Object(map) => {
            let mut entries: Vec<(String, Value)> = map.into_iter().collect();
            entries.sort_by(|a, b| a.0.cmp(&b.0));
            Value::Object(entries.into_iter().map(|(k, v)| (k, sorted(v))).collect())
        }
        Value::Array(items) => Value::Array(items.into_iter().map(sorted).collect()),
        other => other,
    }
}
