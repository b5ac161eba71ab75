//! The driftsum agent: [`server`] serves one database's trees over a small
//! HTTP [`protocol`] (hand-rolled [`http`]), and [`client`] walks a remote
//! tree, over HTTPS when given certificates ([`tls`]). [`auth`] holds the
//! token rules, `admit` which connections are read and served, `verify` the
//! check that what is read is the tree's data.

mod admit;
pub mod auth;
pub mod client;
pub mod http;
pub mod protocol;
pub mod server;
pub mod tls;
mod verify;

pub use client::{AgentClient, AgentError, Built};
pub use server::{ServeOptions, Server, ServerHandle};
