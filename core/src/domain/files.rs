//! What a directory listing of a workspace says about each of its entries.

/// The kind of a directory entry; a symlink is reported as one, not
/// followed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileKind {
    File,
    Dir,
    Symlink,
    /// A socket, FIFO, device or anything else.
    Other,
}

impl FileKind {
    /// Every kind, for documentation (the HTTP schema lists their names).
    pub const ALL: [Self; 4] = [Self::File, Self::Dir, Self::Symlink, Self::Other];

    pub const fn as_str(self) -> &'static str {
        match self {
            Self::File => "file",
            Self::Dir => "dir",
            Self::Symlink => "symlink",
            Self::Other => "other",
        }
    }
}

/// One entry of a directory, as the runtime's file system reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileEntry {
    /// The entry's own name (no `/`), not its path.
    pub name: String,
    pub kind: FileKind,
    /// In bytes; what the file system says for anything but a file.
    pub size: u64,
    /// Last modification, in milliseconds since the Unix epoch.
    pub modified_ms: i64,
}
