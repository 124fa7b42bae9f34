//! Snapshots (issue 14): taking them changes no output, every cut holds
//! what the cut means (each operator's state before it and nothing after),
//! and at the same cut the predictor's and the evaluation's state are the
//! same bytes on 1, 2 and 4 workers.
//!
//! The source's and the bars' part of a cut is not: where a partition's
//! reading stands when the source's capability crosses the cut depends on
//! which partitions that source owns and how its reads were batched (the
//! capability is the least watermark of its partitions), and the bars hold
//! the partials that came before the cut. Either way the same ticks are
//! accounted for exactly once (read and held, or left to re-read).

use std::collections::BTreeMap;
use std::sync::Arc;

use dataflows::bars::BarsSnapshot;
use dataflows::harness::run_collect_all;
use dataflows::sim::{SimConfig, Simulator};
use dataflows::snapshot::{decode, Assembled, Entry, Key, Op};
use dataflows::source::{
    partition_of_key, partition_records, PartitionSnapshot, Record, SourceConfig, VecReader,
};
use dataflows::{Delivery, PipelineConfig, SnapshotConfig};

const START: u64 = 1_700_000_000_000;
const NOW: u64 = START + 86_400_000;
const PARTITIONS: i32 = 4;
const LATENESS_MS: u64 = 2_000;
const EVERY_MS: u64 = 60_000;

/// One symbol per partition: an empty partition holds a bounded run's
/// time at its start until the input ends, and no cut completes then.
fn symbols() -> Vec<String> {
    let mut chosen: Vec<String> = Vec::new();
    for i in 0.. {
        let s = format!("S{i}-USD");
        let p = partition_of_key(&s, PARTITIONS);
        if chosen.iter().all(|c| partition_of_key(c, PARTITIONS) != p) {
            chosen.push(s);
        }
        if chosen.len() == PARTITIONS as usize {
            break;
        }
    }
    chosen
}

fn records(minutes: u64) -> Arc<Vec<Record>> {
    let mut cfg = SimConfig::default_market(11, START).with_symbols(&symbols());
    cfg.trades_per_sec = 6.0;
    let payloads = Simulator::new(cfg)
        .take_while(|t| t.ts_ms < START + minutes * 60_000)
        .map(|t| (t.symbol.clone(), t.to_json().into_bytes()));
    Arc::new(partition_records(payloads, PARTITIONS))
}

fn run(
    records: &Arc<Vec<Record>>,
    workers: usize,
    every: Option<u64>,
) -> (Vec<Delivery>, Vec<Assembled>) {
    let records = records.clone();
    let mut source = SourceConfig::new()
        .with_lateness_ms(LATENESS_MS)
        .with_idle_lag_ms(None)
        .with_clock(Arc::new(|| NOW));
    // Small reads, as from a live topic: the capability moves in many steps.
    source.batch = 64;
    let config = PipelineConfig {
        source,
        snapshot: SnapshotConfig { every_ms: every },
        ..PipelineConfig::default()
    };
    run_collect_all(
        workers,
        move |index, peers| Ok(VecReader::for_worker(&records, PARTITIONS, index, peers)),
        config,
    )
    .expect("the run completes")
}

fn of(entries: &[Entry], op: Op) -> Vec<&Entry> {
    entries.iter().filter(|e| e.op == op).collect()
}

#[test]
fn snapshots_change_no_output_mean_their_cut_and_do_not_depend_on_worker_count() {
    let records = records(25);
    let (plain, none) = run(&records, 2, None);
    assert!(none.is_empty(), "no interval, no snapshots");
    let mut runs: Vec<BTreeMap<u64, Vec<Entry>>> = Vec::new();
    for workers in [1, 2, 4] {
        let (deliveries, snapshots) = run(&records, workers, Some(EVERY_MS));
        assert!(
            deliveries == plain,
            "{workers} workers: taking snapshots changed the output"
        );
        let cuts: Vec<u64> = snapshots.iter().map(|s| s.cut).collect();
        assert!(
            cuts.windows(2).all(|w| w[0] < w[1]),
            "{workers} workers: cuts out of order or repeated: {cuts:?}"
        );
        assert!(cuts.iter().all(|c| c % EVERY_MS == 0), "{cuts:?}");
        runs.push(snapshots.into_iter().map(|s| (s.cut, s.entries)).collect());
    }

    // The same cut holds the same predictor and evaluation bytes on any
    // number of workers.
    let common: Vec<u64> = runs[0]
        .keys()
        .filter(|c| runs[1..].iter().all(|r| r.contains_key(c)))
        .copied()
        .collect();
    assert!(common.len() >= 5, "too few cuts in common: {common:?}");
    for cut in &common {
        for (r, workers) in runs[1..].iter().zip([2, 4]) {
            for op in [Op::Predict, Op::Evaluate] {
                assert!(
                    of(&r[cut], op) == of(&runs[0][cut], op),
                    "cut {cut}: {op:?} on {workers} workers differs from 1"
                );
            }
        }
    }

    // What each cut holds is the state at the cut.
    let mut last_offsets: BTreeMap<i32, i64> = BTreeMap::new();
    for (&cut, entries) in &runs[1] {
        let sources = of(entries, Op::Source);
        let partitions: Vec<i32> = sources
            .iter()
            .map(|e| match e.key {
                Key::Partition(p) => p,
                ref k => panic!("source keyed by {k:?}"),
            })
            .collect();
        assert_eq!(partitions, (0..PARTITIONS).collect::<Vec<_>>(), "cut {cut}");
        for e in sources {
            let Key::Partition(p) = e.key else {
                unreachable!()
            };
            let st: PartitionSnapshot = decode(&e.bytes).unwrap();
            // The source crossed the cut with every watermark at or past it,
            let wm = st.max_ts.expect("read before the cut") - LATENESS_MS;
            assert!(st.idle || wm >= cut, "cut {cut}, partition {p}: {st:?}");
            // kept only partials of bars that end after it,
            assert!(
                st.partials.iter().all(|b| b.end_ms > cut),
                "cut {cut}, partition {p}"
            );
            // and resumes reading where a later cut never resumes before.
            let next = st.next_offset.expect("read before the cut");
            assert!(next >= last_offsets.get(&p).copied().unwrap_or(0));
            last_offsets.insert(p, next);
        }
        if cut < START + 2 * EVERY_MS {
            continue; // a cut before the data, or in its first minute
        }
        let bars = of(entries, Op::Bars);
        assert_eq!(bars.len(), 4, "cut {cut}: every symbol has bar state");
        for e in bars {
            let st: BarsSnapshot = decode(&e.bytes).unwrap();
            let (end, _) = st.last.expect("a bar closed before the cut");
            assert!(
                end < cut && cut - end <= 30_000,
                "cut {cut}: last bar {end}"
            );
            assert!(st.open.iter().all(|b| b.end_ms >= cut), "cut {cut}");
        }
        let predict = of(entries, Op::Predict);
        assert_eq!(predict.len(), 4, "cut {cut}");
    }
}
