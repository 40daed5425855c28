//! No code: this package exists for the features its manifest pins (see Cargo.toml).
