//! Minimal ELF files for tests: a 64-bit little-endian header and the sections flixops reads of a
//! Lambda `bootstrap` (`.gnu.version_r`, the symbol versions it needs of each shared library, and
//! its string table), so an executable's architecture and glibc needs are exactly what a test says.
//! Also compiled into the library's unit tests (src/aws/artifact.rs).
#![allow(dead_code)]

/// The ELF `e_machine` to write.
#[derive(Debug, Clone, Copy)]
pub enum Machine {
    /// EM_X86_64.
    X86_64,
    /// EM_AARCH64.
    Aarch64,
    /// Any other number.
    Other(u16),
}

impl Machine {
    fn number(self) -> u16 {
        match self {
            Machine::X86_64 => 62,
            Machine::Aarch64 => 183,
            Machine::Other(n) => n,
        }
    }
}

/// This machine's architecture, as the test binaries are built for it.
pub fn native() -> Machine {
    if cfg!(target_arch = "aarch64") { Machine::Aarch64 } else { Machine::X86_64 }
}

/// A shared-object ELF (as a PIE executable is) needing, from each library, the listed versions,
/// e.g. `[("libc.so.6", &["GLIBC_2.2.5", "GLIBC_2.34"])]`; no libraries: a static binary.
pub fn minimal_elf(machine: Machine, needs: &[(&str, &[&str])]) -> Vec<u8> {
    let mut dynstr = vec![0u8];
    let mut add = |s: &str| {
        let at = dynstr.len() as u32;
        dynstr.extend_from_slice(s.as_bytes());
        dynstr.push(0);
        at
    };
    let mut verneed = Vec::new();
    for (i, (library, versions)) in needs.iter().enumerate() {
        let file = add(library);
        let last = i + 1 == needs.len();
        let size = 16 + 16 * versions.len() as u32;
        verneed.extend_from_slice(&1u16.to_le_bytes()); // vn_version
        verneed.extend_from_slice(&(versions.len() as u16).to_le_bytes()); // vn_cnt
        verneed.extend_from_slice(&file.to_le_bytes()); // vn_file
        verneed.extend_from_slice(&16u32.to_le_bytes()); // vn_aux
        verneed.extend_from_slice(&(if last { 0 } else { size }).to_le_bytes()); // vn_next
        for (j, version) in versions.iter().enumerate() {
            let name = add(version);
            verneed.extend_from_slice(&elf_hash(version).to_le_bytes()); // vna_hash
            verneed.extend_from_slice(&0u16.to_le_bytes()); // vna_flags
            verneed.extend_from_slice(&(2 + j as u16).to_le_bytes()); // vna_other
            verneed.extend_from_slice(&name.to_le_bytes()); // vna_name
            verneed.extend_from_slice(&(if j + 1 == versions.len() { 0u32 } else { 16 }).to_le_bytes());
        }
    }
    let shstrtab = b"\0.dynstr\0.gnu.version_r\0.shstrtab\0".to_vec();
    let mut out = vec![0u8; 64];
    let place = |out: &mut Vec<u8>, data: &[u8]| {
        while out.len() % 8 != 0 {
            out.push(0);
        }
        let at = out.len() as u64;
        out.extend_from_slice(data);
        at
    };
    let dynstr_at = place(&mut out, &dynstr);
    let verneed_at = place(&mut out, &verneed);
    let shstrtab_at = place(&mut out, &shstrtab);
    let headers_at = place(&mut out, &[]);
    let mut headers = vec![[0u8; 64].to_vec()];
    if needs.is_empty() {
        headers.push(section(25, 3, shstrtab_at, shstrtab.len(), 0, 0));
    } else {
        headers.push(section(1, 3, dynstr_at, dynstr.len(), 0, 0));
        headers.push(section(9, 0x6fff_fffe, verneed_at, verneed.len(), 1, needs.len() as u32));
        headers.push(section(25, 3, shstrtab_at, shstrtab.len(), 0, 0));
    }
    for header in &headers {
        out.extend_from_slice(header);
    }
    let header = elf_header(machine, headers_at, headers.len() as u16);
    out[..64].copy_from_slice(&header);
    out
}

fn elf_header(machine: Machine, section_headers: u64, count: u16) -> Vec<u8> {
    let mut h = b"\x7fELF\x02\x01\x01\0\0\0\0\0\0\0\0\0".to_vec();
    h.extend_from_slice(&3u16.to_le_bytes()); // e_type: ET_DYN
    h.extend_from_slice(&machine.number().to_le_bytes());
    h.extend_from_slice(&1u32.to_le_bytes()); // e_version
    h.extend_from_slice(&0u64.to_le_bytes()); // e_entry
    h.extend_from_slice(&0u64.to_le_bytes()); // e_phoff
    h.extend_from_slice(&section_headers.to_le_bytes()); // e_shoff
    h.extend_from_slice(&0u32.to_le_bytes()); // e_flags
    for v in [64u16, 56, 0, 64, count, count - 1] {
        // e_ehsize, e_phentsize, e_phnum, e_shentsize, e_shnum, e_shstrndx (the last section)
        h.extend_from_slice(&v.to_le_bytes());
    }
    h
}

fn section(name: u32, kind: u32, offset: u64, size: usize, link: u32, info: u32) -> Vec<u8> {
    let mut s = Vec::with_capacity(64);
    s.extend_from_slice(&name.to_le_bytes());
    s.extend_from_slice(&kind.to_le_bytes());
    s.extend_from_slice(&0u64.to_le_bytes()); // sh_flags
    s.extend_from_slice(&0u64.to_le_bytes()); // sh_addr
    s.extend_from_slice(&offset.to_le_bytes());
    s.extend_from_slice(&(size as u64).to_le_bytes());
    s.extend_from_slice(&link.to_le_bytes());
    s.extend_from_slice(&info.to_le_bytes());
    s.extend_from_slice(&8u64.to_le_bytes()); // sh_addralign
    s.extend_from_slice(&0u64.to_le_bytes()); // sh_entsize
    s
}

/// The System V ELF hash, as `vna_hash` holds it.
fn elf_hash(name: &str) -> u32 {
    let mut h: u32 = 0;
    for b in name.bytes() {
        h = (h << 4).wrapping_add(u32::from(b));
        let g = h & 0xf000_0000;
        if g != 0 {
            h ^= g >> 24;
        }
        h &= !g;
    }
    h
}

/// A Lambda `bootstrap` as provided.al2023 runs it (x86_64, the default lambda_architecture;
/// glibc 2.34 at most), with `tag` appended so each tag zips to other code.
pub fn bootstrap(tag: &str) -> Vec<u8> {
    let mut bytes = minimal_elf(Machine::X86_64, &[("libc.so.6", &["GLIBC_2.2.5", "GLIBC_2.34"])]);
    bytes.extend_from_slice(tag.as_bytes());
    bytes
}
