//! The raw-SQL floor of `createTodo`: exactly what one createTodo commits
//! (its todo row and its outbox row, in one SERIALIZABLE transaction, the
//! outbox row riding in the todo's statement as production sends it), sent
//! by this process over a plain connection pool: no HTTP, no GraphQL, no
//! server. The request path's other statements (the caller's row, the
//! mutation budget) are the server's own cost and are not in the floor.
use std::sync::Arc;

use anyhow::Context as _;
use sea_orm::sqlx::{self, postgres::PgPoolOptions, PgPool};
use studysync::events::{self, Doc, TodoDoc};
use uuid::Uuid;

/// The statement one createTodo commits (`write::outbox::insert_with`).
const INSERT: &str = "WITH recorded AS (\
    INSERT INTO outbox (id, aggregate_type, aggregate_id, aggregate_version, event_type, payload) \
    VALUES ($1, 'todo', $2, 1, 'todo.created', $3) RETURNING id) \
    INSERT INTO todos (id, user_id, title, completed, completed_at, due_at, version, created_at, updated_at) \
    VALUES ($2, $4, $5, false, NULL, NULL, 1, $6, $6) \
    RETURNING id, user_id, title, completed, completed_at, due_at, version, created_at, updated_at";

/// A pool of its own and the seeded users its clients write as.
#[derive(Clone)]
pub struct RawFloor {
    pool: PgPool,
    users: Arc<Vec<Uuid>>,
}

impl RawFloor {
    /// Connects `clients` connections (one per concurrent client) and
    /// picks as many seeded users.
    pub async fn connect(database_url: &str, clients: u32) -> anyhow::Result<Self> {
        let options: sqlx::postgres::PgConnectOptions =
            database_url.parse().context("parsing the database URL")?;
        let options = options.options([("default_transaction_isolation", "serializable")]);
        let pool = PgPoolOptions::new()
            .max_connections(clients.max(1))
            .connect_with(options)
            .await
            .context("connecting the raw-SQL floor")?;
        let users: Vec<Uuid> = sqlx::query_scalar("SELECT id FROM users ORDER BY id LIMIT $1")
            .bind(i64::from(clients.max(1)))
            .fetch_all(&pool)
            .await
            .context("reading users for the raw-SQL floor")?;
        anyhow::ensure!(!users.is_empty(), "no seeded user for the raw-SQL floor");
        Ok(Self {
            pool,
            users: Arc::new(users),
        })
    }

    /// One createTodo's transaction, by client `c`: `BEGIN` (SERIALIZABLE),
    /// the statement, `COMMIT`.
    pub fn create_todo(
        &self,
        c: usize,
        i: usize,
    ) -> futures::future::BoxFuture<'static, anyhow::Result<()>> {
        let floor = self.clone();
        // Boxed here, where the connection's lifetimes are concrete: the
        // load generator needs a `Send` future it can name.
        Box::pin(async move { floor.transaction(c, i).await })
    }

    async fn transaction(&self, c: usize, i: usize) -> anyhow::Result<()> {
        let user = self.users[c % self.users.len()];
        let (id, event) = (Uuid::new_v4(), Uuid::new_v4());
        let now = studysync::domain::now();
        let title = format!("Bench todo {c}-{i}");
        let payload = events::encode(&Doc::Todo(TodoDoc {
            user_id: user,
            title: title.clone(),
            completed: false,
            completed_at: None,
            due_at: None,
            created_at: now,
            updated_at: now,
        }));
        // `BEGIN`: the pool's sessions default to SERIALIZABLE, as the
        // server's do.
        let mut tx = self.pool.begin().await?;
        sqlx::query(INSERT)
            .bind(event)
            .bind(id)
            .bind(payload)
            .bind(user)
            .bind(title)
            .bind(now)
            .fetch_one(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    pub async fn close(self) {
        self.pool.close().await;
    }
}
