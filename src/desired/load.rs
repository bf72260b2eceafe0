//! Finds and reads the desired-state files: `-f` paths, directories, the size limit, and the
//! checks that span files (one organization declared in two files).

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use super::validate::parse_file;
use super::yaml::MAX_FILE_BYTES;
use super::{DesiredState, Diagnostic, Directory, LoadError, OrgRef, Origin, SourceFile};

/// The file read when neither `-f` nor `MEMBERSYNC_FILE` names one.
pub const DEFAULT_FILE: &str = "membersync.yaml";

/// Why [`load`] gave no desired state.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// The files are invalid or missing: every problem found, each with its place (invalid
    /// input).
    #[error(transparent)]
    Invalid(#[from] LoadError),
    /// A file or directory could not be read for lack of resources (file descriptors, memory)
    /// or because the system failed (an I/O error): not the files' fault, and the next attempt
    /// may succeed (an operational failure).
    #[error("cannot read {}: {detail} (the system is short of resources; the files were not checked)", path.display())]
    Unavailable { path: PathBuf, detail: String },
}

/// Loads every file named by `paths` (a directory stands for its `*.yaml`/`*.yml` files,
/// sorted by name) and validates them together. Every problem in every file is reported.
pub fn load(paths: &[PathBuf]) -> Result<DesiredState, ReadError> {
    let mut problems = Problems::default();
    let files = expand(paths, &mut problems);
    let mut texts = Vec::with_capacity(files.len());
    for file in files {
        if problems.unavailable.is_some() {
            break;
        }
        if let Some(text) = read(&file, &mut problems) {
            texts.push((file, text));
        }
    }
    if let Some(unavailable) = problems.unavailable {
        return Err(unavailable);
    }
    let mut diagnostics = problems.diagnostics;
    match load_files(&texts) {
        Ok(state) if diagnostics.is_empty() => Ok(state),
        Ok(_) => Err(LoadError(diagnostics).into()),
        Err(LoadError(more)) => {
            diagnostics.extend(more);
            Err(LoadError(diagnostics).into())
        }
    }
}

/// What went wrong while finding and reading the files.
#[derive(Default)]
struct Problems {
    diagnostics: Vec<Diagnostic>,
    /// The first read that failed for lack of resources: nothing more is read.
    unavailable: Option<ReadError>,
}

impl Problems {
    fn push(&mut self, diagnostic: Diagnostic) {
        self.diagnostics.push(diagnostic);
    }

    /// A failed read of `path`: the file's problem, or the system's.
    fn io(&mut self, path: &Path, doing: &str, error: &std::io::Error) {
        if is_resource_error(error) {
            self.unavailable.get_or_insert(ReadError::Unavailable {
                path: path.to_owned(),
                detail: error.to_string(),
            });
        } else {
            self.push(file_problem(path, format!("{doing}: {error}")));
        }
    }
}

/// Whether an I/O error is the system's (out of file descriptors or memory, interrupted, an
/// I/O error of the device) rather than the file's (missing, not allowed, a directory).
pub fn is_resource_error(error: &std::io::Error) -> bool {
    use std::io::ErrorKind;
    if matches!(
        error.kind(),
        ErrorKind::OutOfMemory
            | ErrorKind::Interrupted
            | ErrorKind::WouldBlock
            | ErrorKind::TimedOut
    ) {
        return true;
    }
    #[cfg(unix)]
    if let Some(code) = error.raw_os_error() {
        return [
            libc::EMFILE,
            libc::ENFILE,
            libc::ENOMEM,
            libc::ENOBUFS,
            libc::EAGAIN,
            libc::EINTR,
            libc::EIO,
        ]
        .contains(&code);
    }
    false
}

/// Lowercase hex SHA-256 of `bytes`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    hex(&Sha256::digest(bytes))
}

