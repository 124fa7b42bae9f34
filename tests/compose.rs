//! docker-compose.yml cannot run here (no Docker engine); parse it and check
//! that the cluster it describes is consistent with deploy/hosts.

mod common;

#[test]
fn compose_file_describes_a_consistent_cluster() {
    let out = common::run_python("check_compose.py", &[env!("CARGO_MANIFEST_DIR")]);
    assert_eq!(out.trim(), "ok");
}
