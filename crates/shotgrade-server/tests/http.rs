//! The real server on 127.0.0.1:0, driven over HTTP: every endpoint and every error status.
//! Untrained weights keep the test independent of the shipped ones (scores are not checked,
//! only the protocol).

use shotgrade::models::{Device, ModelConfigs, Models};
use shotgrade::{Grader, GraderSettings};
use shotgrade_server::{BatchSettings, ServerSettings, serve};
use std::io::Read;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

struct Server {
    addr: SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn start(settings: ServerSettings) -> Server {
    let models = Models::untrained(ModelConfigs::default(), &Device::flex());
    let grader = Arc::new(Grader::new(models, GraderSettings::default()).expect("grader"));
    let (addr_tx, addr_rx) = std::sync::mpsc::channel();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let thread = std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("runtime");
        rt.block_on(async move {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
                .await
                .expect("bind");
            addr_tx
                .send(listener.local_addr().expect("addr"))
                .expect("send");
            serve(listener, grader, settings, async {
                let _ = stop_rx.await;
            })
            .await
            .expect("serve");
        });
    });
    let addr = addr_rx
        .recv_timeout(Duration::from_secs(30))
        .expect("server started");
    Server {
        addr,
        stop: Some(stop_tx),
        thread: Some(thread),
    }
}

fn url(s: &Server, path: &str) -> String {
    format!("http://{}{}", s.addr, path)
}

fn jpeg(w: u32, h: u32) -> Vec<u8> {
    let img = image::RgbImage::from_fn(w, h, |x, y| {
        image::Rgb([(x % 256) as u8, (y % 256) as u8, 128])
    });
    let mut out = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 90)
        .encode_image(&img)
        .expect("encode");
    out
}

/// Status and JSON body of a response, whatever the status.
fn call(result: Result<ureq::Response, ureq::Error>) -> (u16, serde_json::Value, Option<String>) {
    let response = match result {
        Ok(r) => r,
        Err(ureq::Error::Status(_, r)) => r,
        Err(e) => panic!("transport error: {e}"),
    };
    let status = response.status();
    let retry = response.header("retry-after").map(str::to_string);
    let mut body = String::new();
    response
        .into_reader()
        .read_to_string(&mut body)
        .expect("body");
    let json = serde_json::from_str(&body).unwrap_or_else(|e| panic!("not JSON ({e}): {body}"));
    (status, json, retry)
}

