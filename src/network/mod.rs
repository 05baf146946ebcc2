//! The network side of case handling: what happens between institutions
//! after a case is routed.
//!
//! - [`reminders`]: pure (no I/O, time injected): which timers a case has
//!   and what a due one does.
//! - [`worker`]: the timer loop that keeps those timers in the store,
//!   claims due ones and sends their notices through a [`worker::NoticeSink`].

pub mod reminders;
pub mod worker;
