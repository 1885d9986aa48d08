//! `shotgrade serve` as a process: SIGTERM during a burst of requests stops it gracefully —
//! every request it accepted gets a complete response, and it exits 0.

mod common;

use common::{bin, repo_root, untrained_weights};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::Stdio;
use std::time::Duration;

/// Sends one raw HTTP/1.1 request and returns the status code of a complete response.
fn post(addr: &str, body: &[u8]) -> Result<u16, String> {
    let mut stream = TcpStream::connect(addr).map_err(|e| format!("connect: {e}"))?;
    stream
        .set_read_timeout(Some(Duration::from_secs(60)))
        .map_err(|e| e.to_string())?;
    let head = format!(
        "POST /v1/score HTTP/1.1\r\nHost: {addr}\r\nContent-Type: image/jpeg\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    stream
        .write_all(head.as_bytes())
        .and_then(|_| stream.write_all(body))
        .map_err(|e| format!("write: {e}"))?;
    let mut response = Vec::new();
    stream
        .read_to_end(&mut response)
        .map_err(|e| format!("read: {e}"))?;
    let text = String::from_utf8_lossy(&response);
    let status: u16 = text
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("no status line in {text:?}"))?;
    // Complete: the JSON body is all there.
    let body = text.split("\r\n\r\n").nth(1).unwrap_or("");
    serde_json::from_str::<serde_json::Value>(body)
        .map_err(|e| format!("incomplete body ({e}): {body:?}"))?;
    Ok(status)
}

#[test]
fn sigterm_during_a_burst_answers_every_accepted_request() {
    let mut child = bin()
        .args([
            "serve",
            "--addr",
            "127.0.0.1:0",
            "--log-format",
            "json",
            "--allow-untrained",
            "--weights",
        ])
        .arg(untrained_weights())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start server");
    let mut stderr = BufReader::new(child.stderr.take().expect("stderr"));
    let mut line = String::new();
    stderr.read_line(&mut line).expect("banner");
    let banner: serde_json::Value =
        serde_json::from_str(&line).unwrap_or_else(|e| panic!("not a JSON log line ({e}): {line}"));
    let addr = banner["fields"]["url"]
        .as_str()
        .and_then(|u| u.strip_prefix("http://"))
        .unwrap_or_else(|| panic!("no address in {line:?}"))
        .to_string();

    let image = std::fs::read(repo_root().join("examples/cluttered.jpg")).expect("example");
    let burst: Vec<_> = (0..16)
        .map(|_| {
            let (addr, image) = (addr.clone(), image.clone());
            std::thread::spawn(move || post(&addr, &image))
        })
        .collect();
    // Let the burst reach the server, then ask it to stop while it is busy.
    std::thread::sleep(Duration::from_millis(300));
    let pid = child.id() as i32;
    // SAFETY: plain kill(2) on our own child's pid.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGTERM) }, 0);

    let results: Vec<Result<u16, String>> = burst
        .into_iter()
        .map(|h| h.join().expect("thread"))
        .collect();
    let status = child.wait().expect("wait");
    let mut rest = String::new();
    let _ = stderr.read_to_string(&mut rest);
    assert!(status.success(), "exit {status:?}: {rest}");
    assert!(rest.contains("stopped"), "{rest}");
    // Structured logs: every line is JSON, and each answered request logged its status and
    // latency inside a span carrying its request id.
    let logs: Vec<serde_json::Value> = rest
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    let finished: Vec<&serde_json::Value> = logs
        .iter()
        .filter(|l| l["fields"]["status"].is_u64())
        .collect();
    assert!(!finished.is_empty(), "no request log lines: {rest}");
    for l in &finished {
        assert_eq!(
            l["span"]["request_id"].as_str().map(str::len),
            Some(36),
            "{l}"
        );
        assert_eq!(l["span"]["path"], "/v1/score");
        assert!(l["fields"]["latency"].is_string(), "{l}");
    }
    for r in &results {
        match r {
            Ok(code) => assert!(*code == 200 || *code == 503, "status {code}"),
            // Refused at connect: never accepted, so nothing was lost.
            Err(e) => assert!(e.starts_with("connect:"), "accepted request lost: {e}"),
        }
    }
    assert!(
        results.iter().any(|r| r == &Ok(200)),
        "no request was answered: {results:?}"
    );
}

#[test]
fn bad_serve_settings_are_refused_with_clear_errors() {
    for (args, expected) in [
        (&["--request-timeout-s", "0"][..], "--request-timeout-s"),
        (&["--log", "shotgrade=loudest"][..], "invalid --log filter"),
        (&["--log-format", "xml"][..], "xml"),
    ] {
        let out = bin()
            .args(["serve", "--addr", "127.0.0.1:0"])
            .args(args)
            .output()
            .expect("run");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {stderr}");
        assert!(stderr.contains(expected), "{args:?}: {stderr}");
    }
}