/// Lowercase hex of `bytes` (digests, as saved plans write them).
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Validates already-read files (path and text), as `load` does after reading them.
pub fn load_files(files: &[(PathBuf, String)]) -> Result<DesiredState, LoadError> {
    let mut diagnostics = Vec::new();
    let mut state = DesiredState {
        files: Vec::new(),
        organizations: Vec::new(),
        warnings: Vec::new(),
        all_organizations: None,
        groups: 0,
        directories: Vec::new(),
        directory_groups: 0,
        authorization: None,
    };
    let mut declared: HashMap<OrgRef, usize> = HashMap::new();
    let mut directories: HashMap<String, Origin> = HashMap::new();
    for (path, text) in files {
        state.files.push(SourceFile {
            path: path.clone(),
            sha256: sha256_hex(text.as_bytes()),
        });
        match parse_file(path, text) {
            Ok(parsed) => {
                state.warnings.extend(parsed.warnings);
                state.groups += parsed.groups;
                state.directory_groups += parsed.directory_groups;
                for (directory, origin) in parsed.directories {
                    add_directory(&mut state, &mut directories, directory, origin)
                        .unwrap_or_else(|problem| diagnostics.push(problem));
                }
                if let Some(rule) = parsed.all_organizations {
                    match &state.all_organizations {
                        Some(first) => diagnostics.push(rule.origin.diagnostic(
                            "all_organizations",
                            format!(
                                "`all_organizations` is already declared at {}",
                                first.origin
                            ),
                        )),
                        None => state.all_organizations = Some(rule),
                    }
                }
                if let Some(block) = parsed.authorization {
                    match &state.authorization {
                        Some(first) => diagnostics.push(block.origin.diagnostic(
                            "authorization",
                            format!("`authorization` is already declared at {}", first.origin),
                        )),
                        None => state.authorization = Some(block),
                    }
                }
                for organization in parsed.organizations {
                    if let Some(&index) = declared.get(&organization.key) {
                        let first = &state.organizations[index].origin;
                        diagnostics.push(organization.origin.diagnostic(
                            format!("organizations.{}", organization.key),
                            format!("this organization is already declared at {first}"),
                        ));
                        continue;
                    }
                    declared.insert(organization.key.clone(), state.organizations.len());
                    state.organizations.push(organization);
                }
            }
            Err(errors) => diagnostics.extend(errors),
        }
    }
    diagnostics.extend(super::organization::domains_declared_twice(
        &state.organizations,
    ));
    if diagnostics.is_empty() {
        Ok(state)
    } else {
        Err(LoadError(diagnostics))
    }
}

/// Adds a directory one file declares. Groups belong to their file, and so do directories;
/// but a directory is read once per run, so one name declared in two files must have the
/// same settings (then it is one directory).
fn add_directory(
    state: &mut DesiredState,
    seen: &mut HashMap<String, Origin>,
    directory: Directory,
    origin: Origin,
) -> Result<(), Diagnostic> {
    match seen.get(&directory.name) {
        None => {
            seen.insert(directory.name.clone(), origin);
            state.directories.push(directory);
            state.directories.sort_by(|a, b| a.name.cmp(&b.name));
            Ok(())
        }
        Some(_) if state.directories.contains(&directory) => Ok(()),
        Some(first) => Err(origin.diagnostic(
            format!("directories.{}", directory.name),
            format!(
                "the directory `{}` is declared at {first} with other settings; a directory is read once per run, so give it the same settings in every file, or another name",
                directory.name
            ),
        )),
    }
}

/// Turns the paths given into the list of files to read.
fn expand(paths: &[PathBuf], problems: &mut Problems) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for path in paths {
        match std::fs::metadata(path) {
            Ok(metadata) if metadata.is_dir() => match yaml_files_in(path) {
                Ok(found) if found.is_empty() => problems.push(file_problem(
                    path,
                    "the directory holds no *.yaml or *.yml file",
                )),
                Ok(found) => files.extend(found),
                Err(error) => problems.io(path, "cannot list the directory", &error),
            },
            Ok(_) => files.push(path.clone()),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
                problems.push(file_problem(path, "no such file or directory"))
            }
            Err(error) => problems.io(path, "cannot read", &error),
        }
    }
    files
}

/// The `*.yaml` and `*.yml` files directly in `directory`, sorted by name.
fn yaml_files_in(directory: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(directory)? {
        let path = entry?.path();
        let is_yaml = path
            .extension()
            .is_some_and(|ext| ext == "yaml" || ext == "yml");
        if is_yaml && path.is_file() {
            files.push(path);
        }
    }
    files.sort_by(|a, b| a.file_name().cmp(&b.file_name()));
    Ok(files)
}

