//! Inference on dedicated worker threads fed by a bounded queue, with dynamic batching: a
//! worker takes the first waiting image, then keeps collecting until the batch is full or
//! `max_wait` has passed, and grades the batch in one pass per scene/profile.

use shotgrade::{GradeOptions, Grader, Row, Source};
use std::collections::HashMap;
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, TrySendError, sync_channel};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};
use tokio::sync::oneshot;

use crate::metrics::Metrics;

/// Sizes of the queue and the batches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchSettings {
    /// Images that may wait; more are refused (HTTP 503) instead of queueing without bound.
    pub queue_capacity: usize,
    /// Most images graded in one pass.
    pub max_batch: usize,
    /// How long a worker waits for more images after the first one.
    pub max_wait: Duration,
    /// Inference threads (each runs whole batches; the networks themselves use all cores).
    pub workers: usize,
}

impl Default for BatchSettings {
    fn default() -> Self {
        BatchSettings {
            queue_capacity: 64,
            max_batch: 16,
            max_wait: Duration::from_millis(5),
            workers: 1,
        }
    }
}

/// One image waiting to be graded.
pub struct Job {
    pub name: String,
    pub bytes: Vec<u8>,
    pub options: GradeOptions,
    pub reply: oneshot::Sender<Row>,
}

/// The queue's sending side; cloning shares the queue. Dropping every handle stops the
/// workers once they have finished what was queued.
#[derive(Clone)]
pub struct Batcher {
    tx: SyncSender<Job>,
    metrics: Arc<Metrics>,
    capacity: usize,
}

/// Why a job was not queued.
#[derive(Debug, PartialEq, Eq)]
pub enum SubmitError {
    /// The queue is full: try again later.
    Full,
    /// The workers have stopped.
    Closed,
}

impl Batcher {
    /// Starts the workers; returns the queue handle and the workers' join handles. The
    /// workers record queue depth, batch sizes and inference time in `metrics`.
    pub fn start(
        grader: Arc<Grader>,
        settings: BatchSettings,
        metrics: Arc<Metrics>,
    ) -> (Self, Vec<JoinHandle<()>>) {
        let (tx, rx) = sync_channel::<Job>(settings.queue_capacity.max(1));
        let rx = Arc::new(Mutex::new(rx));
        let workers = (0..settings.workers.max(1))
            .map(|i| {
                let (rx, grader, metrics) = (rx.clone(), grader.clone(), metrics.clone());
                std::thread::Builder::new()
                    .name(format!("shotgrade-infer-{i}"))
                    .spawn(move || worker(&rx, &grader, &metrics, settings))
                    .expect("cannot start an inference thread")
            })
            .collect();
        (
            Batcher {
                tx,
                metrics,
                capacity: settings.queue_capacity.max(1),
            },
            workers,
        )
    }

    /// Queues a job without waiting.
    pub fn submit(&self, job: Job) -> Result<(), SubmitError> {
        self.metrics.queue_depth_add(1);
        match self.tx.try_send(job) {
            Ok(()) => Ok(()),
            Err(e) => {
                self.metrics.queue_depth_add(-1);
                Err(match e {
                    TrySendError::Full(_) => SubmitError::Full,
                    TrySendError::Disconnected(_) => SubmitError::Closed,
                })
            }
        }
    }

    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Whether the queue is (nearly) full: the readiness probe fails then.
    pub fn saturated(&self) -> bool {
        self.metrics.queue_depth().max(0) as usize * 10 >= self.capacity * 9
    }
}

fn worker(rx: &Mutex<Receiver<Job>>, grader: &Grader, metrics: &Metrics, settings: BatchSettings) {
    loop {
        // Hold the lock while collecting one batch, so batches are not split between workers.
        let batch = {
            let Ok(rx) = rx.lock() else { return };
            let Ok(first) = rx.recv() else { return };
            let mut batch = vec![first];
            let deadline = Instant::now() + settings.max_wait;
            while batch.len() < settings.max_batch.max(1) {
                let left = deadline.saturating_duration_since(Instant::now());
                match rx.recv_timeout(left) {
                    Ok(job) => batch.push(job),
                    Err(RecvTimeoutError::Timeout | RecvTimeoutError::Disconnected) => break,
                }
            }
            batch
        };
        metrics.queue_depth_add(-(batch.len() as i64));
        // A client that timed out or disconnected has dropped its receiver: skip its image
        // instead of spending inference on an answer nobody reads.
        let (batch, abandoned): (Vec<Job>, Vec<Job>) =
            batch.into_iter().partition(|j| !j.reply.is_closed());
        metrics.count_images("abandoned", abandoned.len());
        if batch.is_empty() {
            continue;
        }
        let started = Instant::now();
        let n = batch.len();
        let mut groups: HashMap<GradeOptions, Vec<Job>> = HashMap::new();
        for job in batch {
            groups.entry(job.options.clone()).or_default().push(job);
        }
        let mut answers = Vec::with_capacity(n);
        for (options, mut jobs) in groups {
            let sources: Vec<Source> = jobs
                .iter_mut()
                .map(|j| Source::Bytes {
                    name: j.name.clone(),
                    bytes: std::mem::take(&mut j.bytes),
                })
                .collect();
            let rows = grader.grade(&sources, &options);
            answers.extend(jobs.into_iter().map(|j| j.reply).zip(rows));
        }
        // Counted before anyone is answered, so a client that reads /metrics after its
        // response always sees its image.
        let errors = answers.iter().filter(|(_, row)| !row.is_ok()).count();
        metrics.record_batch(n, errors, started.elapsed());
        for (reply, row) in answers {
            // The client may have gone away meanwhile: nothing to do then.
            let _ = reply.send(row);
        }
    }
}
