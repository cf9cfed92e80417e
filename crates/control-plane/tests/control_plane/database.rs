//! A fresh database per test: an SQLite file in a temporary directory, or a
//! uniquely named PostgreSQL database dropped afterwards.

use std::{future::Future, panic::AssertUnwindSafe, time::Duration};

use futures::FutureExt;
use sqlx::{Connection, PgConnection};
use tempfile::TempDir;

/// Where the tests find PostgreSQL; the `postgres` database on that server is
/// used to create and drop the per-test databases.
const POSTGRES_URL_VARIABLE: &str = "SWITCHYARD_TEST_POSTGRES_URL";
const DEFAULT_POSTGRES_URL: &str = "postgres://postgres@127.0.0.1:5432/test";

/// A database that exists for one test.
pub enum TestDatabase {
    Sqlite {
        _directory: TempDir,
        url: String,
    },
    Postgres {
        maintenance_url: String,
        name: String,
        url: String,
    },
}

impl TestDatabase {
    /// Returns a URL of an SQLite file that does not exist yet.
    pub fn sqlite() -> Self {
        let directory = tempfile::tempdir().expect("temporary directory");
        let path = directory.path().join("control.db");
        let url = format!("sqlite://{}", path.display());
        Self::Sqlite {
            _directory: directory,
            url,
        }
    }

    /// Creates a fresh PostgreSQL database. Fails, naming the command that
    /// starts the server, when PostgreSQL is unreachable: a test never passes
    /// without having run.
    pub async fn postgres() -> Option<Self> {
        let base = std::env::var(POSTGRES_URL_VARIABLE)
            .unwrap_or_else(|_| DEFAULT_POSTGRES_URL.to_owned());
        let mut maintenance_url = url::Url::parse(&base).expect("valid PostgreSQL URL");
        maintenance_url.set_path("/postgres");
        let maintenance_url = maintenance_url.to_string();
        let mut admin = match connect(&maintenance_url).await {
            Ok(admin) => admin,
            Err(reason) => panic!(
                "PostgreSQL is unreachable at {maintenance_url} ({reason}); \
                 start it with `bash .ci/services.sh`"
            ),
        };
        let name = format!("switchyard_cp_{}", uuid::Uuid::now_v7().simple());
        sqlx::raw_sql(&format!("CREATE DATABASE \"{name}\""))
            .execute(&mut admin)
            .await
            .expect("create test database");
        admin.close().await.expect("close admin connection");
        let mut url = url::Url::parse(&base).expect("valid PostgreSQL URL");
        url.set_path(&format!("/{name}"));
        Some(Self::Postgres {
            maintenance_url,
            name,
            url: url.to_string(),
        })
    }

    /// Returns the database URL for the control plane.
    pub fn url(&self) -> &str {
        match self {
            Self::Sqlite { url, .. } | Self::Postgres { url, .. } => url,
        }
    }

    /// Runs `scenario` on this database, then removes the database whether
    /// the scenario passed or panicked.
    pub async fn run<F, Fut>(self, scenario: F)
    where
        F: FnOnce(String) -> Fut,
        Fut: Future<Output = ()>,
    {
        let outcome = AssertUnwindSafe(scenario(self.url().to_owned()))
            .catch_unwind()
            .await;
        self.remove().await;
        if let Err(panic) = outcome {
            std::panic::resume_unwind(panic);
        }
    }

    async fn remove(self) {
        match self {
            Self::Sqlite { .. } => {}
            Self::Postgres {
                maintenance_url,
                name,
                ..
            } => {
                let mut admin = connect(&maintenance_url)
                    .await
                    .expect("reconnect to drop the test database");
                sqlx::raw_sql(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))
                    .execute(&mut admin)
                    .await
                    .expect("drop test database");
                admin.close().await.expect("close admin connection");
            }
        }
    }
}

async fn connect(url: &str) -> Result<PgConnection, String> {
    match tokio::time::timeout(Duration::from_secs(5), PgConnection::connect(url)).await {
        Ok(Ok(connection)) => Ok(connection),
        Ok(Err(error)) => Err(error.to_string()),
        Err(_) => Err("connection timed out".to_owned()),
    }
}
