//! Times candidate shapes of the position network: forward pass of a freshly initialised
//! network at batch 16 (and 1), median of repeats, on the CPU backend the grader uses.
//!
//! ```sh
//! RAYON_NUM_THREADS=2 cargo run --release -p shotgrade-models --example position_arch -- \
//!     256:16,32,64,96,128:1,2,2 192:16,32,48,64,96:1,1,1
//! ```
//! Each argument is `SIDE:C0,C1,C2,C3,C4:U1,U2,U3` (input side, channels after Focus and each
//! stage, residual units of the first three CSP1 stages).

use std::time::Instant;

use burn::module::Module;
use burn::tensor::{Device, Tensor};
use shotgrade_models::position::PositionNetConfig;

fn parse(arg: &str) -> Result<PositionNetConfig, String> {
    let parts: Vec<&str> = arg.split(':').collect();
    let [side, channels, units] = parts[..] else {
        return Err(format!("expected SIDE:C0,..,C4:U1,U2,U3, got {arg}"));
    };
    let nums = |s: &str| -> Result<Vec<usize>, String> {
        s.split(',')
            .map(|v| v.parse::<usize>().map_err(|e| format!("{v}: {e}")))
            .collect()
    };
    let channels: [usize; 5] = nums(channels)?
        .try_into()
        .map_err(|_| "five channel counts".to_string())?;
    let units: [usize; 3] = nums(units)?
        .try_into()
        .map_err(|_| "three unit counts".to_string())?;
    let side = side.parse::<usize>().map_err(|e| e.to_string())?;
    let config = PositionNetConfig::new()
        .with_input_size(side)
        .with_channels(channels)
        .with_csp1_units(units);
    config.validate()?;
    Ok(config)
}

/// CPU seconds this process has used (user + system), from `/proc/self/stat`: on a machine
/// shared with other work, CPU time ranks candidates more steadily than wall time.
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the command name (which is in parentheses and may hold spaces).
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    // utime and stime are fields 14 and 15 of the whole line: 12 and 13 after the name.
    (ticks(11) + ticks(12)) / 100.0
}

fn main() -> Result<(), String> {
    let device = Device::flex();
    let repeats = 15;
    println!(
        "{:<32} {:>9} {:>8} {:>11} {:>11} {:>13}",
        "CONFIG", "PARAMS", "MMACs", "b1 ms/img", "b16 ms/img", "b16 cpu-ms/img"
    );
    for arg in std::env::args().skip(1) {
        let config = parse(&arg)?;
        let net = config.init(&device);
        let side = config.input_size;
        let mut per_image = Vec::new();
        let mut cpu_per_image = 0.0;
        for batch in [1usize, 16] {
            let run = || {
                let x = Tensor::<4>::full([batch, 3, side, side], 0.5, &device);
                let t = Instant::now();
                let out = net.forward(x).packed().into_data();
                std::hint::black_box(out);
                t.elapsed().as_secs_f64() * 1000.0 / batch as f64
            };
            run();
            let cpu = cpu_seconds();
            let mut times: Vec<f64> = (0..repeats).map(|_| run()).collect();
            cpu_per_image = (cpu_seconds() - cpu) * 1000.0 / (repeats * batch) as f64;
            times.sort_by(f64::total_cmp);
            per_image.push(times[repeats / 2]);
        }
        println!(
            "{:<32} {:>9} {:>8.1} {:>11.2} {:>11.2} {:>13.2}",
            arg,
            net.num_params(),
            net.macs(side) as f64 / 1e6,
            per_image[0],
            per_image[1],
            cpu_per_image
        );
    }
    Ok(())
}
