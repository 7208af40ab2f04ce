pub mod format;
pub mod layout;
pub mod page;
