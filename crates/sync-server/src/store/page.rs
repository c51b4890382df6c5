//! The page math of a pull, the same for every store: which cursors are
//! valid, how far a filtered pull looks, when a page is full, and where the
//! next one starts.

use super::{ChangeSink, ChangesBatch, ChangesQuery, StoreError};
use super::{MAX_EXAMINED_ENTRIES, MAX_PAGE_PAYLOAD_BYTES};
use sync_core::wire::ChangeJson;
use sync_core::ServerVersion;

/// A pull page being filled from the log rows after the cursor.
pub(crate) struct ChangesPage<C> {
    changes: C,
    limit: usize,
    cursor: ServerVersion,
    head: ServerVersion,
    oldest: ServerVersion,
    window_end: ServerVersion,
    bytes: usize,
    last: Option<ServerVersion>,
    full: bool,
}

impl<C: ChangeSink> ChangesPage<C> {
    /// Opens a page for `query` on a log holding `oldest..=head`; a cursor
    /// outside it is expired.
    pub fn open(
        query: &ChangesQuery,
        head: ServerVersion,
        oldest: ServerVersion,
    ) -> Result<ChangesPage<C>, StoreError> {
        if query.cursor + 1 < oldest || query.cursor > head {
            return Err(StoreError::CursorExpired {
                oldest_retained_version: oldest,
            });
        }
        // A filtered pull may match nothing for a long stretch: it examines
        // a bounded window, so one request's cost never grows with the log.
        let filtered = query.project_id.is_some() || query.tables.is_some();
        let window_end = match filtered {
            true => head.min(query.cursor.saturating_add(MAX_EXAMINED_ENTRIES)),
            false => head,
        };
        Ok(ChangesPage {
            changes: C::default(),
            limit: query.limit,
            cursor: query.cursor,
            head,
            oldest,
            window_end,
            bytes: 0,
            last: None,
            full: false,
        })
    }

    /// The last version the page's query may read.
    pub fn window_end(&self) -> ServerVersion {
        self.window_end
    }

    /// How many rows to ask for: one more than fits, to know whether more follow.
    pub fn row_limit(&self) -> i64 {
        self.limit as i64 + 1
    }

    /// Payload bytes taken so far.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// Offers the next matching row, `bytes_before` payload bytes into the
    /// page; false (and the page is full) when it does not fit. At least one
    /// change always fits.
    pub fn offer(&mut self, change: ChangeJson<'_>, bytes_before: usize) -> bool {
        let count = self.changes.count();
        if count == self.limit || (bytes_before >= MAX_PAGE_PAYLOAD_BYTES && count > 0) {
            self.full = true;
            return false;
        }
        self.bytes += change.payload_len();
        self.last = Some(change.server_version);
        self.changes.take(change);
        true
    }

    /// The finished page: a full page ends at its last change, any other at
    /// the end of the window examined.
    pub fn finish(self) -> ChangesBatch<C> {
        let cursor = match (self.full, self.last) {
            (true, Some(last)) => last,
            _ => self.window_end.max(self.cursor),
        };
        ChangesBatch {
            has_more: cursor < self.head,
            changes: self.changes,
            cursor,
            oldest_retained_version: self.oldest,
        }
    }
}
