//! One module per subcommand.

pub mod evaluate;
pub mod popularity;
pub mod train;
