//! The Lambda deployment package: a zip whose `bootstrap` is a Linux executable Lambda's
//! `provided.al2023` can start (x86_64 or arm64, needing glibc 2.34 at most), checked before
//! anything is uploaded. Without such an executable at hand (flixops on macOS, or a binary built
//! on a newer glibc) and no `--artifact`, the code is unknown: `plan` and `doctor` check
//! everything else and say so, and `deploy` keeps the deployed code.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use base64::Engine as _;
use object::read::elf::FileHeader;
use sha2::Digest;

/// The newest glibc that Amazon Linux 2023, under `provided.al2023`, has
/// (<https://docs.aws.amazon.com/linux/al2023/ug/compare-with-al2.html>: glibc 2.34).
pub const AL2023_GLIBC: Glibc = Glibc(2, 34);

/// The deployment package, built once per command.
#[derive(Clone)]
pub struct Artifact {
    /// The zip (empty when the code is unknown).
    pub zip: Vec<u8>,
    /// base64(sha256(zip)), as Lambda reports CodeSha256.
    pub sha256: String,
    /// `x86_64` or `arm64` (Lambda's names), read from the ELF header of `bootstrap`.
    pub architecture: String,
    /// Where it came from, for messages.
    pub source: PathBuf,
    /// True when given with `--artifact`; false for this flixops binary.
    pub given: bool,
    /// Why the code is unknown (no Linux executable at hand), with the fix; None when it is known.
    pub unknown: Option<String>,
}

impl std::fmt::Debug for Artifact {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.unknown {
            Some(why) => write!(f, "Artifact(unknown: {why})"),
            None => write!(f, "Artifact({}, {} bytes, {})", self.source.display(), self.zip.len(), self.sha256),
        }
    }
}

/// Why the deployment package cannot be built.
#[derive(Debug, thiserror::Error)]
pub enum ArtifactError {
    /// The file cannot be read.
    #[error("{path}: cannot read the Lambda artifact", path = .path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// Not a Linux x86_64/arm64 executable, or a zip without one named `bootstrap`.
    #[error(
        "{path}: {problem}; Lambda's provided.al2023 runtime needs a Linux x86_64 or arm64 executable: {fix}",
        path = .path.display(), fix = build_fix(None)
    )]
    NotLinux { path: PathBuf, problem: String },
    /// The executable needs a newer glibc than provided.al2023 has: it would not start there.
    #[error(
        "{path}: `bootstrap` needs {version} (from {library}), newer than the glibc {al2023} of Lambda's \
         provided.al2023, so the function would fail to start: {fix}",
        path = .path.display(), al2023 = AL2023_GLIBC, fix = build_fix(Some(.architecture))
    )]
    Glibc { path: PathBuf, version: String, library: String, architecture: String },
    /// The executable's architecture is not the function's.
    #[error(
        "{path}: `bootstrap` is {found}, but the function is {wanted} (lambda_architecture in flixops.toml): set \
         lambda_architecture = \"{found}\", or {fix}",
        path = .path.display(), fix = build_fix(Some(.wanted))
    )]
    Architecture { path: PathBuf, found: String, wanted: String },
    /// Lambda takes a zip of at most 50 MB in the request.
    #[error(
        "{path}: the zipped package is {mb} MB, over Lambda's 50 MB limit for a direct upload; {fix}",
        path = .path.display(), fix = build_fix(None)
    )]
    TooLarge { path: PathBuf, mb: usize },
    /// `deploy` would have to upload code it does not have.
    #[error("aws_lambda_function.extract: deploy must {action}, but {why}")]
    CodeUnknown { action: &'static str, why: String },
}

/// How to get a package Lambda can run: the release's, or a cloud-only build against glibc 2.34.
/// `architecture` is Lambda's name of the function's (None: either).
pub fn build_fix(architecture: Option<&str>) -> String {
    let (zip, target) = match architecture {
        Some("arm64") => ("flixops-lambda-arm64.zip", "aarch64-unknown-linux-gnu.2.34"),
        Some(_) => ("flixops-lambda-x86_64.zip", "x86_64-unknown-linux-gnu.2.34"),
        None => ("flixops-lambda-x86_64.zip (flixops-lambda-arm64.zip for arm64)", "x86_64-unknown-linux-gnu.2.34"),
    };
    format!(
        "pass --artifact PATH with the release's {zip}, or build the cloud-only binary against glibc {AL2023_GLIBC} \
         (`pip install ziglang cargo-zigbuild`, then `cargo zigbuild --profile lambda --no-default-features --target \
         {target}`) and pass target/…/lambda/flixops"
    )
}

