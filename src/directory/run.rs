//! Reading the directory groups a run uses (docs/directories.md): each group once, with one
//! client per directory (its own limiter, retry budget and token), the directories at the same
//! time. A group that cannot be read is recorded as unreadable, with why, for the planner to
//! keep everything it could decide; it never stops the run.

use futures::future::join_all;

use super::{DirectoryClient, DirectoryError};
use crate::desired::{Directory, DirectoryGroup, People, Reading};

/// Reads every group of `wanted` from the directory of `directories` it names. No request when
/// `wanted` is empty.
pub async fn read_groups(directories: &[Directory], wanted: &[DirectoryGroup]) -> People {
    let reads = directories.iter().filter_map(|directory| {
        let groups: Vec<&DirectoryGroup> = wanted
            .iter()
            .filter(|group| *group.directory == *directory.name)
            .collect();
        (!groups.is_empty()).then(|| read_directory(directory, groups))
    });
    let mut people: People = join_all(reads).await.into_iter().flatten().collect();
    for group in wanted {
        // A group whose directory is not declared cannot get here (the files are checked).
        people
            .entry(group.clone())
            .or_insert_with(|| Reading::Unreadable("its directory is not declared".into()));
    }
    people
}

/// Reads `groups` of one directory, one after another with one client (one token).
async fn read_directory(
    directory: &Directory,
    groups: Vec<&DirectoryGroup>,
) -> Vec<(DirectoryGroup, Reading)> {
    let client = match DirectoryClient::new(directory) {
        Ok(client) => client,
        Err(error) => {
            let why = unreadable(&error);
            return groups
                .into_iter()
                .map(|group| (group.clone(), why.clone()))
                .collect();
        }
    };
    let mut read = Vec::with_capacity(groups.len());
    for group in groups {
        let reading = match client.read_group(&group.group).await {
            Ok(members) => Reading::People(std::sync::Arc::new(
                members
                    .people
                    .into_iter()
                    .map(|person| person.email)
                    .collect(),
            )),
            Err(error) => unreadable(&error),
        };
        read.push((group.clone(), reading));
    }
    tracing::debug!(
        directory = %directory.name,
        requests = client.requests(),
        "directory read"
    );
    read
}

/// Logs why a group could not be read (the message names the directory, never a credential).
fn unreadable(error: &DirectoryError) -> Reading {
    tracing::error!(%error, "directory group not read: it removes and demotes no one this run");
    Reading::Unreadable(error.to_string().into())
}
