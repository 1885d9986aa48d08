//! Where the pretrained trunk's time goes: each block's forward pass at one input side and
//! batch, medians of 5, untrained weights (speed does not depend on the values).
//!
//! ```sh
//! cargo run --release -p shotgrade-models --example trunk_timing -- [SIDE] [BATCH]
//! ```

use burn::tensor::activation::relu6;
use burn::tensor::{Device, Tensor};
use shotgrade_models::trunk::EfficientNetLite0Config;
use std::time::Instant;

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    let args: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let side = args.first().copied().unwrap_or(192);
    let batch = args.get(1).copied().unwrap_or(16);
    let device = Device::flex();
    let net = EfficientNetLite0Config::new()
        .with_with_head(false)
        .init(&device);
    let input = Tensor::<4>::full([batch, 3, side, side], 0.1, &device);
    let sync = |t: &Tensor<4>| std::hint::black_box(t.clone().into_data().num_elements());
    let time = |f: &dyn Fn() -> Tensor<4>| {
        let mut v = Vec::new();
        for _ in 0..6 {
            let t = Instant::now();
            sync(&f());
            v.push(t.elapsed().as_secs_f64() * 1e3);
        }
        median(v[1..].to_vec())
    };
    let stem = time(&|| relu6(net.bn0.forward(net.conv_stem.forward(input.clone()))));
    println!("side {side}, batch {batch}: ms per batch (per image)");
    println!("stem        {stem:8.2} ({:.2})", stem / batch as f64);
    let mut x = relu6(net.bn0.forward(net.conv_stem.forward(input.clone())));
    let mut total = stem;
    for (i, block) in net.blocks.iter().enumerate() {
        let xin = x.clone();
        let ms = time(&|| block.forward(xin.clone()));
        // The block's parts.
        let mut expand = 0.0;
        let mut mid = xin.clone();
        if let (Some(c), Some(b)) = (&block.expand_conv, &block.bn0) {
            let m = mid.clone();
            expand = time(&|| relu6(b.forward(c.forward(m.clone()))));
            mid = relu6(b.forward(c.forward(mid)));
        }
        let m = mid.clone();
        let dw = time(&|| relu6(block.bn1.forward(block.depthwise_conv.forward(m.clone()))));
        let d = relu6(block.bn1.forward(block.depthwise_conv.forward(mid)));
        let project = time(&|| block.bn2.forward(block.project_conv.forward(d.clone())));
        println!(
            "block {i:2} {:?} → {:?}: {ms:8.2} ({:.2})  expand {expand:.2}  depthwise {dw:.2}  project {project:.2}",
            xin.dims(),
            block.forward(xin.clone()).dims(),
            ms / batch as f64
        );
        total += ms;
        x = block.forward(xin);
    }
    println!(
        "total       {total:8.2} ({:.2} per image)",
        total / batch as f64
    );
}
