//! docker-compose.yml, checked two ways without a Docker engine: its shape
//! (the cluster layout matches deploy/hosts), and — parsed and validated by
//! the real Compose implementation (`docker-compose config`) — every
//! cryptoflow service's command run here as written, against a local
//! broker: service host names and container paths are mapped to loopback
//! ports and temporary directories, nothing else is changed. Process 0 must
//! serve predictions-bearing health with process 1 reported healthy, and
//! every process must stop cleanly on SIGTERM.

mod common;

use std::collections::BTreeMap;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

#[test]
fn compose_file_describes_a_consistent_cluster() {
    let out = common::run_python("check_compose.py", &[env!("CARGO_MANIFEST_DIR")]);
    assert_eq!(out.trim(), "ok");
}

/// Maps `host:port` of a service (or `0.0.0.0:port` inside service
/// `owner`) to one loopback address per (service, port).
struct Ports(BTreeMap<(String, String), String>);

impl Ports {
    fn local(&mut self, service: &str, port: &str) -> String {
        self.0
            .entry((service.to_string(), port.to_string()))
            .or_insert_with(|| format!("127.0.0.1:{}", cryptoflow::broker::free_port().unwrap()))
            .clone()
    }
}

#[test]
fn the_compose_services_run_as_written() {
    let root = env!("CARGO_MANIFEST_DIR");
    let services: serde_json::Value =
        serde_json::from_str(common::run_python("compose_services.py", &[root]).trim()).unwrap();
    let dir = common::temp_dir("cryptoflow-compose");
    let (_broker, brokers) = common::broker(&dir);
    let names: Vec<String> = services.as_object().unwrap().keys().cloned().collect();
    let mut ports = Ports(BTreeMap::new());
    ports
        .0
        .insert(("kafka".into(), "9092".into()), brokers.clone());

    // The `topics` service's own command, with Kafka's tool swapped for ours.
    let topics: Vec<String> =
        serde_json::from_value(services["topics"]["command"].clone()).unwrap();
    let arg = |flag: &str| topics[topics.iter().position(|a| a == flag).unwrap() + 1].clone();
    let created = Command::new(common::BIN)
        .args(["topic", "create", &arg("--topic"), "--brokers", &brokers])
        .args(["--partitions", &arg("--partitions")])
        .output()
        .unwrap();
    common::assert_ok(&created, "topic create");

    // Container paths: named volumes become directories, bind mounts of the
    // hostfile a rewritten copy with loopback addresses.
    let mut paths: BTreeMap<String, String> = BTreeMap::new();
    let mut children: Vec<(String, Child)> = Vec::new();
    let order = ["cryptoflow-1", "cryptoflow-0", "feed"];
    for name in order {
        let s = &services[name];
        for v in s["volumes"].as_array().unwrap() {
            let v = v.as_str().unwrap();
            let parts: Vec<&str> = v.split(':').collect();
            let (src, dst) = (parts[0], parts[1]);
            let local = if src.starts_with('/') || src.starts_with('.') {
                let text = std::fs::read_to_string(src).unwrap();
                let rewritten: String = text
                    .lines()
                    .map(|l| match l.trim().split_once(':') {
                        Some((host, port))
                            if !l.trim().starts_with('#') && names.contains(&host.to_string()) =>
                        {
                            format!("{}\n", ports.local(host, port))
                        }
                        _ => format!("{l}\n"),
                    })
                    .collect();
                let file = dir.join(format!("{name}-hosts"));
                std::fs::write(&file, rewritten).unwrap();
                file
            } else {
                let d = dir.join(format!("volume-{src}"));
                std::fs::create_dir_all(&d).unwrap();
                d
            };
            paths.insert(dst.to_string(), local.to_str().unwrap().to_string());
        }
        let command: Vec<String> = serde_json::from_value(s["command"].clone()).unwrap();
        let args: Vec<String> = command
            .iter()
            .map(|a| {
                if let Some(p) = paths.get(a) {
                    return p.clone();
                }
                match a.split_once(':') {
                    Some(("0.0.0.0", port)) => ports.local(name, port),
                    Some((host, port)) if names.contains(&host.to_string()) => {
                        ports.local(host, port)
                    }
                    _ => a.clone(),
                }
            })
            .collect();
        let child = Command::new(common::BIN)
            .args(&args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.join(format!("{name}.log"))).unwrap())
            .spawn()
            .unwrap();
        children.push((name.to_string(), child));
    }
    let http = ports.local("cryptoflow-0", "8080");
    let healthy = common::wait_for(Duration::from_secs(90), || {
        let (status, body) = common::http_get(&http, "/api/health").ok()?;
        let v: serde_json::Value = serde_json::from_str(&body).ok()?;
        (status == 200 && v["stats"]["ticks"].as_u64()? > 0 && v["cluster"][0]["status"] == "ok")
            .then_some(v)
    });
    for (_, c) in &children {
        let _ = Command::new("kill")
            .args(["-TERM", &c.id().to_string()])
            .status();
    }
    let logs = || {
        order
            .iter()
            .map(|n| {
                format!(
                    "--- {n}\n{}",
                    std::fs::read_to_string(dir.join(format!("{n}.log"))).unwrap_or_default()
                )
            })
            .collect::<String>()
    };
    let health = healthy.unwrap_or_else(|| {
        panic!(
            "process 0 never reported ticks and a healthy peer:\n{}",
            logs()
        )
    });
    for (name, mut c) in children {
        let status = common::wait_for(Duration::from_secs(30), || c.try_wait().unwrap());
        if status.is_none() {
            let _ = c.kill();
        }
        assert!(
            status.is_some_and(|s| s.success()),
            "{name} did not stop cleanly:\n{}",
            logs()
        );
    }
    assert_eq!(health["cluster"][0]["report"]["process"], 1, "{health}");
    let _ = std::fs::remove_dir_all(&dir);
}
