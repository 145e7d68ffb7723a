//! The PostgreSQL store against the backend conformance suite, on a real PostgreSQL
//! (`scripts/testbeds/postgres.sh` installs and starts it on loopback). Each case gets a
//! schema of its own, so cases run in parallel on one database.

use std::sync::Arc;
use tenure_store::crypto::MasterKey;
use tenure_store::{PgOptions, PgStore, Store};

mod postgres_bed {
    include!("support/postgres_bed.rs");
}

async fn postgres() -> (Arc<dyn Store>, ()) {
    let options = PgOptions {
        max_connections: 4,
        schema: Some(postgres_bed::fresh_schema("conformance")),
        ..PgOptions::new(postgres_bed::url())
    };
    let store = PgStore::open(&options, MasterKey::from_bytes([7; 32]))
        .await
        .expect("open the PostgreSQL store");
    (store, ())
}

tenure_store::conformance_suite!(postgres);
