//! Arbitrary bytes into the manifest parser: it must never panic, anything it accepts must
//! pass validation, and its re-encoding must parse back to the same encoding (compared as
//! bytes, so NaN fields compare too).
#![no_main]

use libfuzzer_sys::fuzz_target;
use unveil_shared::manifest::Manifest;

fuzz_target!(|data: &[u8]| {
    if let Ok(manifest) = Manifest::from_bytes(data) {
        assert!(manifest.validate().is_ok());
        let bytes = manifest.to_bytes().expect("a parsed manifest re-encodes");
        let again = Manifest::from_bytes(&bytes).expect("its encoding parses");
        assert_eq!(again.to_bytes().expect("re-encodes"), bytes);
    }
});
