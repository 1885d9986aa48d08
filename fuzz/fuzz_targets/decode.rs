//! Any bytes through the loader (format sniffing, decoding, orientation, the limits) and, when
//! they decode, through every network input the shipped weights take. A panic, an abort, a
//! timeout or running out of memory is a finding; an `Err` is the expected answer to junk.
#![no_main]

use libfuzzer_sys::fuzz_target;
use shotgrade_image::{BlockPlanes, InputSpec, Limits, Preprocessor, load_bytes};

/// The shipped weights' inputs (`shotgrade models`), with the optional spread planes on too so
/// that their code is reached.
const SPEC: InputSpec = InputSpec {
    background: 64,
    background_blocks: Some(BlockPlanes {
        cell: 16,
        spread: true,
    }),
    backdrop: true,
    position: 128,
    experience: 160,
};

fuzz_target!(|bytes: &[u8]| {
    // The production limits: an input that exhausts memory or time under them is a bug.
    if let Ok(loaded) = load_bytes(bytes, &Limits::default()) {
        let inputs = Preprocessor::new(SPEC).prepare(&loaded.rgb);
        assert!(inputs.position.iter().all(|v| v.is_finite()));
        assert!(inputs.background.iter().all(|v| v.is_finite()));
        assert!(inputs.experience.iter().all(|v| v.is_finite()));
    }
});
