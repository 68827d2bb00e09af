//! The `sandboxer-agent` binary of this build, embedded: the service puts it
//! into each sandbox (DESIGN section 9), so a service and its agents always
//! come from one build.

use std::sync::LazyLock;

use sha2::{Digest, Sha256};

static BINARY: &[u8] = include_bytes!(env!("SANDBOXER_AGENT_BINARY"));

static DIGEST: LazyLock<String> = LazyLock::new(|| {
    Sha256::digest(BINARY)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
});

/// The static agent binary.
pub fn binary() -> &'static [u8] {
    BINARY
}

/// Its SHA-256, lower-case hex: names the agent build.
pub fn digest() -> &'static str {
    &DIGEST
}

#[cfg(test)]
mod tests {
    /// Whether an ELF64 file has a `PT_INTERP` program header (a dynamic loader).
    fn has_interpreter(elf: &[u8]) -> bool {
        let u16_at = |o: usize| u16::from_le_bytes([elf[o], elf[o + 1]]) as usize;
        let phoff = u64::from_le_bytes(elf[0x20..0x28].try_into().unwrap()) as usize;
        let (size, count) = (u16_at(0x36), u16_at(0x38));
        (0..count).any(|i| {
            let at = phoff + i * size;
            u32::from_le_bytes(elf[at..at + 4].try_into().unwrap()) == 3
        })
    }

    #[test]
    fn the_embedded_agent_is_a_static_elf_executable() {
        let bin = super::binary();
        assert_eq!(&bin[..4], b"\x7fELF");
        assert_eq!(bin[4], 2, "not ELF64");
        // No loader to find: it runs in any image, `FROM scratch` included.
        assert!(!has_interpreter(bin), "the agent is dynamically linked");
        assert_eq!(super::digest().len(), 64);
    }
}
