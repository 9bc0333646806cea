//! The mock upstream (in progress).
