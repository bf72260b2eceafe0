//! Reading the directory groups a run uses (docs/directories.md): each group once, with one
//! client per directory (its own limiter, retry budget and token), the directories at the same
//! time. A group that cannot be read is recorded as unreadable, with why, for the planner to
//! keep everything it could decide; it never stops the run. The process keeps the last
//! reading of each group: a webhook reconcile of the daemon plans with what its last cycle
//! read instead of reading the directory again for every event.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};

use futures::future::join_all;

use super::{DirectoryClient, DirectoryError};
use crate::desired::{Directory, DirectoryGroup, People, Reading};

/// The last reading of each group in this process, by the directory's settings and the group.
type Last = HashMap<(Directory, DirectoryGroup), Reading>;

static LAST: Mutex<Option<Last>> = Mutex::new(None);

/// Reads every group of `wanted` from the directory of `directories` it names, and keeps the
/// readings as the process's last. No request when `wanted` is empty.
pub async fn read_groups(directories: &[Directory], wanted: &[DirectoryGroup]) -> People {
    let people = read_now(directories, wanted).await;
    let mut last = LAST.lock().unwrap_or_else(PoisonError::into_inner);
    let last = last.get_or_insert_with(Last::new);
    for (group, reading) in &people {
        if let Some(directory) = directories.iter().find(|d| *d.name == *group.directory) {
            last.insert((directory.clone(), group.clone()), reading.clone());
        }
    }
    people
}

/// The process's last reading of each group of `wanted` (what the daemon's last cycle read,
/// readable or not); the groups never read yet (with these settings) are read now.
pub async fn last_or_read(directories: &[Directory], wanted: &[DirectoryGroup]) -> People {
    let mut people = People::new();
    let mut missing = Vec::new();
    {
        let last = LAST.lock().unwrap_or_else(PoisonError::into_inner);
        for group in wanted {
            let directory = directories.iter().find(|d| *d.name == *group.directory);
            let known = directory.and_then(|directory| {
                last.as_ref()?
                    .get(&(directory.clone(), group.clone()))
                    .cloned()
            });
            match known {
                Some(reading) => {
                    people.insert(group.clone(), reading);
                }
                None => missing.push(group.clone()),
            }
        }
    }
    if !missing.is_empty() {
        people.extend(read_groups(directories, &missing).await);
    }
    people
}

/// Reads every group of `wanted` from the directory of `directories` it names.
async fn read_now(directories: &[Directory], wanted: &[DirectoryGroup]) -> People {
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
