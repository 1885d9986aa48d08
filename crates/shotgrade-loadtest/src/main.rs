//! `shotgrade-loadtest`: drives a running `shotgrade serve` with real images for a fixed time
//! at each of several concurrencies and reports images/s, latency percentiles, status counts
//! and the server's peak memory. Each simulated client is a thread with its own keep-alive
//! connection that posts the next image as soon as the previous answer arrived (closed loop).
//!
//! Loopback only: the URL must point at this machine, so the tool cannot be aimed at someone
//! else's service by accident.

use anyhow::{Context, Result, bail, ensure};
use clap::Parser;
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    /// Base URL of the server (loopback addresses only).
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    url: String,
    /// Folder of images to send (JPEG, PNG, WebP files; sent round-robin).
    #[arg(long, value_name = "DIR")]
    images: PathBuf,
    /// Send every file in the folder, whatever its name: a soak mixes broken and oversized
    /// uploads in with the photos.
    #[arg(long)]
    all_files: bool,
    /// Concurrent clients, one run per value.
    #[arg(long, value_delimiter = ',', default_value = "1,8,32")]
    concurrency: Vec<usize>,
    /// Seconds of measurement per run.
    #[arg(long, default_value_t = 60.0)]
    duration: f64,
    /// Seconds of unmeasured load before each run (warms caches and the batcher).
    #[arg(long, default_value_t = 3.0)]
    warmup: f64,
    /// The server's process id: its resident memory is sampled during each run (Linux).
    #[arg(long)]
    server_pid: Option<u32>,
    /// Bearer key, when the server requires one.
    #[arg(long, env = "SHOTGRADE_API_KEY", hide_env_values = true)]
    api_key: Option<String>,
    /// Also write the results as JSON to this file.
    #[arg(long, value_name = "FILE")]
    json: Option<PathBuf>,
}

/// What one run measured.
#[derive(Debug, Clone, Serialize)]
struct RunResult {
    concurrency: usize,
    seconds: f64,
    requests: usize,
    /// Images answered 200 per second.
    images_per_second: f64,
    p50_ms: f64,
    p99_ms: f64,
    max_ms: f64,
    /// Responses by HTTP status.
    statuses: BTreeMap<u16, usize>,
    /// Requests that got no HTTP response at all (connection refused, reset, timeout).
    transport_errors: usize,
    /// The same by file name: a server may close the connection on a body over its limit
    /// before the client has finished sending it, which a soak accepts for those files only.
    transport_errors_by_file: BTreeMap<String, usize>,
    /// Largest server resident set sampled during the run, MiB.
    peak_rss_mib: Option<f64>,
    /// The server's resident set every 10 s of the run (seconds since the start, MiB): a soak
    /// compares minute 30 with minute 5.
    rss_timeline: Vec<(f64, f64)>,
}

/// The `q`-quantile (0–1) of sorted values, nearest rank; `None` when empty.
fn percentile(sorted: &[f64], q: f64) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = (q.clamp(0.0, 1.0) * sorted.len() as f64).ceil() as usize;
    Some(sorted[rank.clamp(1, sorted.len()) - 1])
}

/// Refuses anything but loopback hosts.
fn check_loopback(url: &str) -> Result<()> {
    let rest = url
        .strip_prefix("http://")
        .context("the URL must start with http://")?;
    let authority = rest.split('/').next().unwrap_or_default();
    let host = if let Some(v6) = authority.strip_prefix('[') {
        v6.split(']').next().unwrap_or_default()
    } else {
        authority.rsplit_once(':').map_or(authority, |(h, _)| h)
    };
    let loopback = host == "localhost"
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback());
    ensure!(
        loopback,
        "{url} is not a loopback address: this tool only loads a server on this machine"
    );
    Ok(())
}

/// One file to send: its name and bytes.
type Upload = (String, Vec<u8>);

/// The files to send, sorted by name: images by extension, or with `all_files` every regular
/// file that is not hidden.
fn load_images(dir: &Path, all_files: bool) -> Result<Vec<Upload>> {
    let mut paths: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("cannot read {}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file())
        .filter(|p| {
            let hidden = p
                .file_name()
                .and_then(|n| n.to_str())
                .is_none_or(|n| n.starts_with('.'));
            let image = p.extension().and_then(|e| e.to_str()).is_some_and(|e| {
                ["jpg", "jpeg", "png", "webp", "avif", "heic"]
                    .contains(&e.to_ascii_lowercase().as_str())
            });
            !hidden && (image || all_files)
        })
        .collect();
    paths.sort();
    ensure!(!paths.is_empty(), "no images in {}", dir.display());
    paths
        .iter()
        .map(|p| {
            let bytes = std::fs::read(p).with_context(|| format!("cannot read {}", p.display()))?;
            let name = p
                .file_name()
                .map_or_else(String::new, |n| n.to_string_lossy().into_owned());
            Ok((name, bytes))
        })
        .collect()
}

/// Resident set of a process in MiB, from /proc.
fn rss_mib(pid: u32) -> Option<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let kib: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    Some(kib / 1024.0)
}

