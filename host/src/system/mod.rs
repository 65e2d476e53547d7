//! The server's own services in the system account (`$SYS`): advisories and statistics
//! (`events`) and the requests it answers (`requests`). Both sit above `server/`: they are
//! internal clients of the message path that need the whole server (reload, live clients).

pub mod events;
pub mod requests;

pub use requests::apply_to_connections;
