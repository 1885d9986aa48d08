//! Inference on dedicated worker threads fed by a bounded queue, with dynamic batching: a
//! worker takes the first waiting image, then keeps collecting until the batch is full or
//! `max_wait` has passed, and grades the batch in one pass per scene/profile.

use shotgrade::{GradeOptions, Grader, Row, Source};
use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, TrySendError, sync_channel};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};
use tokio::sync::oneshot;

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

/// Counters the metrics endpoint reads.
#[derive(Debug, Default)]
pub struct BatchStats {
    /// Images waiting in the queue now.
    pub depth: AtomicUsize,
    pub images: AtomicUsize,
    pub batches: AtomicUsize,
    /// Sum of batch sizes, for the mean batch size.
    pub batched_images: AtomicUsize,
    /// Total inference time in microseconds.
    pub inference_micros: AtomicUsize,
}

/// The queue's sending side; cloning shares the queue. Dropping every handle stops the
/// workers once they have finished what was queued.
#[derive(Clone)]
pub struct Batcher {
    tx: SyncSender<Job>,
    stats: Arc<BatchStats>,
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
    /// Starts the workers; returns the queue handle and the workers' join handles.
    pub fn start(grader: Arc<Grader>, settings: BatchSettings) -> (Self, Vec<JoinHandle<()>>) {
        let (tx, rx) = sync_channel::<Job>(settings.queue_capacity.max(1));
        let rx = Arc::new(Mutex::new(rx));
        let stats = Arc::new(BatchStats::default());
        let workers = (0..settings.workers.max(1))
            .map(|i| {
                let (rx, grader, stats) = (rx.clone(), grader.clone(), stats.clone());
                std::thread::Builder::new()
                    .name(format!("shotgrade-infer-{i}"))
                    .spawn(move || worker(&rx, &grader, &stats, settings))
                    .expect("cannot start an inference thread")
            })
            .collect();
        (
            Batcher {
                tx,
                stats,
                capacity: settings.queue_capacity.max(1),
            },
            workers,
        )
    }

    /// Queues a job without waiting.
    pub fn submit(&self, job: Job) -> Result<(), SubmitError> {
        self.stats.depth.fetch_add(1, Ordering::SeqCst);
        match self.tx.try_send(job) {
            Ok(()) => Ok(()),
            Err(e) => {
                self.stats.depth.fetch_sub(1, Ordering::SeqCst);
                Err(match e {
                    TrySendError::Full(_) => SubmitError::Full,
                    TrySendError::Disconnected(_) => SubmitError::Closed,
                })
            }
        }
    }

    pub fn stats(&self) -> &BatchStats {
        &self.stats
    }

    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Whether the queue is (nearly) full: the readiness probe fails then.
    pub fn saturated(&self) -> bool {
        self.stats.depth.load(Ordering::SeqCst) * 10 >= self.capacity * 9
    }
}

fn worker(rx: &Mutex<Receiver<Job>>, grader: &Grader, stats: &BatchStats, settings: BatchSettings) {
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
        stats.depth.fetch_sub(batch.len(), Ordering::SeqCst);
        let started = Instant::now();
        let n = batch.len();
        let mut groups: HashMap<GradeOptions, Vec<Job>> = HashMap::new();
        for job in batch {
            groups.entry(job.options.clone()).or_default().push(job);
        }
        for (options, mut jobs) in groups {
            let sources: Vec<Source> = jobs
                .iter_mut()
                .map(|j| Source::Bytes {
                    name: j.name.clone(),
                    bytes: std::mem::take(&mut j.bytes),
                })
                .collect();
            let rows = grader.grade(&sources, &options);
            for (job, row) in jobs.into_iter().zip(rows) {
                // The client may have gone away (timeout, disconnect): nothing to do then.
                let _ = job.reply.send(row);
            }
        }
        stats.images.fetch_add(n, Ordering::Relaxed);
        stats.batches.fetch_add(1, Ordering::Relaxed);
        stats.batched_images.fetch_add(n, Ordering::Relaxed);
        stats
            .inference_micros
            .fetch_add(started.elapsed().as_micros() as usize, Ordering::Relaxed);
    }
}
