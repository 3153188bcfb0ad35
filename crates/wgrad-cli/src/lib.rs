//! What the `wgrad` command runs, apart from the library: wgrad's own differential table (every
//! built-in op, [`rows`]) and its own benchmark figures ([`figures`]). The harness both use is
//! the library's ([`wgrad::check`], [`wgrad::bench`]).

pub mod figures;
pub mod rows;
