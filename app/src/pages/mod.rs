pub mod gc;
pub mod not_found;
pub mod projects;
pub mod repositories;
pub mod sign_in;
