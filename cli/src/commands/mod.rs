//! One module per subcommand.

pub mod decompose;
pub mod embed;
pub mod evaluate;
pub mod popularity;
pub mod train;
