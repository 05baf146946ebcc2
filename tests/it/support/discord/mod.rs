//! The local Discord stand-in, from the `discord-standin` workspace crate
//! (`crates/discord-standin`, see its README.md), and its smoke tests.

pub use discord_standin::*;

#[cfg(test)]
mod smoke_tests;
