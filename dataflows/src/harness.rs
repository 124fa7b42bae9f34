//! Runs the pipeline to completion over records held in memory, on `n`
//! worker threads of this process, and returns every delivery. Used by the
//! tests (worker-count determinism, look-ahead) and the benchmarks; it is
//! the same graph `cryptoflow run` builds, with a [`VecReader`] in place of
//! Kafka.

use std::sync::{Arc, Mutex};

use crate::graph::{build, Delivery, OutputSink, PipelineConfig};
use crate::source::{Record, VecReader};

struct Collect(Arc<Mutex<Vec<Delivery>>>);

impl OutputSink for Collect {
    fn deliver(&mut self, delivery: Delivery) {
        self.0.lock().expect("collector lock").push(delivery);
    }
}

/// Runs `records` (spread over `num_partitions`) through the pipeline on
/// `workers` threads; returns the deliveries in time order.
pub fn run_in_memory(
    records: Arc<Vec<Record>>,
    num_partitions: i32,
    workers: usize,
    config: PipelineConfig,
) -> Result<Vec<Delivery>, String> {
    let collected = Arc::new(Mutex::new(Vec::new()));
    let sink_target = collected.clone();
    let guards = timely::execute(timely::Config::process(workers), move |worker| {
        let (index, peers) = (worker.index(), worker.peers());
        let reader = VecReader::for_worker(&records, num_partitions, index, peers);
        let sink = Collect(sink_target.clone());
        let config = config.clone();
        let probe = worker.dataflow(|scope| build(scope, reader, config, sink));
        worker.step_while(|| !probe.done());
    })?;
    guards.join().into_iter().collect::<Result<Vec<()>, String>>()?;
    let mut out = std::mem::take(&mut *collected.lock().map_err(|e| e.to_string())?);
    out.sort_by_key(|d| d.time);
    Ok(out)
}
