//! A test-only library that reports ABI version 999, which switchyard must refuse at
//! start-up with a message naming the file. It exports nothing else.

/// Not the SDK's `ABI_VERSION`.
#[unsafe(no_mangle)]
pub extern "C" fn switchyard_adapter_abi_version() -> u32 {
    999
}
