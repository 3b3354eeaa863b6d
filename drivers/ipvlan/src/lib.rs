//! ipvlan networks: each container gets an ipvlan of a host link (`-o
//! parent=`), sharing the parent's MAC, created directly inside its
//! namespace. Modes l2 (default), l3, l3s. Written only against the SDK.

use mydocker_driver_sdk::*;

pub struct Ipvlan;

const PARENT: &str = "parent";
const MODE: &str = "ipvlan_mode";

fn mode_of(network: &Network) -> Result<IpvlanMode> {
    Ok(
        match network.options.one_of(MODE, &["l2", "l3", "l3s"], "l2")? {
            "l3" => IpvlanMode::L3,
            "l3s" => IpvlanMode::L3s,
            _ => IpvlanMode::L2,
        },
    )
}

impl Driver for Ipvlan {
    fn info() -> Info {
        Info {
            name: "ipvlan".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            description: "containers as ipvlan devices of a host link (no bridge, no NAT)".into(),
            capabilities: vec![capability::IPVLAN.into()],
            options: vec![
                (
                    PARENT.into(),
                    "host link the ipvlans hang off (required)".into(),
                ),
                (MODE.into(), "l2 (default), l3 or l3s".into()),
            ],
        }
    }

    fn create_network(host: &mut dyn Host, network: &Network) -> Result<Data> {
        network.options.check_known("ipvlan", &[PARENT, MODE])?;
        let parent = network.options.require(PARENT)?;
        mode_of(network)?;
        if host.get_link(Netns::Host, parent)?.is_none() {
            return Err(Error::NotFound(format!(
                "parent link '{parent}' does not exist on the host"
            )));
        }
        Ok(Data::new().with(PARENT, parent))
    }

    fn delete_network(_host: &mut dyn Host, _network: &Network) -> Result<()> {
        Ok(())
    }

    fn connect(host: &mut dyn Host, endpoint: &Endpoint) -> Result<Joined> {
        let parent = endpoint.network.data.require(PARENT)?;
        host.create_ipvlan(&endpoint.interface, parent, mode_of(&endpoint.network)?)?;
        configure_container_interface(host, endpoint)?;
        Ok(Joined::default())
    }

    fn disconnect(host: &mut dyn Host, endpoint: &Endpoint) -> Result<()> {
        ignore_not_found(host.delete_link(Netns::Container, &endpoint.interface))
    }
}

export_driver!(Ipvlan);

#[cfg(test)]
mod tests {
    use super::*;
    use mydocker_driver_sdk::mock::{endpoint, network, MockHost, Op};

    #[test]
    fn connect_creates_ipvlan_inside_the_container() {
        let mut host = MockHost::new().with_host_link("eth1", "dummy");
        let mut net = network(
            "iv",
            "10.8.0.0/24",
            &[("parent", "eth1"), ("ipvlan_mode", "l3")],
        );
        net.data = Ipvlan::create_network(&mut host, &net).unwrap();
        let ep = endpoint(&net, "c1", "eth1", 3);
        Ipvlan::connect(&mut host, &ep).unwrap();
        assert_eq!(
            host.ops()[0],
            Op::CreateIpvlan {
                name: "eth1".into(),
                parent: "eth1".into(),
                mode: IpvlanMode::L3
            }
        );
        // Not the first network: no default route.
        assert!(!host
            .ops()
            .iter()
            .any(|o| matches!(o, Op::AddDefaultRoute(..))));
    }

    #[test]
    fn missing_parent_and_bad_mode() {
        let mut host = MockHost::new();
        let e = Ipvlan::create_network(
            &mut host,
            &network("iv", "10.8.0.0/24", &[("parent", "eth9")]),
        )
        .unwrap_err();
        assert!(e.is_not_found(), "{e}");
        let mut host = MockHost::new().with_host_link("eth1", "dummy");
        let e = Ipvlan::create_network(
            &mut host,
            &network(
                "iv",
                "10.8.0.0/24",
                &[("parent", "eth1"), ("ipvlan_mode", "l9")],
            ),
        )
        .unwrap_err();
        assert!(e.to_string().contains("not one of"), "{e}");
    }
}