fn multipart(parts: &[(&str, &[u8])]) -> (String, Vec<u8>) {
    let boundary = "shotgrade-test-boundary";
    let mut body = Vec::new();
    for (name, bytes) in parts {
        body.extend_from_slice(
            format!(
                "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{name}\"\r\nContent-Type: application/octet-stream\r\n\r\n"
            )
            .as_bytes(),
        );
        body.extend_from_slice(bytes);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}

#[test]
fn health_ready_models_and_unknown_route() {
    let s = start(ServerSettings::default());
    let (status, body, _) = call(ureq::get(&url(&s, "/healthz")).call());
    assert_eq!((status, body["status"].as_str()), (200, Some("ok")));
    let (status, body, _) = call(ureq::get(&url(&s, "/readyz")).call());
    assert_eq!((status, body["status"].as_str()), (200, Some("ready")));
    let (status, body, _) = call(ureq::get(&url(&s, "/v1/models")).call());
    assert_eq!(status, 200);
    assert_eq!(body["background_classes"].as_array().map(Vec::len), Some(5));
    assert!(
        body["profiles"]
            .as_array()
            .is_some_and(|p| p.iter().any(|x| x == "amazon-main"))
    );
    assert!(
        body["scenes"]
            .as_array()
            .is_some_and(|p| p.iter().any(|x| x == "food"))
    );
    let (status, body, _) = call(ureq::get(&url(&s, "/nope")).call());
    assert_eq!((status, body["kind"].as_str()), (404, Some("not_found")));
}

#[test]
fn score_raw_and_multipart_with_scene_and_profile() {
    let s = start(ServerSettings::default());
    let image = jpeg(300, 200);
    let (status, row, _) = call(
        ureq::post(&url(&s, "/v1/score?scene=food&profile=amazon-main"))
            .set("Content-Type", "image/jpeg")
            .send_bytes(&image),
    );
    assert_eq!(status, 200, "{row}");
    assert_eq!(row["status"], "ok");
    assert_eq!(row["scene"], "food");
    assert_eq!(row["profile"]["name"], "amazon-main");
    assert_eq!(row["image"]["width"], 300);

    let (ct, body) = multipart(&[("a.jpg", &image)]);
    let (status, row, _) = call(
        ureq::post(&url(&s, "/v1/score"))
            .set("Content-Type", &ct)
            .send_bytes(&body),
    );
    assert_eq!(
        (status, row["path"].as_str()),
        (200, Some("a.jpg")),
        "{row}"
    );
}

#[test]
fn batch_keeps_order_with_an_error_row_in_place() {
    let s = start(ServerSettings::default());
    let a = jpeg(120, 80);
    let b = b"\xFF\xD8\xFF\xE0 truncated".to_vec();
    let c = jpeg(64, 64);
    let (ct, body) = multipart(&[("a.jpg", &a), ("broken.jpg", &b), ("c.jpg", &c)]);
    let (status, rows, _) = call(
        ureq::post(&url(&s, "/v1/score/batch"))
            .set("Content-Type", &ct)
            .send_bytes(&body),
    );
    assert_eq!(status, 200, "{rows}");
    let rows = rows.as_array().expect("array");
    let paths: Vec<&str> = rows.iter().filter_map(|r| r["path"].as_str()).collect();
    assert_eq!(paths, ["a.jpg", "broken.jpg", "c.jpg"]);
    assert_eq!(rows[1]["status"], "error");
    assert_eq!(rows[1]["error"]["kind"], "corrupt");
    assert_eq!(rows[2]["image"]["width"], 64);
}

#[test]
fn error_statuses_have_json_bodies() {
    let s = start(ServerSettings {
        max_body_bytes: 64 * 1024,
        ..ServerSettings::default()
    });
    // 422: not an image.
    let (status, body, _) =
        call(ureq::post(&url(&s, "/v1/score")).send_bytes(b"hello, not an image"));
    assert_eq!(
        (status, body["kind"].as_str()),
        (422, Some("unsupported_format")),
        "{body}"
    );
    // 413: body over the limit. The server answers without reading the rest, so the client
    // may still be sending when the connection closes (a broken pipe, as the pooled-client
    // test below allows); about one try in six on this machine. A few tries, and one of them
    // must read the JSON 413.
    let big = vec![0u8; 200 * 1024];
    let refused = (0..10).find_map(
        |_| match ureq::post(&url(&s, "/v1/score")).send_bytes(&big) {
            Err(ureq::Error::Transport(_)) => None,
            other => Some(call(other)),
        },
    );
    let (status, body, _) = refused.expect("a 413 in ten tries");
    assert_eq!(
        (status, body["kind"].as_str()),
        (413, Some("body_too_large")),
        "{body}"
    );
    // 400: unknown scene or profile.
    let (status, body, _) =
        call(ureq::post(&url(&s, "/v1/score?profile=nope")).send_bytes(&jpeg(32, 32)));
    assert_eq!(
        (status, body["kind"].as_str()),
        (400, Some("config")),
        "{body}"
    );
    assert!(
        body["error"]
            .as_str()
            .is_some_and(|e| e.contains("amazon-main"))
    );
    // 400: multipart without a file field.
    let (status, body, _) = call(
        ureq::post(&url(&s, "/v1/score"))
            .set("Content-Type", "multipart/form-data; boundary=x")
            .send_bytes(
                b"--x\r\nContent-Disposition: form-data; name=\"other\"\r\n\r\nhi\r\n--x--\r\n",
            ),
    );
    assert_eq!(
        (status, body["kind"].as_str()),
        (400, Some("bad_request")),
        "{body}"
    );
}

#[test]
fn a_pooled_client_keeps_working_after_an_upload_over_the_limit() {
    // One keep-alive agent, as load balancers and SDKs use: a body over the limit is refused
    // without being read, and the next request must not land on the dead connection.
    let s = start(ServerSettings {
        max_body_bytes: 64 * 1024,
        ..ServerSettings::default()
    });
    let agent = ureq::AgentBuilder::new()
        .timeout(Duration::from_secs(60))
        .build();
    let big = vec![0u8; 2 * 1024 * 1024];
    let small = jpeg(32, 32);
    for round in 0..10 {
        match agent.post(&url(&s, "/v1/score")).send_bytes(&big) {
            Err(ureq::Error::Status(413, r)) => {
                assert_eq!(r.header("connection"), Some("close"), "round {round}");
            }
            // The server may close before the client has sent the whole body.
            Err(ureq::Error::Transport(_)) => {}
            other => panic!("round {round}: expected 413, got {other:?}"),
        }
        let next = agent.post(&url(&s, "/v1/score")).send_bytes(&small);
        assert!(
            next.as_ref().is_ok_and(|r| r.status() == 200),
            "round {round}: the request after a 413 failed: {next:?}"
        );
    }
    // An unknown route answers without reading the body too.
    match ureq::post(&url(&s, "/nope")).send_bytes(&small) {
        Err(ureq::Error::Status(404, r)) => assert_eq!(r.header("connection"), Some("close")),
        other => panic!("expected 404, got {other:?}"),
    }
}

#[test]
fn api_key_is_required_when_set() {
    let s = start(ServerSettings {
        api_key: Some("s3cret".into()),
        ..ServerSettings::default()
    });
    let (status, body, _) = call(ureq::get(&url(&s, "/v1/models")).call());
    assert_eq!((status, body["kind"].as_str()), (401, Some("unauthorized")));
    let (status, _, _) = call(
        ureq::get(&url(&s, "/v1/models"))
            .set("Authorization", "Bearer wrong")
            .call(),
    );
    assert_eq!(status, 401);
    let (status, _, _) = call(
        ureq::get(&url(&s, "/v1/models"))
            .set("Authorization", "Bearer s3cret")
            .call(),
    );
    assert_eq!(status, 200);
    // Probes stay open for the load balancer.
    let (status, _, _) = call(ureq::get(&url(&s, "/healthz")).call());
    assert_eq!(status, 200);
}

#[test]
fn full_queue_answers_503_with_retry_after() {
    // One-slot queue, one image at a time: a burst of concurrent requests overflows it.
    let s = start(ServerSettings {
        batch: BatchSettings {
            queue_capacity: 1,
            max_batch: 1,
            max_wait: Duration::ZERO,
            workers: 1,
        },
        ..ServerSettings::default()
    });
    let image = Arc::new(jpeg(400, 400));
    let endpoint = url(&s, "/v1/score");
    let handles: Vec<_> = (0..12)
        .map(|_| {
            let (image, endpoint) = (image.clone(), endpoint.clone());
            std::thread::spawn(move || call(ureq::post(&endpoint).send_bytes(&image)))
        })
        .collect();
    let results: Vec<_> = handles
        .into_iter()
        .map(|h| h.join().expect("thread"))
        .collect();
    let busy: Vec<_> = results.iter().filter(|r| r.0 == 503).collect();
    assert!(
        !busy.is_empty(),
        "no request was refused: {:?}",
        results.iter().map(|r| r.0).collect::<Vec<_>>()
    );
    for (_, body, retry) in &busy {
        assert_eq!(body["kind"], "queue_full");
        assert_eq!(retry.as_deref(), Some("1"));
    }
    assert!(results.iter().all(|r| r.0 == 200 || r.0 == 503));
    assert!(results.iter().any(|r| r.0 == 200));
}

/// Body of a response as text, whatever the status.
fn text(result: Result<ureq::Response, ureq::Error>) -> (u16, String) {
    let response = match result {
        Ok(r) => r,
        Err(ureq::Error::Status(_, r)) => r,
        Err(e) => panic!("transport error: {e}"),
    };
    let status = response.status();
    (status, response.into_string().expect("body"))
}

/// The value of one sample line (`name{labels} value`) in Prometheus text.
fn sample(metrics: &str, line_start: &str) -> Option<f64> {
    metrics
        .lines()
        .find(|l| l.starts_with(line_start))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

#[test]
fn metrics_count_requests_images_and_batches() {
    let s = start(ServerSettings::default());
    let image = jpeg(96, 64);
    for _ in 0..2 {
        let (status, _, _) = call(ureq::post(&url(&s, "/v1/score")).send_bytes(&image));
        assert_eq!(status, 200);
    }
    let (status, _, _) = call(ureq::post(&url(&s, "/v1/score")).send_bytes(b"not an image"));
    assert_eq!(status, 422);
    let (status, _, _) = call(ureq::get(&url(&s, "/no/such/path")).call());
    assert_eq!(status, 404);
    let response = ureq::get(&url(&s, "/metrics")).call().expect("metrics");
    assert!(
        response
            .header("content-type")
            .is_some_and(|c| c.starts_with("application/openmetrics-text")),
    );
    let m = response.into_string().expect("text");
    let requests = |status: u16| {
        sample(
            &m,
            &format!(
                r#"shotgrade_http_requests_total{{route="/v1/score",method="POST",status="{status}"}}"#
            ),
        )
    };
    assert_eq!(requests(200), Some(2.0), "{m}");
    assert_eq!(requests(422), Some(1.0), "{m}");
    // Unknown paths share one label value, so scans cannot blow up the series count.
    assert_eq!(
        sample(
            &m,
            r#"shotgrade_http_requests_total{route="unmatched",method="GET",status="404"}"#
        ),
        Some(1.0),
        "{m}"
    );
    assert!(!m.contains("/no/such/path"));
    assert_eq!(
        sample(&m, r#"shotgrade_images_total{outcome="scored"}"#),
        Some(2.0)
    );
    assert_eq!(
        sample(&m, r#"shotgrade_images_total{outcome="error"}"#),
        Some(1.0)
    );
    assert_eq!(sample(&m, "shotgrade_batch_size_sum"), Some(3.0), "{m}");
    assert_eq!(sample(&m, "shotgrade_queue_depth"), Some(0.0));
    assert_eq!(sample(&m, "shotgrade_queue_capacity"), Some(64.0));
    assert!(sample(&m, "shotgrade_batch_inference_seconds_sum").is_some_and(|v| v > 0.0));
    assert_eq!(
        sample(
            &m,
            r#"shotgrade_http_request_duration_seconds_count{route="/v1/score"}"#
        ),
        Some(3.0)
    );
}

#[test]
fn served_openapi_equals_the_checked_in_file() {
    let s = start(ServerSettings::default());
    let (status, served, _) = call(ureq::get(&url(&s, "/openapi.json")).call());
    assert_eq!(status, 200);
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/openapi.json");
    let file = std::fs::read_to_string(path).expect("checked-in openapi.json");
    let file: serde_json::Value = serde_json::from_str(&file).expect("valid JSON");
    assert!(
        served == file,
        "the served spec differs from {path}: regenerate it with \
         `cargo run -p shotgrade-cli -- serve --print-openapi > {}`",
        shotgrade_server::openapi::CHECKED_IN_PATH
    );
    assert_eq!(served["openapi"], "3.1.0");
}

#[test]
fn slow_answers_get_504_and_the_image_is_skipped() {
    // The worker waits 400 ms for a batch to fill; the request gives up after 50 ms.
    let s = start(ServerSettings {
        request_timeout: Duration::from_millis(50),
        batch: BatchSettings {
            max_wait: Duration::from_millis(400),
            ..BatchSettings::default()
        },
        ..ServerSettings::default()
    });
    let started = std::time::Instant::now();
    let (status, body, _) = call(ureq::post(&url(&s, "/v1/score")).send_bytes(&jpeg(64, 64)));
    assert_eq!(
        (status, body["kind"].as_str()),
        (504, Some("timeout")),
        "{body}"
    );
    assert!(started.elapsed() < Duration::from_millis(390));
    // The batch closes at 400 ms and sees the abandoned request.
    std::thread::sleep(Duration::from_millis(600));
    let (_, m) = text(ureq::get(&url(&s, "/metrics")).call());
    assert_eq!(
        sample(&m, r#"shotgrade_images_total{outcome="abandoned"}"#),
        Some(1.0),
        "{m}"
    );
    assert_eq!(
        sample(&m, r#"shotgrade_images_total{outcome="scored"}"#),
        None
    );
}

#[test]
fn every_response_carries_a_request_id() {
    let s = start(ServerSettings::default());
    let r = ureq::get(&url(&s, "/healthz")).call().expect("healthz");
    let id = r.header("x-request-id").expect("generated id").to_string();
    assert_eq!(id.len(), 36, "a UUID: {id}");
    let r = ureq::get(&url(&s, "/healthz"))
        .set("x-request-id", "upload-42")
        .call()
        .expect("healthz");
    assert_eq!(r.header("x-request-id"), Some("upload-42"));
    // Errors too.
    match ureq::get(&url(&s, "/nope")).call() {
        Err(ureq::Error::Status(404, r)) => assert!(r.header("x-request-id").is_some()),
        other => panic!("expected 404, got {other:?}"),
    }
}

#[test]
fn readyz_fails_while_the_queue_is_saturated() {
    // A one-slot queue whose worker waits 600 ms for its batch to fill: while it waits, the
    // queue counts as full and the readiness probe must say so.
    let s = start(ServerSettings {
        batch: BatchSettings {
            queue_capacity: 1,
            max_wait: Duration::from_millis(600),
            ..BatchSettings::default()
        },
        ..ServerSettings::default()
    });
    let endpoint = url(&s, "/v1/score");
    let image = jpeg(64, 64);
    let pending = std::thread::spawn(move || call(ureq::post(&endpoint).send_bytes(&image)));
    std::thread::sleep(Duration::from_millis(150));
    let (status, body, retry) = call(ureq::get(&url(&s, "/readyz")).call());
    assert_eq!(
        (status, body["kind"].as_str()),
        (503, Some("saturated")),
        "{body}"
    );
    assert_eq!(retry.as_deref(), Some("1"));
    assert_eq!(pending.join().expect("thread").0, 200);
    let (status, _, _) = call(ureq::get(&url(&s, "/readyz")).call());
    assert_eq!(status, 200);
}
