//! Exit statuses of pyeval itself; any other status is the guest's own.

/// pyeval could not run the program: bad flag, missing file, unusable .wasm.
pub const PYEVAL_ERROR: u8 = 2;
/// The interpreter needed more memory than allowed and could not recover.
pub const MEMORY_LIMIT: u8 = 122;
/// The program crashed inside the sandbox (a WebAssembly trap).
pub const TRAP: u8 = 123;
/// The program ran past its wall-clock deadline.
pub const TIMEOUT: u8 = 124;
/// The program used its whole fuel budget.
pub const FUEL_EXHAUSTED: u8 = 125;
