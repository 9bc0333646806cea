//! The top room: the application assembled from its products, the route table (every route
//! declared once, with its access and CORS), the per-request pipeline that runs it on the HTTP
//! toolkit, the meta endpoints, and the server's life (`serve`).
//!
//! Invariant: nothing outside `api/` imports it; it may import every other module.

mod app;
pub mod handover;
pub mod ops;
pub mod pipeline;
pub mod routes;
pub mod serve;
mod systemd;

pub use app::{App, AppError};