/// One request's outcome: which upload, its status (None for a transport error) and latency.
type Sample = (usize, Option<u16>, Duration);

fn post(agent: &ureq::Agent, url: &str, key: Option<&str>, body: &[u8]) -> Option<u16> {
    let mut request = agent.post(url).set("Content-Type", "image/jpeg");
    if let Some(key) = key {
        request = request.set("Authorization", &format!("Bearer {key}"));
    }
    let response = match request.send_bytes(body) {
        Ok(r) => r,
        Err(ureq::Error::Status(_, r)) => r,
        Err(ureq::Error::Transport(_)) => return None,
    };
    let status = response.status();
    // Read the whole body: a response only counts when it arrived completely.
    response.into_string().ok().map(|_| status)
}

/// Runs `clients` closed-loop clients until `stop`; returns every sample.
fn drive(
    args: &Args,
    images: &[Upload],
    clients: usize,
    measure_for: Duration,
    warmup: Duration,
) -> (Vec<Sample>, Duration) {
    let url = format!("{}/v1/score", args.url.trim_end_matches('/'));
    let stop = AtomicBool::new(false);
    let measuring = AtomicBool::new(false);
    let next_image = AtomicU64::new(0);
    let mut measured_for = Duration::ZERO;
    let samples = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..clients)
            .map(|_| {
                let (url, stop, measuring, next_image) = (&url, &stop, &measuring, &next_image);
                scope.spawn(move || {
                    let agent = ureq::AgentBuilder::new()
                        .timeout(Duration::from_secs(120))
                        .build();
                    let mut samples = Vec::new();
                    while !stop.load(Ordering::Relaxed) {
                        let i = next_image.fetch_add(1, Ordering::Relaxed) as usize % images.len();
                        let counted = measuring.load(Ordering::Relaxed);
                        let started = Instant::now();
                        let status = post(&agent, url, args.api_key.as_deref(), &images[i].1);
                        if counted && !stop.load(Ordering::Relaxed) {
                            samples.push((i, status, started.elapsed()));
                        }
                    }
                    samples
                })
            })
            .collect();
        std::thread::sleep(warmup);
        measuring.store(true, Ordering::Relaxed);
        let started = Instant::now();
        std::thread::sleep(measure_for);
        stop.store(true, Ordering::Relaxed);
        measured_for = started.elapsed();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap_or_default())
            .collect::<Vec<_>>()
    });
    (samples, measured_for)
}

fn summarise(
    clients: usize,
    images: &[Upload],
    samples: &[Sample],
    seconds: f64,
    peak_rss_mib: Option<f64>,
    rss_timeline: Vec<(f64, f64)>,
) -> RunResult {
    let mut statuses = BTreeMap::new();
    let mut transport_errors = 0;
    let mut transport_errors_by_file = BTreeMap::new();
    let mut latencies_ms = Vec::with_capacity(samples.len());
    for (i, status, took) in samples {
        match status {
            Some(s) => *statuses.entry(*s).or_insert(0) += 1,
            None => {
                transport_errors += 1;
                let name = images.get(*i).map_or("?", |(n, _)| n.as_str());
                *transport_errors_by_file
                    .entry(name.to_string())
                    .or_insert(0) += 1;
            }
        }
        latencies_ms.push(took.as_secs_f64() * 1000.0);
    }
    latencies_ms.sort_by(f64::total_cmp);
    let ok = statuses.get(&200).copied().unwrap_or(0);
    RunResult {
        concurrency: clients,
        seconds,
        requests: samples.len(),
        images_per_second: ok as f64 / seconds.max(1e-9),
        p50_ms: percentile(&latencies_ms, 0.50).unwrap_or(0.0),
        p99_ms: percentile(&latencies_ms, 0.99).unwrap_or(0.0),
        max_ms: latencies_ms.last().copied().unwrap_or(0.0),
        statuses,
        transport_errors,
        transport_errors_by_file,
        peak_rss_mib,
        rss_timeline,
    }
}

