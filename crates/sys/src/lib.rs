//! System calls for Layer 2: raw packet sockets, multicast membership, interfaces, namespaces.
#![allow(unsafe_code)]

pub mod md5;