/// Lambda's limit for a zip sent in the CreateFunction/UpdateFunctionCode request.
const MAX_ZIP_BYTES: usize = 50 * 1024 * 1024;

impl Artifact {
    /// Packages `path` (an executable, or a zip holding `bootstrap`); None packages this very
    /// binary when Lambda can run it, and is otherwise a package whose code is unknown.
    pub fn load(path: Option<&Path>) -> Result<Self, ArtifactError> {
        match path {
            Some(path) => Self::from_file(path, true),
            None => Ok(Self::this_binary()),
        }
    }

    fn this_binary() -> Self {
        let exe = match std::env::current_exe() {
            Ok(exe) => exe,
            Err(e) => return Self::unknown(format!("this flixops binary cannot be found ({e}); {}", build_fix(None))),
        };
        Self::from_file(&exe, false)
            .unwrap_or_else(|e| Self::unknown(format!("this flixops is no Lambda package: {e}")))
    }

    fn from_file(source: &Path, given: bool) -> Result<Self, ArtifactError> {
        let bytes = std::fs::read(source).map_err(|e| ArtifactError::Read { path: source.into(), source: e })?;
        let not_linux = |problem: &str| ArtifactError::NotLinux { path: source.into(), problem: problem.into() };
        let bootstrap = match bytes.starts_with(b"PK\x03\x04") {
            true => Some(bootstrap_in_zip(&bytes).ok_or_else(|| not_linux("the zip has no file named `bootstrap`"))?),
            false => None,
        };
        let executable = inspect(bootstrap.as_deref().unwrap_or(&bytes)).map_err(|problem| not_linux(&problem))?;
        if let Some((version, library)) = executable.glibc.as_ref().filter(|(v, _)| *v > AL2023_GLIBC) {
            let (version, library) = (version.symbol(), library.clone());
            let architecture = executable.architecture.to_string();
            return Err(ArtifactError::Glibc { path: source.into(), version, library, architecture });
        }
        let zip = match bootstrap {
            Some(_) => bytes,
            None => zip_bootstrap(&bytes).map_err(|e| not_linux(&format!("cannot zip it: {e}")))?,
        };
        if zip.len() > MAX_ZIP_BYTES {
            return Err(ArtifactError::TooLarge { path: source.into(), mb: zip.len() / (1024 * 1024) });
        }
        let sha256 = base64::engine::general_purpose::STANDARD.encode(sha2::Sha256::digest(&zip));
        let architecture = executable.architecture.into();
        Ok(Self { zip, sha256, architecture, source: source.into(), given, unknown: None })
    }

    /// A package whose code is unknown, and why.
    pub fn unknown(why: String) -> Self {
        let (zip, sha256, architecture) = (Vec::new(), String::new(), String::new());
        Self { zip, sha256, architecture, source: PathBuf::new(), given: false, unknown: Some(why) }
    }

    /// No package, for commands that never upload code (`destroy`).
    pub fn none() -> Self {
        Self::unknown("destroy uploads no code".into())
    }

    /// This package for a function of `wanted` architecture: a given one must be built for it; this
    /// binary, built for another, leaves the code unknown.
    pub fn for_architecture(self, wanted: &str) -> Result<Self, ArtifactError> {
        if self.unknown.is_some() || self.architecture == wanted {
            return Ok(self);
        }
        let (found, path) = (self.architecture.clone(), self.source.clone());
        if self.given {
            return Err(ArtifactError::Architecture { path, found, wanted: wanted.into() });
        }
        Ok(Self::unknown(format!(
            "this flixops ({}) is {found} and the function is {wanted} (lambda_architecture); {}",
            path.display(),
            build_fix(Some(wanted))
        )))
    }
}

