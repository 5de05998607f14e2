//! Opening one plugin library with libloading and checking it: the ABI version first, then
//! the other three symbols and the plugin's name and version. The only `unsafe` code of
//! switchyard lives here.
//!
//! A loaded library is never unloaded: the `Library` is leaked, so the function pointers kept
//! in [`LoadedPlugin`] stay valid for the life of the process (unloading code that may still
//! be running on a timed-out call would be undefined behaviour).

use std::path::{Path, PathBuf};

use libloading::Library;
use switchyard_adapter_sdk::{
    Buffer, PluginInfo, ABI_VERSION, SYMBOL_ABI_VERSION, SYMBOL_FREE, SYMBOL_INFO, SYMBOL_NORMALIZE,
};

use super::PluginLoadError;

type AbiVersionFn = unsafe extern "C" fn() -> u32;
type InfoFn = unsafe extern "C" fn() -> PluginInfo;
type NormalizeFn = unsafe extern "C" fn(*const u8, usize) -> Buffer;
type FreeFn = unsafe extern "C" fn(Buffer);

/// A checked plugin library, loaded for the rest of the process.
#[derive(Debug)]
pub struct LoadedPlugin {
    /// The name the plugin reports (sources name it in `plugin:`).
    pub name: String,
    /// The version the plugin reports.
    pub version: String,
    /// The library file it was loaded from.
    pub file: PathBuf,
    normalize: NormalizeFn,
    free: FreeFn,
}

/// Reads `len` bytes of static UTF-8 text the plugin points at.
///
/// # Safety
/// `ptr` must be null or point to `len` bytes that live as long as the library.
unsafe fn static_text(ptr: *const u8, len: usize) -> Option<String> {
    if ptr.is_null() {
        return None;
    }
    // SAFETY: the caller guarantees `ptr` points to `len` readable bytes.
    let bytes = unsafe { std::slice::from_raw_parts(ptr, len) };
    std::str::from_utf8(bytes).ok().map(str::to_string)
}

/// Looks a function symbol up and copies the pointer out.
///
/// # Safety
/// `T` must be the symbol's real type (the SDK's ABI fixes it).
unsafe fn symbol<T: Copy>(
    lib: &'static Library,
    file: &Path,
    name: &'static str,
) -> Result<T, PluginLoadError> {
    // SAFETY: the caller guarantees `T` matches the exported function; the library is
    // 'static (leaked), so the copied pointer never dangles.
    unsafe { lib.get::<T>(name.as_bytes()) }
        .map(|s| *s)
        .map_err(|_| PluginLoadError::MissingSymbol {
            file: file.to_path_buf(),
            symbol: name,
        })
}

/// Opens and checks one library.
pub fn load_library(file: &Path) -> Result<LoadedPlugin, PluginLoadError> {
    // SAFETY: loading a library runs its initialisers. Plugins are code the operator chose
    // to install in `plugins.dir`, trusted like the switchyard binary itself.
    let lib = unsafe { Library::new(file) }.map_err(|e| PluginLoadError::Open {
        file: file.to_path_buf(),
        reason: e.to_string(),
    })?;
    // Never unloaded (see the module docs).
    let lib: &'static Library = Box::leak(Box::new(lib));

    // SAFETY: the SDK fixes this symbol's type as `extern "C" fn() -> u32`.
    let abi_version: AbiVersionFn = unsafe { symbol(lib, file, SYMBOL_ABI_VERSION)? };
    // SAFETY: a plain call of a function without arguments; the SDK catches panics in it.
    let found = unsafe { abi_version() };
    if found != ABI_VERSION {
        return Err(PluginLoadError::AbiVersion {
            file: file.to_path_buf(),
            found,
            expected: ABI_VERSION,
        });
    }
    // SAFETY: with the ABI version checked, the other symbols have the SDK's types.
    let info: InfoFn = unsafe { symbol(lib, file, SYMBOL_INFO)? };
    // SAFETY: as above.
    let normalize: NormalizeFn = unsafe { symbol(lib, file, SYMBOL_NORMALIZE)? };
    // SAFETY: as above.
    let free: FreeFn = unsafe { symbol(lib, file, SYMBOL_FREE)? };

    // SAFETY: `info` takes no arguments and returns pointers to static text in the library.
    let info = unsafe { info() };
    let bad_info = |reason: &str| PluginLoadError::BadInfo {
        file: file.to_path_buf(),
        reason: reason.to_string(),
    };
    // SAFETY: the pointers come from `info`, into the library's static data.
    let name = unsafe { static_text(info.name_ptr, info.name_len) }
        .ok_or_else(|| bad_info("its name is not UTF-8 text"))?;
    // SAFETY: as above.
    let version = unsafe { static_text(info.version_ptr, info.version_len) }
        .ok_or_else(|| bad_info("its version is not UTF-8 text"))?;
    if name.is_empty()
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
    {
        return Err(bad_info(&format!(
            "its name `{name}` is not letters, digits, `-`, `_` and `.`"
        )));
    }
    Ok(LoadedPlugin {
        name,
        version,
        file: file.to_path_buf(),
        normalize,
        free,
    })
}

impl LoadedPlugin {
    /// Calls the plugin's `normalize` with a JSON request and returns its JSON output. Blocks
    /// for as long as the plugin runs: call it off the async threads.
    pub fn call(&self, input: &[u8]) -> Vec<u8> {
        // SAFETY: `input` is valid for the call; the plugin returns a buffer it owns, which
        // we copy and then give back to the plugin's own free function, exactly once. A
        // panic inside the plugin is caught by the SDK's wrapper and returned as JSON.
        unsafe {
            let buf = (self.normalize)(input.as_ptr(), input.len());
            let out = if buf.ptr.is_null() {
                Vec::new()
            } else {
                std::slice::from_raw_parts(buf.ptr, buf.len).to_vec()
            };
            (self.free)(buf);
            out
        }
    }
}
