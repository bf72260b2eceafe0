//! Finds and reads the desired-state files: `-f` paths, directories, the size limit, and the
//! checks that span files (one organization declared in two files).

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use super::validate::parse_file;
use super::yaml::MAX_FILE_BYTES;
use super::{DesiredState, Diagnostic, LoadError, OrgRef, SourceFile};

/// The file read when neither `-f` nor `MEMBERSYNC_FILE` names one.
pub const DEFAULT_FILE: &str = "membersync.yaml";

/// Loads every file named by `paths` (a directory stands for its `*.yaml`/`*.yml` files,
/// sorted by name) and validates them together. Every problem in every file is reported.
pub fn load(paths: &[PathBuf]) -> Result<DesiredState, LoadError> {
    let mut diagnostics = Vec::new();
    let files = expand(paths, &mut diagnostics);
    let mut texts = Vec::with_capacity(files.len());
    for file in files {
        match read(&file) {
            Ok(text) => texts.push((file, text)),
            Err(diagnostic) => diagnostics.push(diagnostic),
        }
    }
    match load_files(&texts) {
        Ok(state) if diagnostics.is_empty() => Ok(state),
        Ok(_) => Err(LoadError(diagnostics)),
        Err(LoadError(more)) => {
            diagnostics.extend(more);
            Err(LoadError(diagnostics))
        }
    }
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
    };
    let mut declared: HashMap<OrgRef, usize> = HashMap::new();
    for (path, text) in files {
        state.files.push(SourceFile {
            path: path.clone(),
            sha256: sha256_hex(text.as_bytes()),
        });
        match parse_file(path, text) {
            Ok(parsed) => {
                state.warnings.extend(parsed.warnings);
                state.groups += parsed.groups;
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
    if diagnostics.is_empty() {
        Ok(state)
    } else {
        Err(LoadError(diagnostics))
    }
}

/// Turns the paths given into the list of files to read.
fn expand(paths: &[PathBuf], diagnostics: &mut Vec<Diagnostic>) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for path in paths {
        match std::fs::metadata(path) {
            Ok(metadata) if metadata.is_dir() => match yaml_files_in(path) {
                Ok(found) if found.is_empty() => diagnostics.push(file_problem(
                    path,
                    "the directory holds no *.yaml or *.yml file",
                )),
                Ok(found) => files.extend(found),
                Err(error) => diagnostics.push(file_problem(
                    path,
                    format!("cannot list the directory: {error}"),
                )),
            },
            Ok(_) => files.push(path.clone()),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
                diagnostics.push(file_problem(path, "no such file or directory"))
            }
            Err(error) => diagnostics.push(file_problem(path, format!("cannot read: {error}"))),
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

fn read(path: &Path) -> Result<String, Diagnostic> {
    let metadata = std::fs::metadata(path)
        .map_err(|error| file_problem(path, format!("cannot read: {error}")))?;
    if metadata.len() > MAX_FILE_BYTES {
        return Err(file_problem(
            path,
            format!(
                "the file is {} bytes, over the limit of {} bytes (16 MiB); split it into several files",
                metadata.len(),
                MAX_FILE_BYTES
            ),
        ));
    }
    let bytes =
        std::fs::read(path).map_err(|error| file_problem(path, format!("cannot read: {error}")))?;
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
        let error = load(&[dir.path().to_owned()]).unwrap_err();
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
