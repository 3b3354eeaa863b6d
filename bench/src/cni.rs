//! The CNI reference plugins (`bridge` + `host-local`, + `portmap` for
//! published ports), executed plugin by plugin as a CNI runtime does for a
//! conflist: ADD in order with each result passed on as `prevResult`, DEL in
//! reverse order.

use std::path::Path;
use std::time::{Duration, Instant};

use mydocker_tests::{Netns, Sandbox};
use serde_json::{json, Value};

use crate::sandbox::{containers, host_ports, pipe, NsPath};

pub const PLUGIN_DIR: &str = "/usr/lib/cni";

pub fn installed() -> bool {
    Path::new(PLUGIN_DIR).join("bridge").is_file()
}

struct Network {
    plugins: Vec<Value>,
    _data: tempfile::TempDir,
}

impl Network {
    fn new(ports: bool) -> Network {
        let data = tempfile::tempdir().expect("tempdir");
        let mut plugins = vec![json!({
            "type": "bridge", "bridge": "cni0", "isGateway": true, "ipMasq": true,
            "ipam": { "type": "host-local", "subnet": "10.92.0.0/16", "dataDir": data.path() }
        })];
        if ports {
            plugins.push(json!({ "type": "portmap", "capabilities": { "portMappings": true } }));
        }
        Network {
            plugins,
            _data: data,
        }
    }

    fn exec(
        &self,
        sb: &Sandbox,
        command: &str,
        i: usize,
        ns: &NsPath,
        plugin: &Value,
        prev: Option<&Value>,
    ) -> Value {
        let mut conf = plugin.clone();
        conf["cniVersion"] = "1.0.0".into();
        conf["name"] = "benchnet".into();
        if let Some(p) = prev {
            conf["prevResult"] = p.clone();
        }
        if conf["type"] == "portmap" {
            let [a, b] = host_ports(i);
            conf["runtimeConfig"] = json!({ "portMappings": [
                { "hostPort": a, "containerPort": 80, "protocol": "tcp" },
                { "hostPort": b, "containerPort": 81, "protocol": "tcp" }
            ]});
        }
        let ty = conf["type"].as_str().expect("plugin type").to_string();
        let mut cmd = sb.host.command(Path::new(PLUGIN_DIR).join(&ty));
        cmd.env("CNI_COMMAND", command)
            .env("CNI_CONTAINERID", format!("cni{i}"))
            .env("CNI_NETNS", &ns.path)
            .env("CNI_IFNAME", "eth0")
            .env("CNI_PATH", PLUGIN_DIR);
        let out = pipe(cmd, &conf.to_string());
        serde_json::from_slice(&out).unwrap_or(Value::Null)
    }

    fn add(&self, sb: &Sandbox, i: usize, ns: &NsPath) -> (Duration, Value) {
        let t = Instant::now();
        let mut prev: Option<Value> = None;
        for p in &self.plugins {
            prev = Some(self.exec(sb, "ADD", i, ns, p, prev.as_ref()));
        }
        (t.elapsed(), prev.unwrap_or(Value::Null))
    }

    fn del(&self, sb: &Sandbox, i: usize, ns: &NsPath, result: &Value) -> Duration {
        let t = Instant::now();
        for p in self.plugins.iter().rev() {
            self.exec(sb, "DEL", i, ns, p, Some(result));
        }
        t.elapsed()
    }
}

/// `reps` ADD + DEL pairs, one fresh container namespace each.
pub fn connect_disconnect(
    sb: &Sandbox,
    reps: usize,
    ports: bool,
) -> (Vec<Duration>, Vec<Duration>) {
    let net = Network::new(ports);
    let (mut up, mut down) = (Vec::new(), Vec::new());
    for i in 0..reps {
        let c = Netns::new();
        let ns = NsPath::of(&c);
        let (t, result) = net.add(sb, i, &ns);
        up.push(t);
        down.push(net.del(sb, i, &ns, &result));
    }
    let _ = sb.host.run(&["ip", "link", "del", "cni0"]);
    (up, down)
}

/// `n` containers added one after another (2 ports each), all kept.
pub fn scale(sb: &Sandbox, n: usize) -> Vec<Duration> {
    let net = Network::new(true);
    let containers = containers(n);
    let mut times = Vec::new();
    let mut results = Vec::new();
    for (i, (_, ns)) in containers.iter().enumerate() {
        let (t, r) = net.add(sb, i, ns);
        times.push(t);
        results.push(r);
    }
    for (i, ((_, ns), r)) in containers.iter().zip(&results).enumerate() {
        net.del(sb, i, ns, r);
    }
    let _ = sb.host.run(&["ip", "link", "del", "cni0"]);
    times
}
