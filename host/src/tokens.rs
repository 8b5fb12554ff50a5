//! Bearer tokens and roles.
//!
//! A token is 256 random bits, shown once as `repod_<64 hex>`; the database
//! keeps only its SHA-256, so a leaked database grants nothing.

use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::db::{Db, now};

/// Roles, weakest first: each one can do everything the ones before it can.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Reader,
    Uploader,
    Maintainer,
    Admin,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Reader => "reader",
            Role::Uploader => "uploader",
            Role::Maintainer => "maintainer",
            Role::Admin => "admin",
        }
    }

    pub fn parse(s: &str) -> Option<Role> {
        [Role::Reader, Role::Uploader, Role::Maintainer, Role::Admin]
            .into_iter()
            .find(|r| r.as_str() == s)
    }
}

/// Who is calling, once their token checked out.
#[derive(Debug, Clone, Serialize)]
pub struct Caller {
    pub name: String,
    pub role: Role,
}

#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("a token named {0} already exists")]
    NameTaken(String),
    #[error("token name must be 1-64 characters of [A-Za-z0-9._@-]")]
    BadName,
    #[error(transparent)]
    Db(#[from] sqlx::Error),
}

fn digest(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

fn random_hex(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    getrandom::fill(&mut buf).expect("the OS random source works");
    hex::encode(buf)
}

/// Creates a token and returns its id and the token itself; this is the
/// only time the token is visible.
pub async fn create(
    conn: &mut sqlx::AnyConnection,
    name: &str,
    role: Role,
) -> Result<(String, String), TokenError> {
    let valid = !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'@' | b'-'));
    if !valid {
        return Err(TokenError::BadName);
    }
    let token = format!("repod_{}", random_hex(32));
    let id = random_hex(16);
    let result = sqlx::query(
        "INSERT INTO tokens (id, name, role, token_sha256, created_at) VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(&id)
    .bind(name)
    .bind(role.as_str())
    .bind(digest(&token))
    .bind(now())
    .execute(conn)
    .await;
    match result {
        Ok(_) => Ok((id, token)),
        Err(sqlx::Error::Database(e)) if e.is_unique_violation() => {
            Err(TokenError::NameTaken(name.into()))
        }
        Err(e) => Err(e.into()),
    }
}

/// The caller a token belongs to, if any.
pub async fn authenticate(db: &Db, token: &str) -> Result<Option<Caller>, sqlx::Error> {
    let row: Option<(String, String)> =
        sqlx::query_as("SELECT name, role FROM tokens WHERE token_sha256 = $1")
            .bind(digest(token))
            .fetch_optional(db)
            .await?;
    Ok(row.and_then(|(name, role)| Role::parse(&role).map(|role| Caller { name, role })))
}

/// A token as listed: never the secret or its hash.
#[derive(Debug, Serialize, sqlx::FromRow)]
pub struct TokenInfo {
    pub id: String,
    pub name: String,
    pub role: String,
    pub created_at: i64,
}

pub async fn list(db: &Db) -> Result<Vec<TokenInfo>, sqlx::Error> {
    sqlx::query_as("SELECT id, name, role, created_at FROM tokens ORDER BY name")
        .fetch_all(db)
        .await
}

pub async fn find(db: &Db, name: &str) -> Result<Option<TokenInfo>, sqlx::Error> {
    sqlx::query_as("SELECT id, name, role, created_at FROM tokens WHERE name = $1")
        .bind(name)
        .fetch_optional(db)
        .await
}

/// Revokes a token; false if there was none with that id.
pub async fn revoke(conn: &mut sqlx::AnyConnection, id: &str) -> Result<bool, sqlx::Error> {
    let done = sqlx::query("DELETE FROM tokens WHERE id = $1")
        .bind(id)
        .execute(conn)
        .await?;
    Ok(done.rows_affected() > 0)
}
