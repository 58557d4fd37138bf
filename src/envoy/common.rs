//! Small builders shared by the resource translators.

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use envoy_types::pb::envoy::config::core::v3::Address;
use envoy_types::pb::envoy::config::core::v3::{
    AggregatedConfigSource, ApiVersion, ConfigSource, DataSource, HeaderValue, HeaderValueOption,
    SocketAddress, address, config_source, data_source, header_value_option, socket_address,
};
use envoy_types::pb::google::protobuf::{self, Any};
use prost::{Message, Name};

pub fn duration(d: Duration) -> protobuf::Duration {
    protobuf::Duration {
        seconds: d.as_secs() as i64,
        nanos: d.subsec_nanos() as i32,
    }
}

pub fn any<T: Message + Name>(message: T) -> Any {
    envoy_types::util::pack_any(message)
}

pub fn socket_address(addr: &SocketAddr, udp: bool) -> Address {
    tcp_or_udp_address(&addr.ip().to_string(), addr.port(), udp)
}

pub fn host_address(host: &str, port: u16) -> Address {
    tcp_or_udp_address(host, port, false)
}

fn tcp_or_udp_address(host: &str, port: u16, udp: bool) -> Address {
    let protocol = if udp {
        socket_address::Protocol::Udp
    } else {
        socket_address::Protocol::Tcp
    };
    Address {
        address: Some(address::Address::SocketAddress(SocketAddress {
            protocol: protocol as i32,
            address: host.to_string(),
            port_specifier: Some(socket_address::PortSpecifier::PortValue(u32::from(port))),
            ..Default::default()
        })),
    }
}

/// Resources that come over the same ADS stream as the one asking for them.
pub fn ads_config_source() -> ConfigSource {
    ConfigSource {
        resource_api_version: ApiVersion::V3 as i32,
        config_source_specifier: Some(config_source::ConfigSourceSpecifier::Ads(
            AggregatedConfigSource {},
        )),
        // Wait for sluice rather than start with nothing (Envoy's default gives up after 15 s).
        initial_fetch_timeout: Some(duration(Duration::ZERO)),
        ..Default::default()
    }
}

pub fn file(path: &Path) -> DataSource {
    DataSource {
        specifier: Some(data_source::Specifier::Filename(path.display().to_string())),
        ..Default::default()
    }
}

/// A header set on requests or responses, replacing any value already there.
pub fn set_header(name: &str, value: &str) -> HeaderValueOption {
    HeaderValueOption {
        header: Some(HeaderValue {
            key: name.to_string(),
            value: value.to_string(),
            ..Default::default()
        }),
        append_action: header_value_option::HeaderAppendAction::OverwriteIfExistsOrAdd as i32,
        ..Default::default()
    }
}
