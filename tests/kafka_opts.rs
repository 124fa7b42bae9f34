//! `--kafka-opt key=value` / `--kafka-config FILE` from the command line to
//! the Kafka clients of every command: a bad key, a bad value or a key
//! cryptoflow sets itself is a clear one-line error before anything
//! connects (without the value, which may be a secret); good options reach
//! the live client (shown by a security protocol the test broker does not
//! speak making the same command fail, and by plain options working).
//! That each reaches librdkafka's own configuration is checked by the unit
//! tests in `src/kafka/mod.rs`, which read it back from librdkafka.

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

fn cryptoflow(args: &[&str]) -> (Option<i32>, String, Duration) {
    let t0 = Instant::now();
    let out = Command::new(common::BIN).args(args).output().unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
        t0.elapsed(),
    )
}

#[test]
fn bad_kafka_options_are_clear_errors_before_connecting() {
    let secret = "hunter2-secret-value";
    for (args, want) in [
        (
            vec!["--kafka-opt", "no.such.property=1"],
            "kafka option `no.such.property`: No such configuration property",
        ),
        (
            vec!["--kafka-opt", &format!("security.protocol={secret}")],
            "kafka option `security.protocol`: Invalid value",
        ),
        (
            vec!["--kafka-opt", "bootstrap.servers=elsewhere:9092"],
            "kafka option `bootstrap.servers`: set by cryptoflow itself",
        ),
        (vec!["--kafka-opt", "sasl.password"], "expected key=value"),
    ] {
        // Every command that talks to Kafka takes the options; none gets far.
        for command in [
            vec!["topic", "create", "t", "--brokers", "127.0.0.1:1"],
            vec!["run", "--brokers", "127.0.0.1:1", "--no-http"],
            vec!["produce", "--brokers", "127.0.0.1:1", "{}"],
        ] {
            let mut all = command.clone();
            all.extend(args.iter().copied());
            let (code, stderr, took) = cryptoflow(&all);
            assert_eq!(code, Some(1), "{all:?}: {stderr}");
            let line = stderr
                .lines()
                .find(|l| l.starts_with("Error:"))
                .unwrap_or("");
            assert!(line.contains(want), "{all:?}: {stderr}");
            assert!(!stderr.contains(secret), "the value leaks: {stderr}");
            assert!(
                took < Duration::from_secs(5),
                "{all:?} tried to connect first"
            );
        }
    }
    // A properties file works the same way.
    let dir = common::temp_dir("cryptoflow-kafka-opts");
    let file = dir.join("client.properties");
    std::fs::write(&file, "# SASL\nsasl.username=alice\nno.such.property=2\n").unwrap();
    let (code, stderr, _) = cryptoflow(&[
        "topic",
        "create",
        "t",
        "--brokers",
        "127.0.0.1:1",
        "--kafka-config",
        file.to_str().unwrap(),
    ]);
    assert_eq!(code, Some(1));
    assert!(stderr.contains("no.such.property"), "{stderr}");
}

#[test]
fn good_kafka_options_reach_the_live_clients() {
    let dir = common::temp_dir("cryptoflow-kafka-opts");
    let (_broker, brokers) = common::broker(&dir);
    let file = dir.join("client.properties");
    std::fs::write(
        &file,
        "client.id=cryptoflow-ops\nsocket.keepalive.enable=true\n",
    )
    .unwrap();
    let (code, stderr, _) = cryptoflow(&[
        "topic",
        "create",
        "ok-topic",
        "--brokers",
        &brokers,
        "--kafka-config",
        file.to_str().unwrap(),
        "--kafka-opt",
        "client.id=cryptoflow-test",
    ]);
    assert_eq!(code, Some(0), "{stderr}");
    // SASL on a broker that has no SASL listener: the same command fails,
    // so the setting was in the client that connected.
    let (code, stderr, _) = cryptoflow(&[
        "topic",
        "create",
        "sasl-topic",
        "--brokers",
        &brokers,
        "--kafka-opt",
        "security.protocol=sasl_plaintext",
        "--kafka-opt",
        "sasl.mechanisms=PLAIN",
        "--kafka-opt",
        "sasl.username=alice",
        "--kafka-opt",
        "sasl.password=hunter2-secret-value",
    ]);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(!stderr.contains("hunter2-secret-value"), "{stderr}");
}
