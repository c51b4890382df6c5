//! The store suite on the embedded SQLite store.

mod store_suite;

use std::sync::Arc;
use store_suite::StoreUnderTest;
use sync_server::store::sqlite::SqliteStore;
use sync_server::store::Store;

struct Sqlite {
    store: Arc<dyn Store>,
    _dir: tempfile::TempDir,
}

impl StoreUnderTest for Sqlite {
    fn store(&self) -> Arc<dyn Store> {
        self.store.clone()
    }
}

async fn sqlite() -> Sqlite {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(
        &dir.path().join("suite.db"),
        sync_core::TableConfig::or3_chat(),
    )
    .unwrap();
    Sqlite {
        store: Arc::new(store),
        _dir: dir,
    }
}

store_suite!(sqlite);
