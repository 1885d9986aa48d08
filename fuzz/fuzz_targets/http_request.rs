//! Any bytes as an HTTP/1.1 request to the real service (hyper's parser, the routes, the API
//! key check, query strings, multipart forms, the batcher and the grader), over a loopback TCP
//! connection to one server started for the whole run. A panic anywhere in the process is a
//! finding, and so is a 5xx other than the deliberate 503 (queue full, shutting down).
#![no_main]

use libfuzzer_sys::fuzz_target;
use shotgrade::models::{Device, ModelConfigs, Models};
use shotgrade::{Grader, GraderSettings};
use shotgrade_server::{ServerSettings, serve};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

/// The server's address; it runs on its own thread until the process ends. Untrained weights:
/// the protocol is under test, not the scores, and they need no weights file.
fn server() -> SocketAddr {
    static ADDR: OnceLock<SocketAddr> = OnceLock::new();
    *ADDR.get_or_init(|| {
        let models = Models::untrained(ModelConfigs::default(), &Device::flex());
        let grader = Arc::new(Grader::new(models, GraderSettings::default()).expect("grader"));
        let settings = ServerSettings {
            api_key: Some("fuzz-key".into()),
            ..ServerSettings::default()
        };
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .expect("runtime");
            rt.block_on(async move {
                let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
                    .await
                    .expect("bind");
                tx.send(listener.local_addr().expect("addr")).expect("send");
                serve(listener, grader, settings, std::future::pending())
                    .await
                    .expect("serve");
            });
        });
        rx.recv_timeout(Duration::from_secs(60)).expect("server started")
    })
}

fuzz_target!(|bytes: &[u8]| {
    let Ok(mut stream) = TcpStream::connect(server()) else {
        return;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(30)));
    if stream.write_all(bytes).is_err() {
        return;
    }
    // End of the request: a body shorter than its Content-Length ends here too.
    let _ = stream.shutdown(std::net::Shutdown::Write);
    let mut response = Vec::new();
    let _ = stream.read_to_end(&mut response);
    // Several pipelined requests may get several responses: check every status line.
    let text = String::from_utf8_lossy(&response);
    for line in text.split("\r\n").filter(|l| l.starts_with("HTTP/1.")) {
        let status = line.split(' ').nth(1).unwrap_or("");
        assert!(
            !status.starts_with('5') || status == "503",
            "server error {status} for a request: {line}"
        );
    }
});
