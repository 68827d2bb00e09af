//! The \`sandboxer\` binary.

fn main() {}
