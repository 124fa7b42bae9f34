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

mod pacing {
    use std::collections::{BTreeMap, BTreeSet, VecDeque};
    use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
    use std::sync::{Arc, Mutex};

    use timely::dataflow::operators::{Inspect, Probe, ToStream};

    use super::*;
    use crate::sim::{SimConfig, Simulator};
    use crate::tick::Position;

    const START: u64 = 1_700_000_000_000;
    const BAR_MS: u64 = 1_000;
    const AHEAD_MS: u64 = 5_000;

    /// Partition 0's records; partition 1 is empty and reported ended on
    /// every poll, as a Kafka reader reports an empty partition. It turns
    /// idle only once the clock has moved on, so while the clock stands
    /// still the whole of partition 0 is read with time held at the start.
    struct HeldBack {
        records: VecDeque<Record>,
        drained: Arc<AtomicBool>,
        finished: Arc<AtomicBool>,
    }

    impl RecordReader for HeldBack {
        fn partitions(&self) -> Vec<i32> {
            vec![0, 1]
        }

        fn poll(&mut self, max: usize, out: &mut Vec<SourceEvent>) -> Result<(), String> {
            let n = max.min(self.records.len());
            out.extend(self.records.drain(..n).map(SourceEvent::Record));
            out.push(SourceEvent::PartitionEof(1));
            if self.records.is_empty() {
                self.drained.store(true, Ordering::SeqCst);
            }
            Ok(())
        }

        fn finished(&self) -> bool {
            self.finished.load(Ordering::SeqCst)
        }
    }

    fn records(minutes: u64) -> Vec<Record> {
        Simulator::new(SimConfig::default_market(3, START))
            .take_while(|t| t.ts_ms < START + minutes * 60_000)
            .enumerate()
            .map(|(i, t)| Record {
                pos: Position {
                    partition: 0,
                    offset: i as i64,
                },
                payload: t.to_json().into_bytes(),
            })
            .collect()
    }

    /// Runs the source over `records`; with `release_by_idleness` the
    /// held-back partition turns idle after everything was read, otherwise
    /// the input ends with time still held at the start. Returns the bar
    /// ends sent at each timely time, and the trades they hold.
    fn released(
        records: Vec<Record>,
        release_by_idleness: bool,
    ) -> (BTreeMap<u64, BTreeSet<u64>>, u64) {
        let sent: Arc<Mutex<Vec<(u64, u64, u32)>>> = Arc::default();
        let out = sent.clone();
        timely::execute_directly(move |worker| {
            let now = Arc::new(AtomicU64::new(START + 86_400_000));
            let finished = Arc::new(AtomicBool::new(false));
            let drained = Arc::new(AtomicBool::new(false));
            let mut released = false;
            let clock_now = now.clone();
            let clock: Clock = Arc::new(move || clock_now.load(Ordering::SeqCst));
            let reader = HeldBack {
                records: records.clone().into(),
                drained: drained.clone(),
                finished: finished.clone(),
            };
            let probe = ProbeHandle::new();
            worker.dataflow::<u64, _, _>(|scope| {
                let restore = Vec::<Restored>::new().to_stream(scope);
                let config = SourceConfig::new()
                    .with_clock(clock)
                    .with_idle_lag_ms(None)
                    .with_max_ahead_ms(Some(AHEAD_MS));
                let (partials, _, _) = tick_source(
                    scope,
                    "source",
                    reader,
                    restore,
                    config,
                    BAR_MS,
                    Some(probe.clone()),
                    None,
                );
                let out = out.clone();
                partials
                    .inspect_core(move |event| {
                        if let Ok((stamp, data)) = event {
                            let t = *stamp.expect_singleton();
                            let mut out = out.lock().unwrap();
                            out.extend(data.iter().map(|p| (t, p.end_ms, p.trades)));
                        }
                    })
                    .probe_with(&probe);
            });
            let total = records.len() as u64;
            let mut steps = 0u64;
            let (mut last_traded, mut quiet) = (0u64, 0u64);
            while !probe.done() {
                worker.step();
                steps += 1;
                let traded: u64 = out.lock().unwrap().iter().map(|s| u64::from(s.2)).sum();
                if !released && drained.load(Ordering::SeqCst) {
                    released = true;
                    if release_by_idleness {
                        now.fetch_add(2_000, Ordering::SeqCst);
                    } else {
                        finished.store(true, Ordering::SeqCst);
                    }
                }
                // The rest (bars the watermark has not passed) leaves
                // when the input ends.
                if traded != last_traded {
                    (last_traded, quiet) = (traded, 0);
                }
                quiet += 1;
                if released && (traded == total || quiet > 10_000) {
                    finished.store(true, Ordering::SeqCst);
                }
                assert!(
                    steps < 1_000_000,
                    "the source never finished: {traded} of {total} trades sent"
                );
            }
        });
        let sent = sent.lock().unwrap();
        let mut by_time: BTreeMap<u64, BTreeSet<u64>> = BTreeMap::new();
        for (t, end, _) in sent.iter() {
            assert!(t < end, "a partial at {t} for the bar ending {end}");
            by_time.entry(*t).or_default().insert(*end);
        }
        (by_time, sent.iter().map(|s| u64::from(s.2)).sum())
    }

    #[test]
    fn a_partition_holding_time_back_does_not_release_the_whole_input_at_once() {
        let input = records(20);
        for release_by_idleness in [true, false] {
            let (by_time, traded) = released(input.clone(), release_by_idleness);
            assert_eq!(traded, input.len() as u64, "every trade is sent once");
            let widest = by_time.values().map(BTreeSet::len).max().unwrap_or(0);
            assert!(
                widest as u64 <= AHEAD_MS / BAR_MS + 1,
                "{widest} bars released at one time (idleness: {release_by_idleness})"
            );
            assert!(by_time.len() >= 150, "{} times", by_time.len());
        }
    }
}
