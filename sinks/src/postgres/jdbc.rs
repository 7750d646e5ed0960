//! `ClusterJDBCURL`: `jdbc:redshift://host:port/db` or `jdbc:postgresql://host[:port]/db`.

use std::fmt;

use super::PgConfigError;

/// Which server the URL names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dialect {
    /// `jdbc:redshift://` (default port 5439).
    Redshift,
    /// `jdbc:postgresql://` (default port 5432).
    Postgresql,
}

impl Dialect {
    /// The port used when the URL has none.
    pub fn default_port(self) -> u16 {
        match self {
            Dialect::Redshift => 5439,
            Dialect::Postgresql => 5432,
        }
    }

    fn scheme(self) -> &'static str {
        match self {
            Dialect::Redshift => "jdbc:redshift://",
            Dialect::Postgresql => "jdbc:postgresql://",
        }
    }
}

/// A parsed `ClusterJDBCURL`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JdbcUrl {
    dialect: Dialect,
    host: String,
    port: u16,
    database: String,
}

impl JdbcUrl {
    /// Parses `jdbc:redshift://host[:port]/database` or `jdbc:postgresql://host[:port]/database`
    /// (host a name, an IPv4 address or a `[bracketed]` IPv6 address).
    ///
    /// Query parameters (`?ssl=true&...`) are refused rather than ignored: hydrant connects
    /// without TLS and takes the user and password from the destination's own fields, so a
    /// parameter would silently mean nothing.
    ///
    /// # Errors
    /// [`PgConfigError::JdbcUrl`] naming the problem.
    pub fn parse(url: &str) -> Result<JdbcUrl, PgConfigError> {
        let error = |reason: &str| PgConfigError::JdbcUrl {
            // Never echo what follows a `?`: parameters may carry a password.
            url: url.split('?').next().unwrap_or_default().to_string(),
            reason: reason.to_string(),
        };
        let (dialect, rest) = [Dialect::Redshift, Dialect::Postgresql]
            .into_iter()
            .find_map(|d| {
                let scheme = d.scheme();
                let head = url.get(..scheme.len())?;
                head.eq_ignore_ascii_case(scheme)
                    .then(|| (d, &url[scheme.len()..]))
            })
            .ok_or_else(|| {
                error("expected jdbc:redshift://host:port/database or jdbc:postgresql://host:port/database")
            })?;
        if rest.contains('?') || rest.contains(';') {
            return Err(error(
                "connection parameters (?... or ;...) are not supported: hydrant connects without \
                 TLS and takes Username and Password from the destination",
            ));
        }
        let (authority, database) = rest
            .split_once('/')
            .ok_or_else(|| error("the database name is missing (…/database)"))?;
        if database.is_empty() {
            return Err(error("the database name is empty"));
        }
        if database.contains(['/', '#', '\0']) || database.len() > 127 {
            return Err(error(
                "the database name must be one path segment of at most 127 bytes",
            ));
        }
        if authority.contains('@') {
            return Err(error("user information in the URL is not supported"));
        }
        let (host, port) = split_host_port(authority).map_err(|r| error(&r))?;
        let port = match port {
            None => dialect.default_port(),
            Some(text) => text
                .parse::<u16>()
                .ok()
                .filter(|p| *p > 0 && text.len() <= 5 && text.bytes().all(|b| b.is_ascii_digit()))
                .ok_or_else(|| error(&format!("port {text:?} is not a number from 1 to 65535")))?,
        };
        Ok(JdbcUrl {
            dialect,
            host: host.to_string(),
            port,
            database: database.to_string(),
        })
    }

    /// Redshift or PostgreSQL.
    pub fn dialect(&self) -> Dialect {
        self.dialect
    }

    /// The host name or address (IPv6 without brackets).
    pub fn host(&self) -> &str {
        &self.host
    }

    /// The port (the dialect's default when the URL had none).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The database.
    pub fn database(&self) -> &str {
        &self.database
    }
}

