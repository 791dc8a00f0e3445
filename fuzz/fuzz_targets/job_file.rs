//! Fuzz target `job_file`: arbitrary text read as a job file, as `owlmesh submit` reads one.
//!
//! Checks that `parse_job_toml` never panics and always answers with a spec or an error
//! whose message can be printed; and that a spec it accepts is the effective spec to store:
//! it compiles, and validating it again (defaults filled in once more, as `SubmitJob` does)
//! changes nothing.

#![no_main]

use libfuzzer_sys::fuzz_target;
use owlmesh_job::{CompiledJob, parse_job_toml, validated};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match parse_job_toml(text, "fuzz.toml") {
        Ok(spec) => {
            if let Err(error) = CompiledJob::compile(&spec) {
                panic!("an accepted job file does not compile: {error}");
            }
            match validated(spec.clone()) {
                Ok(again) => assert_eq!(again, spec, "defaults are not idempotent"),
                Err(error) => panic!("an accepted job file fails validation: {error}"),
            }
        }
        Err(error) => {
            let message = error.to_string();
            assert!(!message.is_empty(), "an error without a message");
        }
    }
});
