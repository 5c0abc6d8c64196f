//! The intake check on arbitrary bytes: never panics, never loops, and whatever it accepts
//! has a well-formed envelope.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let limits = efile_bridge_intake::Limits { max_bytes: 1 << 20, ..Default::default() };
    if let Ok(env) = efile_bridge_intake::check(data, &limits) {
        assert!(!env.message_uuid.is_empty());
        assert!(!env.message_type.is_empty());
        assert!(env.message_name.ends_with(&env.message_type));
    }
});