impl fmt::Display for JdbcUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let scheme = self.dialect.scheme();
        if self.host.contains(':') {
            write!(f, "{scheme}[{}]:{}/{}", self.host, self.port, self.database)
        } else {
            write!(f, "{scheme}{}:{}/{}", self.host, self.port, self.database)
        }
    }
}

fn split_host_port(authority: &str) -> Result<(&str, Option<&str>), String> {
    let (host, port) = if let Some(rest) = authority.strip_prefix('[') {
        let (host, after) = rest
            .split_once(']')
            .ok_or_else(|| "an IPv6 address is missing its closing ]".to_string())?;
        if host.is_empty()
            || !host
                .bytes()
                .all(|b| b.is_ascii_hexdigit() || b == b':' || b == b'.')
        {
            return Err(format!("{host:?} is not an IPv6 address"));
        }
        let port = match after {
            "" => None,
            _ => Some(
                after
                    .strip_prefix(':')
                    .ok_or_else(|| format!("unexpected {after:?} after the IPv6 address"))?,
            ),
        };
        (host, port)
    } else {
        let (host, port) = match authority.split_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (authority, None),
        };
        let valid = !host.is_empty()
            && host.len() <= 253
            && host
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.' || b == b'_');
        if !valid {
            return Err(format!("{host:?} is not a host name or address"));
        }
        (host, port)
    };
    Ok((host, port))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(url: &str) -> JdbcUrl {
        JdbcUrl::parse(url).unwrap_or_else(|e| panic!("{url}: {e}"))
    }

    #[test]
    fn redshift_and_postgresql_urls() {
        let u = parse(
            "jdbc:redshift://examplecluster.abc123xyz789.us-west-2.redshift.amazonaws.com:5439/dev",
        );
        assert_eq!(u.dialect(), Dialect::Redshift);
        assert_eq!(
            u.host(),
            "examplecluster.abc123xyz789.us-west-2.redshift.amazonaws.com"
        );
        assert_eq!((u.port(), u.database()), (5439, "dev"));
        let u = parse("jdbc:redshift://cluster.local/analytics");
        assert_eq!(u.port(), 5439);
        let u = parse("jdbc:postgresql://127.0.0.1/db");
        assert_eq!((u.dialect(), u.port()), (Dialect::Postgresql, 5432));
        let u = parse("JDBC:PostgreSQL://[::1]:6543/db");
        assert_eq!((u.host(), u.port()), ("::1", 6543));
        assert_eq!(u.to_string(), "jdbc:postgresql://[::1]:6543/db");
        assert_eq!(
            parse("jdbc:postgresql://h:1/d").to_string(),
            "jdbc:postgresql://h:1/d"
        );
    }

    #[test]
    fn refusals_name_the_problem() {
        let cases = [
            ("postgres://h:5432/db", "expected jdbc:redshift"),
            ("jdbc:mysql://h:3306/db", "expected jdbc:redshift"),
            ("jdbc:redshift://h:5439", "database name is missing"),
            ("jdbc:redshift://h:5439/", "database name is empty"),
            ("jdbc:redshift://h:5439/a/b", "one path segment"),
            ("jdbc:redshift://h:0/db", "from 1 to 65535"),
            ("jdbc:redshift://h:65536/db", "from 1 to 65535"),
            ("jdbc:redshift://h:x/db", "from 1 to 65535"),
            ("jdbc:redshift://:5439/db", "not a host name"),
            ("jdbc:redshift://h h:5439/db", "not a host name"),
            ("jdbc:redshift://u:p@h:5439/db", "user information"),
            ("jdbc:redshift://[::1/db", "closing ]"),
            (
                "jdbc:redshift://h:5439/db?ssl=true&password=secret",
                "not supported",
            ),
        ];
        for (url, reason) in cases {
            let message = JdbcUrl::parse(url)
                .err()
                .map(|e| e.to_string())
                .unwrap_or_default();
            assert!(message.contains(reason), "{url}: {message}");
            assert!(!message.contains("secret"), "{message}");
        }
    }
}
