//! Generated from `wit/network.wit`. Driver authors never use this module
//! directly: the SDK's types, [`Host`](crate::Host) and
//! [`export_driver!`](crate::export_driver) wrap it.

wit_bindgen::generate!({
    world: "network-driver",
    path: "../wit",
    pub_export_macro: true,
    export_macro_name: "__export_network_driver",
    default_bindings_module: "mydocker_driver_sdk::bindings",
});
