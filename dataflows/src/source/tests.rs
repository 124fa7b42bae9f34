use super::*;

#[test]
fn ownership_is_a_partition_of_partitions() {
    for peers in 1..6 {
        for p in 0..16 {
            let owners = (0..peers).filter(|i| owns_partition(p, *i, peers)).count();
            assert_eq!(owners, 1);
        }
    }
    assert!(!owns_partition(-1, 0, 1));
}
