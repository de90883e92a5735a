#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| offpay_conformance::fuzz_targets::ble_customer_session(data));
