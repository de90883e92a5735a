#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| offpay_conformance::fuzz_targets::ble_merchant_session(data));