/// The text of one file, or `None` with its problem noted.
fn read(path: &Path, problems: &mut Problems) -> Option<String> {
    let read = std::fs::metadata(path).and_then(|metadata| {
        if metadata.len() > MAX_FILE_BYTES {
            return Ok(Err(file_problem(
                path,
                format!(
                    "the file is {} bytes, over the limit of {} bytes (16 MiB); split it into several files",
                    metadata.len(),
                    MAX_FILE_BYTES
                ),
            )));
        }
        std::fs::read(path).map(|bytes| text(path, bytes))
    });
    match read {
        Ok(Ok(text)) => Some(text),
        Ok(Err(diagnostic)) => {
            problems.push(diagnostic);
            None
        }
        Err(error) => {
            problems.io(path, "cannot read", &error);
            None
        }
    }
}

/// The bytes of a file as text, or where they stop being UTF-8.
fn text(path: &Path, bytes: Vec<u8>) -> Result<String, Diagnostic> {
    String::from_utf8(bytes).map_err(|error| {
        let offset = error.utf8_error().valid_up_to();
        let before = &error.as_bytes()[..offset];
        let line = before.iter().filter(|&&b| b == b'\n').count() as u64 + 1;
        let column = (offset
            - before
                .iter()
                .rposition(|&b| b == b'\n')
                .map_or(0, |i| i + 1)) as u64
            + 1;
        Diagnostic {
            file: path.to_owned(),
            position: Some((line, column)),
            key: String::new(),
            message: "the file is not valid UTF-8".to_owned(),
        }
    })
}

fn file_problem(path: &Path, message: impl Into<String>) -> Diagnostic {
    Diagnostic {
        file: path.to_owned(),
        position: None,
        key: String::new(),
        message: message.into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_directory_stands_for_its_yaml_files_sorted_by_name() {
        let dir = tempfile::tempdir().unwrap();
        for name in ["b.yml", "a.yaml", "c.txt", "d.yaml.bak"] {
            std::fs::write(dir.path().join(name), "").unwrap();
        }
        std::fs::create_dir(dir.path().join("nested.yaml")).unwrap();
        let names: Vec<_> = yaml_files_in(dir.path())
            .unwrap()
            .iter()
            .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, ["a.yaml", "b.yml"]);
    }

    #[test]
    fn a_directory_without_yaml_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("notes.txt"), "").unwrap();
        let Err(ReadError::Invalid(error)) = load(&[dir.path().to_owned()]) else {
            panic!("invalid input");
        };
        assert!(error.0[0].message.contains("no *.yaml or *.yml"), "{error}");
    }

    #[test]
    fn every_file_of_a_directory_is_loaded() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("a.yaml"),
            "version: 1\norganizations:\n  org_a: {members: {user_1: admin}}\n",
        )
        .unwrap();
        std::fs::write(
            dir.path().join("b.yml"),
            "version: 1\norganizations:\n  org_b: {members: {user_2: member}}\n",
        )
        .unwrap();
        let state = load(&[dir.path().to_owned()]).unwrap();
        assert_eq!(state.files.len(), 2);
        let keys: Vec<_> = state
            .organizations
            .iter()
            .map(|o| o.key.to_string())
            .collect();
        assert_eq!(keys, ["org_a", "org_b"]);
    }
}

#[cfg(all(test, unix))]
mod resource_tests {
    use super::*;

    #[test]
    fn running_out_of_descriptors_or_memory_is_the_systems_problem_not_the_files() {
        for code in [libc::EMFILE, libc::ENFILE, libc::ENOMEM, libc::EIO] {
            assert!(is_resource_error(&std::io::Error::from_raw_os_error(code)));
        }
        for code in [libc::ENOENT, libc::EACCES, libc::EISDIR] {
            assert!(!is_resource_error(&std::io::Error::from_raw_os_error(code)));
        }
        let mut problems = Problems::default();
        let path = Path::new("m.yaml");
        problems.io(
            path,
            "cannot read",
            &std::io::Error::from_raw_os_error(libc::EACCES),
        );
        assert_eq!(problems.diagnostics.len(), 1);
        problems.io(
            path,
            "cannot read",
            &std::io::Error::from_raw_os_error(libc::EMFILE),
        );
        let Some(ReadError::Unavailable { detail, .. }) = problems.unavailable else {
            panic!("unavailable");
        };
        assert!(detail.contains("Too many open files"), "{detail}");
    }
}
