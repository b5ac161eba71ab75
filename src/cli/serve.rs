//! `driftsum serve`: the agent, serving one database's trees to comparers.

use clap::Args;

use driftsum::agent::server::{ServeOptions, Server, DEFAULT_LISTEN};
use driftsum::agent::tls;

/// Serve one database's trees to `driftsum diff --source driftsum://HOST:PORT`.
///
/// The agent builds a table's tree when a comparer asks (and keeps it while
/// the data is unchanged), then answers the walk's questions: a tree's root,
/// the children of a node, the leaf entries of a key range, rows by key. It
/// never writes to the database. Every request but GET /healthz must carry
/// the token (`Authorization: Bearer TOKEN`). HTTPS with --tls-cert and
/// --tls-key; plain HTTP only on a loopback address unless
/// --insecure-plaintext is given.
#[derive(Args)]
pub struct ServeArgs {
    /// The database to serve (the same forms as `diff --source`).
    #[arg(long, value_name = "URL")]
    pub db: String,
    /// Address to listen on. The default is loopback only; another address
    /// needs --tls-cert and --tls-key (or --insecure-plaintext).
    #[arg(long, value_name = "ADDR", default_value = DEFAULT_LISTEN)]
    pub listen: String,
    /// A file holding the shared token (at least 16 characters, e.g. from
    /// `openssl rand -hex 32`).
    #[arg(long, value_name = "FILE", required_unless_present = "token_env")]
    pub token_file: Option<std::path::PathBuf>,
    /// The environment variable holding the shared token, instead of
    /// --token-file (never the token itself on the command line, where `ps`
    /// shows it).
    #[arg(long, value_name = "NAME", conflicts_with = "token_file")]
    pub token_env: Option<String>,
    /// Let comparers send a --where condition, which runs as SQL on this
    /// database (read-only). Off by default.
    #[arg(long)]
    pub allow_where: bool,
    /// For PostgreSQL and MySQL, reuse a built tree for this many seconds
    /// (the agent cannot see their changes), and keep its snapshot open
    /// until it has been unused this long. SQLite trees are reused until
    /// the file changes.
    #[arg(long, value_name = "SECONDS", default_value_t = 60)]
    pub cache_seconds: u64,
    /// Requests with the token answered at once; more are answered 503.
    /// Up to 16 times as many connections may be sending their request; past
    /// that the oldest of them is cut off.
    #[arg(long, value_name = "N", default_value_t = 64)]
    pub max_connections: usize,
    /// Serve HTTPS with this certificate chain (PEM, the agent's own
    /// certificate first); comparers give the CA that signed it with
    /// `diff --ca FILE`.
    #[arg(long, value_name = "FILE", requires = "tls_key")]
    pub tls_cert: Option<std::path::PathBuf>,
    /// The private key (PEM) of --tls-cert.
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    pub tls_key: Option<std::path::PathBuf>,
    /// Serve plain HTTP on an address other machines can reach: the token
    /// and the rows then cross the network readable by anyone on the way.
    #[arg(long)]
    pub insecure_plaintext: bool,
}

pub fn run(args: ServeArgs) -> anyhow::Result<u8> {
    let token = token(args.token_file.as_deref(), args.token_env.as_deref())?.ok_or_else(|| {
        anyhow::anyhow!("give the token with --token-file FILE or --token-env NAME")
    })?;
    let mut opts = ServeOptions::new(&args.db, &token);
    opts.allow_where = args.allow_where;
    opts.cache_for = std::time::Duration::from_secs(args.cache_seconds);
    opts.max_connections = args.max_connections.max(1);
    if let (Some(cert), Some(key)) = (&args.tls_cert, &args.tls_key) {
        opts.tls = Some(tls::ServerTls::from_pem_files(cert, key)?);
    }
    tls::check_listen(&args.listen, opts.tls.as_ref(), args.insecure_plaintext)?;
    let scheme = if opts.tls.is_some() { "https" } else { "http" };
    let server = Server::bind(&args.listen, opts)?;
    eprintln!(
        "driftsum agent serving {} on {scheme}://{}",
        driftsum::report::text::escape_text(&driftsum::source::url::redact(&args.db)),
        server.local_addr()?
    );
    server.run();
    Ok(0)
}

/// Reads an agent token file.
pub fn read_token(path: &std::path::Path) -> anyhow::Result<String> {
    Ok(driftsum::agent::auth::read_token(path)?)
}

/// The agent token from `--token-file` or `--token-env` (whichever is
/// given), held to the same rules as a token file; `None` when neither is.
pub fn token(file: Option<&std::path::Path>, env: Option<&str>) -> anyhow::Result<Option<String>> {
    if let Some(path) = file {
        return Ok(Some(read_token(path)?));
    }
    let Some(name) = env else {
        return Ok(None);
    };
    match driftsum::agent::auth::token_from_env(name) {
        Ok(token) => Ok(Some(token)),
        Err(e) => anyhow::bail!("--token-env {name}: {e}"),
    }
}