/// A zip with one entry, `bootstrap`, mode 755, a fixed timestamp: the same binary gives the same bytes.
fn zip_bootstrap(binary: &[u8]) -> zip::result::ZipResult<Vec<u8>> {
    let mut writer = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let options = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated)
        .unix_permissions(0o755)
        .last_modified_time(zip::DateTime::default());
    writer.start_file("bootstrap", options)?;
    writer.write_all(binary)?;
    Ok(writer.finish()?.into_inner())
}

fn bootstrap_in_zip(bytes: &[u8]) -> Option<Vec<u8>> {
    let mut archive = zip::ZipArchive::new(std::io::Cursor::new(bytes)).ok()?;
    let mut entry = archive.by_name("bootstrap").ok()?;
    let mut bootstrap = Vec::with_capacity(entry.size() as usize);
    entry.read_to_end(&mut bootstrap).ok()?;
    Some(bootstrap)
}

/// A glibc version, `major.minor`, ordered as numbers (2.4 < 2.34).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Glibc(pub u32, pub u32);

impl std::fmt::Display for Glibc {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}", self.0, self.1)
    }
}

impl Glibc {
    /// The version a symbol-version name asks for: `GLIBC_2.34` (`GLIBC_2.3.4` counts as 2.3), and
    /// `GLIBC_ABI_DT_RELR`, the packed relocations glibc reads since 2.36. None: not a glibc version.
    pub fn of(name: &str) -> Option<Self> {
        if name == "GLIBC_ABI_DT_RELR" {
            return Some(Self(2, 36));
        }
        let mut parts = name.strip_prefix("GLIBC_")?.split('.');
        let major = parts.next()?.parse().ok()?;
        let minor = parts.next().map_or(Some(0), |m| m.parse().ok())?;
        Some(Self(major, minor))
    }

    /// As a symbol version names it.
    fn symbol(&self) -> String {
        if *self == Self(2, 36) { format!("GLIBC_{self} (or GLIBC_ABI_DT_RELR)") } else { format!("GLIBC_{self}") }
    }
}

/// What Lambda needs to know of an executable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Executable {
    /// `x86_64` or `arm64`.
    pub architecture: &'static str,
    /// The newest glibc it needs and the library that asks for it; None for a static binary.
    pub glibc: Option<(Glibc, String)>,
}

/// Reads a Linux ELF executable's architecture and the newest glibc version its `.gnu.version_r`
/// (the versions it needs of each shared library) names. Err says what it is instead.
pub fn inspect(bytes: &[u8]) -> Result<Executable, String> {
    if !bytes.starts_with(b"\x7fELF") {
        return Err(format!("not a Linux x86_64 or arm64 ELF executable ({})", kind_of(bytes)));
    }
    let unreadable = |e: object::read::Error| format!("not a readable 64-bit ELF executable ({e})");
    let header = object::elf::FileHeader64::<object::Endianness>::parse(bytes).map_err(unreadable)?;
    let endian = header.endian().map_err(unreadable)?;
    let os_abi = header.e_ident().os_abi;
    if ![object::elf::ELFOSABI_NONE, object::elf::ELFOSABI_GNU].contains(&os_abi) {
        return Err(format!("an ELF executable for another system than Linux (OS ABI {os_abi})"));
    }
    let architecture = match header.e_machine(endian) {
        object::elf::EM_X86_64 => "x86_64",
        object::elf::EM_AARCH64 => "arm64",
        other => return Err(format!("not a Linux x86_64 or arm64 ELF executable (ELF machine {other})")),
    };
    let sections = header.sections(endian, bytes).map_err(unreadable)?;
    let mut newest: Option<(Glibc, String)> = None;
    if let Some((mut needs, link)) = sections.gnu_verneed(endian, bytes).map_err(unreadable)? {
        let strings = sections.strings(endian, bytes, link).map_err(unreadable)?;
        while let Some((need, mut versions)) = needs.next().map_err(unreadable)? {
            let library = String::from_utf8_lossy(need.file(endian, strings).map_err(unreadable)?).into_owned();
            while let Some(version) = versions.next().map_err(unreadable)? {
                let name = version.name(endian, strings).map_err(unreadable)?;
                let Some(glibc) = std::str::from_utf8(name).ok().and_then(Glibc::of) else { continue };
                if newest.as_ref().is_none_or(|(v, _)| glibc > *v) {
                    newest = Some((glibc, library.clone()));
                }
            }
        }
    }
    Ok(Executable { architecture, glibc: newest })
}

