//! macvlan networks: each container gets a macvlan of a host link (`-o
//! parent=`), created directly inside its namespace as `eth0`, with its own
//! MAC on the parent's segment. No bridge, no NAT. Written only against the
//! SDK, as a third party would.

use mydocker_driver_sdk::*;

pub struct Macvlan;

const PARENT: &str = "parent";
const MODE: &str = "macvlan_mode";
const MODES: &[&str] = &["bridge", "private", "vepa", "passthru"];

fn mode_of(network: &Network) -> Result<MacvlanMode> {
    Ok(match network.options.one_of(MODE, MODES, "bridge")? {
        "private" => MacvlanMode::Private,
        "vepa" => MacvlanMode::Vepa,
        "passthru" => MacvlanMode::Passthru,
        _ => MacvlanMode::Bridge,
    })
}

impl Driver for Macvlan {
    fn info() -> Info {
        Info {
            name: "macvlan".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            description: "containers as macvlan devices of a host link (no bridge, no NAT)".into(),
            capabilities: vec![capability::MACVLAN.into()],
            options: vec![
                (
                    PARENT.into(),
                    "host link the macvlans hang off (required)".into(),
                ),
                (
                    MODE.into(),
                    "bridge (default), private, vepa or passthru".into(),
                ),
            ],
        }
    }

    fn create_network(host: &mut dyn Host, network: &Network) -> Result<Data> {
        network.options.check_known("macvlan", &[PARENT, MODE])?;
        let parent = network.options.require(PARENT)?;
        let mode = mode_of(network)?;
        if host.get_link(Netns::Host, parent)?.is_none() {
            return Err(Error::NotFound(format!(
                "parent link '{parent}' does not exist on the host"
            )));
        }
        // passthru gives the parent to a single macvlan: two networks
        // sharing it in that mode could never both be used.
        for other in host.driver_networks()? {
            if other.options.get(PARENT) == Some(parent)
                && (mode == MacvlanMode::Passthru || mode_of(&other)? == MacvlanMode::Passthru)
            {
                return Err(Error::InvalidOption(format!(
                    "parent '{parent}' is already used by macvlan network {} and passthru mode needs it alone",
                    other.name
                )));
            }
        }
        Ok(Data::new().with(PARENT, parent))
    }

    fn delete_network(_host: &mut dyn Host, _network: &Network) -> Result<()> {
        // Nothing lives on the host between containers.
        Ok(())
    }

    fn connect(host: &mut dyn Host, endpoint: &Endpoint) -> Result<Joined> {
        let parent = endpoint.network.data.require(PARENT)?;
        let mode = mode_of(&endpoint.network)?;
        host.create_macvlan(&endpoint.interface, parent, mode)?;
        configure_container_interface(host, endpoint)?;
        Ok(Joined::default())
    }

    fn disconnect(host: &mut dyn Host, endpoint: &Endpoint) -> Result<()> {
        // Gone already if the container's namespace died with it.
        ignore_not_found(host.delete_link(Netns::Container, &endpoint.interface))
    }
}

export_driver!(Macvlan);

#[cfg(test)]
mod tests {
    use super::*;
    use mydocker_driver_sdk::mock::{endpoint, network, MockHost, Op};

    #[test]
    fn connect_creates_macvlan_inside_the_container() {
        let mut host = MockHost::new().with_host_link("eth1", "dummy");
        let mut net = network(
            "mv",
            "10.5.0.0/24",
            &[("parent", "eth1"), ("macvlan_mode", "bridge")],
        );
        net.data = Macvlan::create_network(&mut host, &net).unwrap();
        assert!(
            host.ops().is_empty(),
            "create touches nothing: {:?}",
            host.ops()
        );
        let ep = endpoint(&net, "c1", "eth0", 2);
        Macvlan::connect(&mut host, &ep).unwrap();
        assert_eq!(
            host.ops(),
            [
                Op::CreateMacvlan {
                    name: "eth0".into(),
                    parent: "eth1".into(),
                    mode: MacvlanMode::Bridge
                },
                Op::AddAddress(
                    Netns::Container,
                    "eth0".into(),
                    "10.5.0.2/24".parse().unwrap()
                ),
                Op::SetUp(Netns::Container, "eth0".into()),
                Op::SetUp(Netns::Container, "lo".into()),
                Op::AddDefaultRoute(Netns::Container, "10.5.0.1".parse().unwrap()),
            ]
        );
        Macvlan::disconnect(&mut host, &ep).unwrap();
        assert!(!host.has_link(Netns::Container, "eth0"));
    }

    #[test]
    fn bad_options_are_refused() {
        let mut host = MockHost::new().with_host_link("eth1", "dummy");
        let err = |opts: &[(&str, &str)], host: &mut MockHost| {
            Macvlan::create_network(host, &network("mv", "10.5.0.0/24", opts))
                .unwrap_err()
                .to_string()
        };
        assert!(err(&[], &mut host).contains("'parent' is required"));
        assert!(err(&[("parent", "nope0")], &mut host).contains("'nope0' does not exist"));
        assert!(
            err(&[("parent", "eth1"), ("macvlan_mode", "weird")], &mut host).contains("not one of")
        );
        assert!(err(&[("parent", "eth1"), ("colour", "red")], &mut host)
            .contains("unknown option 'colour'"));
        let mut other = network(
            "first",
            "10.6.0.0/24",
            &[("parent", "eth1"), ("macvlan_mode", "passthru")],
        );
        other.data = Data::new().with("parent", "eth1");
        let mut host = MockHost::new()
            .with_host_link("eth1", "dummy")
            .with_networks(vec![other]);
        assert!(err(
            &[("parent", "eth1"), ("macvlan_mode", "passthru")],
            &mut host
        )
        .contains("already used by macvlan network first"));
    }
}
