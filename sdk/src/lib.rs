//! Write [mydocker](https://github.com) network drivers as sandboxed
//! WebAssembly components.
//!
//! A driver is a type implementing [`Driver`], exported with
//! [`export_driver!`], built with `cargo build --target wasm32-wasip2
//! --release`. It reaches the system only through the [`Host`] it is given:
//! the host checks every call against the capabilities the user granted and
//! undoes everything if the call fails. The same logic runs natively against
//! a [`mock::MockHost`] under `cargo test`.
//!
//! ```ignore
//! use mydocker_driver_sdk::*;
//!
//! struct Dummy;
//!
//! impl Driver for Dummy {
//!     fn info() -> Info {
//!         Info {
//!             name: "dummy".into(),
//!             version: "0.1.0".into(),
//!             description: "does nothing".into(),
//!             capabilities: vec![],
//!             options: vec![],
//!         }
//!     }
//!     fn create_network(_: &mut dyn Host, _: &Network) -> Result<Data> { Ok(Data::new()) }
//!     fn delete_network(_: &mut dyn Host, _: &Network) -> Result<()> { Ok(()) }
//!     fn connect(_: &mut dyn Host, _: &Endpoint) -> Result<Joined> { Ok(Joined::default()) }
//!     fn disconnect(_: &mut dyn Host, _: &Endpoint) -> Result<()> { Ok(()) }
//! }
//!
//! export_driver!(Dummy);
//! ```

#![warn(missing_docs)]

#[doc(hidden)]
pub mod bindings;
mod convert;
mod host;
pub mod mock;
mod types;

pub use host::{configure_container_interface, Host, WasmHost};
pub use types::*;

/// The contract version this SDK builds drivers for.
pub const API_VERSION: &str = "0.1.0";

/// A network driver. Each method gets the host for the duration of the call.
pub trait Driver {
    /// Describes the driver; must not call the host.
    fn info() -> Info;
    /// Sets up a network; the returned [`Data`] comes back as `network.data`.
    fn create_network(host: &mut dyn Host, network: &Network) -> Result<Data>;
    /// Tears down what `create_network` made; should succeed when already gone.
    fn delete_network(host: &mut dyn Host, network: &Network) -> Result<()>;
    /// Joins a container: its interface, address, routes, published ports.
    fn connect(host: &mut dyn Host, endpoint: &Endpoint) -> Result<Joined>;
    /// Undoes `connect`; should succeed when already gone.
    fn disconnect(host: &mut dyn Host, endpoint: &Endpoint) -> Result<()>;
}

#[doc(hidden)]
pub mod __private {
    use crate::bindings::exports::mydocker::network::driver as exp;
    use crate::bindings::mydocker::network::types as wit;
    use crate::convert::*;
    use crate::{Driver, WasmHost};

    pub use crate::bindings::__export_network_driver;
    pub use exp::Guest;
    pub use wit::{DriverError, DriverInfo, EndpointConfig, EndpointInfo, KeyValue, NetworkConfig};

    pub fn info<D: Driver>() -> wit::DriverInfo {
        info_to_wit(D::info())
    }

    pub fn create_network<D: Driver>(
        n: wit::NetworkConfig,
    ) -> Result<Vec<wit::KeyValue>, wit::DriverError> {
        D::create_network(&mut WasmHost, &network_from_wit(n))
            .map(|d| data_to_wit(&d))
            .map_err(err_to_wit)
    }

    pub fn delete_network<D: Driver>(n: wit::NetworkConfig) -> Result<(), wit::DriverError> {
        D::delete_network(&mut WasmHost, &network_from_wit(n)).map_err(err_to_wit)
    }

    pub fn connect<D: Driver>(
        e: wit::EndpointConfig,
    ) -> Result<wit::EndpointInfo, wit::DriverError> {
        D::connect(&mut WasmHost, &endpoint_from_wit(e))
            .map(|j| wit::EndpointInfo {
                host_interface: j.host_interface,
                driver_data: data_to_wit(&j.data),
            })
            .map_err(err_to_wit)
    }

    pub fn disconnect<D: Driver>(e: wit::EndpointConfig) -> Result<(), wit::DriverError> {
        D::disconnect(&mut WasmHost, &endpoint_from_wit(e)).map_err(err_to_wit)
    }
}

/// Exports a [`Driver`] as the component's `driver` interface. Use once,
/// at the crate root of a `cdylib` crate.
#[macro_export]
macro_rules! export_driver {
    ($driver:ty) => {
        #[doc(hidden)]
        pub struct __MydockerDriverExport;

        impl $crate::__private::Guest for __MydockerDriverExport {
            fn info() -> $crate::__private::DriverInfo {
                $crate::__private::info::<$driver>()
            }
            fn create_network(
                n: $crate::__private::NetworkConfig,
            ) -> ::core::result::Result<
                ::std::vec::Vec<$crate::__private::KeyValue>,
                $crate::__private::DriverError,
            > {
                $crate::__private::create_network::<$driver>(n)
            }
            fn delete_network(
                n: $crate::__private::NetworkConfig,
            ) -> ::core::result::Result<(), $crate::__private::DriverError> {
                $crate::__private::delete_network::<$driver>(n)
            }
            fn connect(
                e: $crate::__private::EndpointConfig,
            ) -> ::core::result::Result<
                $crate::__private::EndpointInfo,
                $crate::__private::DriverError,
            > {
                $crate::__private::connect::<$driver>(e)
            }
            fn disconnect(
                e: $crate::__private::EndpointConfig,
            ) -> ::core::result::Result<(), $crate::__private::DriverError> {
                $crate::__private::disconnect::<$driver>(e)
            }
        }

        // Native builds (`cargo test`) skip the component exports: their
        // symbol names are only valid in wasm.
        #[cfg(target_arch = "wasm32")]
        $crate::__private::__export_network_driver!(__MydockerDriverExport);
    };
}
