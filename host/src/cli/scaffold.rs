//! The files `mydocker driver new` writes: a small working driver (a
//! bridge per network, a veth per container) with a native test.

use std::path::Path;

const CARGO_TOML: &str = r#"[package]
name = "{{name}}"
version = "0.1.0"
edition = "2021"
description = "A mydocker network driver"

[lib]
# cdylib: the .wasm component; rlib: so `cargo test` can run the logic natively.
crate-type = ["cdylib", "rlib"]

[dependencies]
mydocker-driver-sdk = { path = "{{sdk}}" }

# A standalone crate, even when created inside another workspace.
[workspace]

[profile.release]
opt-level = "s"
"#;

const LIB_RS: &str = r#"//! {{name}}: a mydocker network driver. Each network is a Linux bridge
//! holding the gateway address; each container joins through a veth pair.

use mydocker_driver_sdk::*;

pub struct Driver_;

/// Bridge names must fit in 15 bytes: derive them from the network id.
fn bridge_name(network: &Network) -> String {
    format!("sb-{}", &network.id[..8])
}

/// One stable host-side veth name per (network, container).
fn veth_name(endpoint: &Endpoint) -> String {
    format!("sv{}{}", &endpoint.network.id[..4], &endpoint.container_id[..8])
}

impl Driver for Driver_ {
    fn info() -> Info {
        Info {
            name: "{{name}}".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            description: "a bridge per network, a veth per container".into(),
            // What the host must grant (see `mydocker driver install --allow`).
            capabilities: vec![capability::BRIDGE.into(), capability::VETH.into()],
            options: vec![("mtu".into(), "MTU of the bridge (default: kernel's)".into())],
        }
    }

    fn create_network(host: &mut dyn Host, network: &Network) -> Result<Data> {
        network.options.check_known("{{name}}", &["mtu"])?;
        let mtu: Option<u32> = network.options.parse("mtu")?;
        let bridge = bridge_name(network);
        host.create_bridge(&bridge)?;
        if let Some(mtu) = mtu {
            host.set_mtu(Netns::Host, &bridge, mtu)?;
        }
        host.add_address(Netns::Host, &bridge, network.gateway_cidr())?;
        host.set_up(Netns::Host, &bridge)?;
        host.log(Level::Info, &format!("created bridge {bridge}"));
        Ok(Data::new().with("bridge", bridge))
    }

    fn delete_network(host: &mut dyn Host, network: &Network) -> Result<()> {
        let bridge = network.data.require("bridge")?;
        ignore_not_found(host.delete_link(Netns::Host, bridge))
    }

    fn connect(host: &mut dyn Host, endpoint: &Endpoint) -> Result<Joined> {
        let bridge = endpoint.network.data.require("bridge")?;
        let veth = veth_name(endpoint);
        host.create_veth(&veth, &endpoint.interface)?;
        host.set_master(&veth, bridge)?;
        host.set_up(Netns::Host, &veth)?;
        configure_container_interface(host, endpoint)?;
        Ok(Joined {
            host_interface: Some(veth.clone()),
            data: Data::new().with("veth", veth),
        })
    }

    fn disconnect(host: &mut dyn Host, endpoint: &Endpoint) -> Result<()> {
        let veth = endpoint.data.get("veth").map(str::to_string).unwrap_or_else(|| veth_name(endpoint));
        ignore_not_found(host.delete_link(Netns::Host, &veth))
    }
}

export_driver!(Driver_);

#[cfg(test)]
mod tests {
    use super::*;
    use mydocker_driver_sdk::mock::{endpoint, network, MockHost, Op};

    #[test]
    fn connect_attaches_a_veth_to_the_network_bridge() {
        let mut host = MockHost::new();
        let mut net = network("n1", "10.20.0.0/24", &[]);
        net.data = Driver_::create_network(&mut host, &net).unwrap();
        let bridge = net.data.get("bridge").unwrap().to_string();
        assert!(host.has_link(Netns::Host, &bridge));

        host.clear_ops();
        let ep = endpoint(&net, "0123456789abcdef", "eth0", 2);
        let joined = Driver_::connect(&mut host, &ep).unwrap();
        let veth = joined.host_interface.unwrap();
        assert_eq!(host.ops()[0], Op::CreateVeth { host: veth.clone(), container: "eth0".into() });
        assert_eq!(host.ops()[1], Op::SetMaster { name: veth.clone(), master: bridge.clone() });
        assert!(host.ops().contains(&Op::AddDefaultRoute(Netns::Container, net.gateway)));

        let mut ep = ep;
        ep.data = joined.data;
        Driver_::disconnect(&mut host, &ep).unwrap();
        Driver_::delete_network(&mut host, &net).unwrap();
        assert_eq!(host.links(Netns::Host), vec!["lo".to_string()]);
    }

    #[test]
    fn unknown_options_are_refused() {
        let mut host = MockHost::new();
        let net = network("n1", "10.20.0.0/24", &[("colour", "blue")]);
        let err = Driver_::create_network(&mut host, &net).unwrap_err();
        assert!(err.to_string().contains("unknown option 'colour'"), "{err}");
        assert!(host.ops().is_empty());
    }
}
"#;

const README: &str = r#"# {{name}}

A mydocker network driver, built with the mydocker driver SDK.

```sh
cargo test                                          # the logic, natively, against a mock host
rustup target add wasm32-wasip2                     # once
cargo build --release --target wasm32-wasip2
mydocker driver install --allow bridge,veth target/wasm32-wasip2/release/{{crate}}.wasm
mydocker network create --driver {{name}} --subnet 10.20.0.0/24 mynet
```
"#;

const GITIGNORE: &str = "/target\n";

/// (relative path, content) of every file of a new driver crate.
pub fn files(name: &str, sdk: &Path) -> Vec<(String, String)> {
    let fill = |t: &str| {
        t.replace("{{name}}", name)
            .replace("{{crate}}", &name.replace('-', "_"))
            .replace("{{sdk}}", &sdk.display().to_string())
    };
    vec![
        ("Cargo.toml".into(), fill(CARGO_TOML)),
        ("src/lib.rs".into(), fill(LIB_RS)),
        ("README.md".into(), fill(README)),
        (".gitignore".into(), GITIGNORE.into()),
    ]
}
