//! The components of the `ironlb` binary, as a library so that tests can drive their parts
//! (the controller's status writer against a real API server, for one).

// The allocator's error type is large; it is passed through, not boxed.
#![allow(clippy::result_large_err)]

pub mod controller;