/// What a file that is not ELF looks like, for the message.
fn kind_of(bytes: &[u8]) -> &'static str {
    match bytes.get(..4) {
        Some([0xcf, 0xfa, 0xed, 0xfe] | [0xca, 0xfe, 0xba, 0xbe]) => "a macOS Mach-O binary",
        Some([b'M', b'Z', ..]) => "a Windows executable",
        Some([b'#', b'!', ..]) => "a script",
        _ => "not an executable",
    }
}

#[cfg(test)]
#[path = "../../tests/common/elf.rs"]
mod elf;

#[cfg(test)]
mod tests {
    use super::elf::{Machine, minimal_elf};
    use super::*;

    fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
        let path = dir.join(name);
        std::fs::write(&path, bytes).unwrap();
        path
    }

    #[test]
    fn glibc_versions_order_as_numbers() {
        assert!(Glibc::of("GLIBC_2.4").unwrap() < Glibc::of("GLIBC_2.34").unwrap());
        assert_eq!(Glibc::of("GLIBC_2.2.5"), Some(Glibc(2, 2)));
        assert_eq!(Glibc::of("GLIBC_ABI_DT_RELR"), Some(Glibc(2, 36)), "packed relocations need glibc 2.36");
        assert_eq!(Glibc::of("GLIBC_PRIVATE"), None);
        assert_eq!(Glibc::of("GCC_3.0"), None);
    }

    #[test]
    fn the_newest_glibc_version_needed_is_read_from_gnu_version_r() {
        let bytes = minimal_elf(
            Machine::X86_64,
            &[("libc.so.6", &["GLIBC_2.2.5", "GLIBC_2.39"]), ("libm.so.6", &["GLIBC_2.29"])],
        );
        let found = inspect(&bytes).unwrap();
        assert_eq!(found, Executable { architecture: "x86_64", glibc: Some((Glibc(2, 39), "libc.so.6".into())) });
        let arm =
            inspect(&minimal_elf(Machine::Aarch64, &[("libgcc_s.so.1", &["GCC_3.0"]), ("libc.so.6", &["GLIBC_2.17"])]));
        assert_eq!(arm.unwrap(), Executable { architecture: "arm64", glibc: Some((Glibc(2, 17), "libc.so.6".into())) });
        let static_binary = inspect(&minimal_elf(Machine::X86_64, &[])).unwrap();
        assert_eq!(static_binary.glibc, None, "a static (musl) binary needs no glibc");
    }

    #[test]
    fn this_machines_programs_read_as_their_readelf_says() {
        // /bin/true is a real executable of this machine: whatever its glibc, inspect agrees with
        // what the dynamic loader will be asked for (binutils' readelf, when installed).
        let bytes = std::fs::read("/bin/true").unwrap();
        let found = inspect(&bytes).unwrap();
        let arch = if cfg!(target_arch = "aarch64") { "arm64" } else { "x86_64" };
        assert_eq!(found.architecture, arch);
        let Ok(out) = std::process::Command::new("readelf").args(["-V", "/bin/true"]).output() else { return };
        let text = String::from_utf8_lossy(&out.stdout);
        let newest =
            text.split_whitespace().filter_map(|w| Glibc::of(w).filter(|_| text.contains(&format!("Name: {w}")))).max();
        assert_eq!(found.glibc.map(|(v, _)| v), newest, "{text}");
    }

    #[test]
    fn a_binary_built_on_a_newer_glibc_is_refused_with_the_fix() {
        let dir = tempfile::tempdir().unwrap();
        let new = write(dir.path(), "bootstrap", &minimal_elf(Machine::X86_64, &[("libc.so.6", &["GLIBC_2.35"])]));
        let err = Artifact::load(Some(&new)).unwrap_err().to_string();
        assert!(err.contains("needs GLIBC_2.35 (from libc.so.6), newer than the glibc 2.34"), "{err}");
        assert!(err.contains("--target x86_64-unknown-linux-gnu.2.34") && err.contains("--artifact"), "{err}");
        let arm = minimal_elf(Machine::Aarch64, &[("libc.so.6", &["GLIBC_ABI_DT_RELR", "GLIBC_2.17"])]);
        let err = Artifact::load(Some(&write(dir.path(), "arm", &arm))).unwrap_err().to_string();
        assert!(
            err.contains("GLIBC_2.36 (or GLIBC_ABI_DT_RELR)") && err.contains("aarch64-unknown-linux-gnu.2.34"),
            "{err}"
        );
        assert!(err.contains("flixops-lambda-arm64.zip"), "{err}");

        let ok = write(dir.path(), "ok", &minimal_elf(Machine::X86_64, &[("libc.so.6", &["GLIBC_2.34"])]));
        assert_eq!(Artifact::load(Some(&ok)).unwrap().architecture, "x86_64", "2.34 itself is fine");
        // Inside a zip, `bootstrap` is checked the same way.
        let zipped = write(dir.path(), "fn.zip", &zip_bootstrap(&std::fs::read(&new).unwrap()).unwrap());
        let err = Artifact::load(Some(&zipped)).unwrap_err().to_string();
        assert!(err.contains("fn.zip: `bootstrap` needs GLIBC_2.35"), "{err}");
    }

    #[test]
    fn the_same_binary_zips_to_the_same_bytes_and_others_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let mut bytes = minimal_elf(Machine::X86_64, &[("libc.so.6", &["GLIBC_2.17"])]);
        bytes.extend_from_slice(b"payload");
        let small = write(dir.path(), "bootstrap", &bytes);
        let a = Artifact::load(Some(&small)).unwrap();
        let b = Artifact::load(Some(&small)).unwrap();
        assert_eq!(a.sha256, b.sha256, "zips of the same binary must hash the same");
        let zipped = write(dir.path(), "fn.zip", &a.zip);
        assert_eq!(Artifact::load(Some(&zipped)).unwrap().sha256, a.sha256, "a ready zip is used as is");

        let mut huge = minimal_elf(Machine::X86_64, &[]);
        huge.extend(std::iter::repeat_with(|| fastrand::u8(..)).take(51 * 1024 * 1024));
        let err = Artifact::load(Some(&write(dir.path(), "big", &huge))).unwrap_err().to_string();
        assert!(err.contains("over Lambda's 50 MB limit") && err.contains("--no-default-features"), "{err}");

        for (name, bytes, what) in [
            ("run.sh", b"#!/bin/sh\n".to_vec(), "a script"),
            ("mac", vec![0xcf, 0xfa, 0xed, 0xfe, 7, 0, 0, 1], "a macOS Mach-O binary"),
            ("riscv", minimal_elf(Machine::Other(243), &[]), "ELF machine 243"),
        ] {
            let err = Artifact::load(Some(&write(dir.path(), name, &bytes))).unwrap_err().to_string();
            assert!(err.contains(what) && err.contains("--artifact"), "{name}: {err}");
        }
        let mut other = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
        other.start_file("flixops", zip::write::SimpleFileOptions::default()).unwrap();
        other.write_all(&minimal_elf(Machine::X86_64, &[])).unwrap();
        let other = write(dir.path(), "other.zip", &other.finish().unwrap().into_inner());
        let err = Artifact::load(Some(&other)).unwrap_err().to_string();
        assert!(err.contains("the zip has no file named `bootstrap`"), "{err}");
    }

    #[test]
    fn an_artifact_for_another_architecture_is_refused_and_this_binary_becomes_unknown() {
        let dir = tempfile::tempdir().unwrap();
        let arm = write(dir.path(), "arm", &minimal_elf(Machine::Aarch64, &[("libc.so.6", &["GLIBC_2.17"])]));
        let given = Artifact::load(Some(&arm)).unwrap();
        assert_eq!(given.clone().for_architecture("arm64").unwrap().architecture, "arm64");
        let err = given.for_architecture("x86_64").unwrap_err().to_string();
        assert!(err.contains("`bootstrap` is arm64, but the function is x86_64"), "{err}");
        assert!(err.contains("lambda_architecture = \"arm64\""), "{err}");

        let mine = Artifact::load(None).unwrap();
        let other = if mine.architecture == "arm64" { "x86_64" } else { "arm64" };
        if mine.unknown.is_none() {
            let unknown = mine.for_architecture(other).unwrap();
            let why = unknown.unknown.unwrap();
            assert!(why.contains(&format!("and the function is {other}")) && why.contains("--artifact"), "{why}");
        }
    }
}
