//! One offset-paged membership listing read as a whole, and what its pages reveal about
//! memberships created or deleted while it was read (a listing that moved may have skipped
//! some, and must not be planned from).

use std::collections::HashSet;

use futures::{StreamExt, stream};

use crate::clerk::{ClerkError, Client, MembershipPage, PAGE_LIMIT};

/// How many pages a listing of `count` rows has.
pub(in crate::clerk) fn pages(count: u64) -> u64 {
    count.div_ceil(PAGE_LIMIT)
}

/// How long before the first page was served (by its `Date` header, in whole seconds) a
/// membership may have been created and still count as created while the listing was read:
/// Clerk's servers' clocks may differ a little.
pub(super) const CLOCK_MARGIN_MS: i64 = 1_000;

/// Why a listing that was read cannot be trusted: rows moved under its offsets while it was
/// read, so it may have skipped some.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Moved {
    /// The total changed between pages.
    TotalChanged,
    /// A membership was created since the listing began (or just before: the clocks have
    /// whole seconds), told apart so that a re-read can wait until that doubt has passed.
    CreatedMeanwhile,
    /// The pages held another number of rows than the total.
    RowsMiscounted,
    /// Two pages shared a membership.
    SharedRow,
}

impl Moved {
    /// As the logs say it.
    pub(super) fn as_str(self) -> &'static str {
        match self {
            Moved::TotalChanged => "the total changed between pages",
            Moved::CreatedMeanwhile => "a membership was created while the listing was read",
            Moved::RowsMiscounted => "the pages held another number of rows than the total",
            Moved::SharedRow => "two pages shared a membership",
        }
    }
}

/// Reads the pages of an offset-paged membership listing after `first` (its first page): the
/// middle pages concurrently, then the last page. Every page, `first` included, goes to
/// `keep`. Returns why the listing cannot be trusted, or `None` when it held still.
///
/// Read last, the last page shows whatever was created or deleted while the others were read:
/// a deletion lowers its total, a creation appears in it with a recent `created_at`.
pub(super) async fn read_listing<F, Fut>(
    client: &Client,
    first: MembershipPage,
    fetch: F,
    mut keep: impl FnMut(MembershipPage),
) -> Result<Option<Moved>, ClerkError>
where
    F: Fn(u64) -> Fut,
    Fut: std::future::Future<Output = Result<MembershipPage, ClerkError>>,
{
    let concurrency = client.config().concurrency as usize;
    let mut movement = Movement::new(&first, client.shared.own_writes.recently_created());
    let last_page = pages(first.total_count).saturating_sub(1);
    movement.see(0, &first);
    keep(first);
    let middle: Vec<u64> = (1..last_page).map(|page| page * PAGE_LIMIT).collect();
    let mut pages_stream = stream::iter(middle)
        .map(|offset| {
            let page = fetch(offset);
            async move { page.await.map(|page| (offset, page)) }
        })
        .buffer_unordered(concurrency);
    while let Some(page) = pages_stream.next().await {
        let (offset, page) = page?;
        movement.see(offset, &page);
        keep(page);
    }
    drop(pages_stream);
    if last_page > 0 {
        let offset = last_page * PAGE_LIMIT;
        let page = fetch(offset).await?;
        movement.see(offset, &page);
        keep(page);
    }
    Ok(movement.finish())
}

/// What the pages of one offset-paged listing reveal about changes made while it was read.
///
/// Offset paging shifts when rows are deleted or created in front of an offset: a page read
/// after a deletion starts one row later, and the row in between is never seen. Such a gap
/// shows as a total that differs between pages, a row count that differs from the total, two
/// pages that share a row, or (when a creation made up for the deletion) a membership created
/// after the listing began.
struct Movement {
    total: u64,
    /// Memberships created at or after this (Unix ms) were created during the listing.
    created_since: Option<i64>,
    /// Memberships this process created just before the listing began (no write of its own
    /// runs while a listing is read): not created during it.
    own: HashSet<String>,
    rows: u64,
    /// Offset → (first and last membership ID of the page).
    edges: Vec<(u64, String, String)>,
    reason: Option<Moved>,
}

impl Movement {
    fn new(first: &MembershipPage, own: HashSet<String>) -> Movement {
        Movement {
            total: first.total_count,
            created_since: first.served_at.map(|at| at - CLOCK_MARGIN_MS),
            own,
            rows: 0,
            edges: Vec::new(),
            reason: None,
        }
    }

    fn moved(&mut self, reason: Moved) {
        self.reason.get_or_insert(reason);
    }

    fn see(&mut self, offset: u64, page: &MembershipPage) {
        if page.total_count != self.total {
            self.moved(Moved::TotalChanged);
        }
        self.rows += page.data.len() as u64;
        // The first page is one read: only the later ones can show a creation after it.
        if offset > 0
            && let Some(since) = self.created_since
            && page
                .data
                .iter()
                .any(|m| m.created_at.is_some_and(|at| at >= since) && !self.own.contains(&m.id))
        {
            self.moved(Moved::CreatedMeanwhile);
        }
        if let (Some(first), Some(last)) = (page.data.first(), page.data.last()) {
            self.edges.push((offset, first.id.clone(), last.id.clone()));
        }
    }

    /// Why the listing cannot be trusted, or `None`.
    fn finish(mut self) -> Option<Moved> {
        if self.rows != self.total {
            self.moved(Moved::RowsMiscounted);
        }
        self.edges.sort();
        if self.edges.windows(2).any(|pair| pair[0].2 == pair[1].1) {
            self.moved(Moved::SharedRow);
        }
        self.reason
    }
}