fn main() -> Result<()> {
    let args = Args::parse();
    check_loopback(&args.url)?;
    ensure!(
        args.duration > 0.0 && args.warmup >= 0.0,
        "--duration must be positive"
    );
    if args.concurrency.contains(&0) {
        bail!("--concurrency values must be at least 1");
    }
    let images = load_images(&args.images, args.all_files)?;
    eprintln!(
        "{} images from {}; {} s per run after {} s warm-up",
        images.len(),
        args.images.display(),
        args.duration,
        args.warmup
    );
    let mut results = Vec::new();
    for &clients in &args.concurrency {
        eprintln!("concurrency {clients}…");
        // Sample the server's memory every 100 ms while the run lasts (the peak), and keep
        // one sample every 10 s (the timeline).
        let sampling = AtomicBool::new(true);
        let (samples, measured, (peak, timeline)) = std::thread::scope(|scope| {
            let sampler = scope.spawn(|| {
                let mut peak: Option<f64> = None;
                let mut timeline = Vec::new();
                let started = Instant::now();
                let mut next_point = Duration::ZERO;
                while sampling.load(Ordering::Relaxed) {
                    if let Some(rss) = args.server_pid.and_then(rss_mib) {
                        peak = Some(peak.map_or(rss, |p: f64| p.max(rss)));
                        if started.elapsed() >= next_point {
                            timeline.push((started.elapsed().as_secs_f64().round(), rss));
                            next_point += Duration::from_secs(10);
                        }
                    }
                    std::thread::sleep(Duration::from_millis(100));
                }
                (peak, timeline)
            });
            let (samples, measured) = drive(
                &args,
                &images,
                clients,
                Duration::from_secs_f64(args.duration),
                Duration::from_secs_f64(args.warmup),
            );
            sampling.store(false, Ordering::Relaxed);
            let memory = sampler.join().unwrap_or((None, Vec::new()));
            (samples, measured, memory)
        });
        let result = summarise(
            clients,
            &images,
            &samples,
            measured.as_secs_f64(),
            peak,
            timeline,
        );
        print_row(&result, results.is_empty());
        results.push(result);
    }
    if let Some(path) = &args.json {
        let text = serde_json::to_string_pretty(&results)?;
        std::fs::write(path, text + "\n")
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    Ok(())
}

fn print_row(r: &RunResult, header: bool) {
    if header {
        println!(
            "{:>11} {:>9} {:>9} {:>9} {:>9} {:>9} {:>10}  statuses",
            "concurrency", "requests", "images/s", "p50 ms", "p99 ms", "max ms", "peak MiB"
        );
    }
    let statuses: Vec<String> = r
        .statuses
        .iter()
        .map(|(s, n)| format!("{s}×{n}"))
        .chain((r.transport_errors > 0).then(|| format!("transport×{}", r.transport_errors)))
        .collect();
    println!(
        "{:>11} {:>9} {:>9.1} {:>9.0} {:>9.0} {:>9.0} {:>10}  {}",
        r.concurrency,
        r.requests,
        r.images_per_second,
        r.p50_ms,
        r.p99_ms,
        r.max_ms,
        r.peak_rss_mib.map_or("-".into(), |m| format!("{m:.0}")),
        statuses.join(" ")
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let v: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentile(&v, 0.5), Some(50.0));
        assert_eq!(percentile(&v, 0.99), Some(99.0));
        assert_eq!(percentile(&v, 1.0), Some(100.0));
        assert_eq!(percentile(&v, 0.0), Some(1.0));
        assert_eq!(percentile(&[7.0], 0.99), Some(7.0));
        assert_eq!(percentile(&[], 0.5), None);
    }

    #[test]
    fn only_loopback_urls_are_accepted() {
        for ok in [
            "http://127.0.0.1:8080",
            "http://localhost:1/",
            "http://[::1]:80",
            "http://127.0.0.2",
        ] {
            assert!(check_loopback(ok).is_ok(), "{ok}");
        }
        for bad in [
            "http://10.0.0.1:8080",
            "http://example.com",
            "https://127.0.0.1",
            "127.0.0.1:8080",
        ] {
            assert!(check_loopback(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn missing_or_imageless_folders_are_clear_errors() {
        let missing = load_images(Path::new("/nonexistent/shotgrade-images"), false).unwrap_err();
        assert!(format!("{missing:#}").contains("cannot read /nonexistent/shotgrade-images"));
        let dir = std::env::temp_dir().join(format!("shotgrade-lt-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("mkdir");
        std::fs::write(dir.join("notes.txt"), "not an image").expect("write");
        let empty = load_images(&dir, false).unwrap_err().to_string();
        assert!(empty.contains("no images in"), "{empty}");
        // A soak sends it anyway; hidden files never.
        std::fs::write(dir.join(".complete"), "").expect("write");
        let all = load_images(&dir, true).expect("all files");
        assert_eq!(all, vec![("notes.txt".into(), b"not an image".to_vec())]);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn summary_counts_statuses_and_rates() {
        let ms = Duration::from_millis;
        let images: Vec<Upload> = vec![("a.jpg".into(), vec![1]), ("big.bin".into(), vec![2])];
        let samples = vec![
            (0, Some(200), ms(10)),
            (0, Some(200), ms(30)),
            (0, Some(503), ms(1)),
            (1, None, ms(5)),
        ];
        let r = summarise(8, &images, &samples, 2.0, Some(300.0), vec![(0.0, 250.0)]);
        assert_eq!(r.requests, 4);
        assert_eq!(r.images_per_second, 1.0);
        assert_eq!(r.statuses.get(&503), Some(&1));
        assert_eq!(r.transport_errors, 1);
        assert_eq!(r.transport_errors_by_file.get("big.bin"), Some(&1));
        assert_eq!(r.max_ms, 30.0);
        assert_eq!(r.p50_ms, 5.0);
    }
}
