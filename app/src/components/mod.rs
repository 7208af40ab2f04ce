pub mod format;
pub mod layout;
pub mod page;
pub mod quota;
pub mod schedule;
