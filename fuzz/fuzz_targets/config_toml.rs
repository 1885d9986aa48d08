//! Any text as a scoring config (`--config`) and as a profile file (`--profiles`): parse errors
//! are expected; a panic is a finding, and so is a config that parses and validates but will
//! not print and parse back to itself.
#![no_main]

use libfuzzer_sys::fuzz_target;
use shotgrade_core::ScoringConfig;
use shotgrade_core::profile::ProfileSet;

fuzz_target!(|bytes: &[u8]| {
    let Ok(text) = std::str::from_utf8(bytes) else {
        return;
    };
    if let Ok(config) = ScoringConfig::from_toml_str(text) {
        let printed = config.to_toml_string();
        let back = ScoringConfig::from_toml_str(&printed).expect("a printed config parses");
        assert_eq!(back.to_toml_string(), printed);
    }
    let mut profiles = ProfileSet::builtin();
    if profiles.extend_from_toml(text).is_ok() {
        for (name, _) in profiles.iter() {
            assert!(profiles.get(name).is_ok());
        }
    }
});
