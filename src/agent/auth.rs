//! The agent's shared secret: reading it from a file, and comparing it in
//! constant time.

use std::path::Path;

use super::client::AgentError;

/// Tokens shorter than this are refused: they could be guessed.
pub const MIN_TOKEN_LEN: usize = 16;

/// Reads a token file: its content, with surrounding white space removed.
pub fn read_token(path: &Path) -> Result<String, AgentError> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        AgentError::Token(format!(
            "cannot read the token file {}: {e}",
            path.display()
        ))
    })?;
    let token = text.trim();
    if token.len() < MIN_TOKEN_LEN || token.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(AgentError::Token(format!(
            "the token in {} must be at least {MIN_TOKEN_LEN} characters, with no white space \
             (e.g. `openssl rand -hex 32 > {}`)",
            path.display(),
            path.display()
        )));
    }
    Ok(token.to_string())
}

/// Reads a token from the environment variable `name`, held to the same
/// rules as a token file.
pub fn token_from_env(name: &str) -> Result<String, AgentError> {
    let value = std::env::var(name).map_err(|_| {
        AgentError::Token(format!(
            "the environment variable {name} is not set (or not UTF-8)"
        ))
    })?;
    let token = value.trim();
    if token.len() < MIN_TOKEN_LEN || token.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(AgentError::Token(format!(
            "the token in ${name} must be at least {MIN_TOKEN_LEN} characters, with no white \
             space (e.g. `export {name}=$(openssl rand -hex 32)`)"
        )));
    }
    Ok(token.to_string())
}

/// Whether `given` equals `expected`, taking the same time wherever they
/// first differ (the length of the expected token is not a secret). The
/// comparison is `constant_time_eq`'s, written so that an optimizer cannot
/// turn it into an early exit, as it may a hand-written loop.
pub fn token_matches(given: &[u8], expected: &[u8]) -> bool {
    constant_time_eq::constant_time_eq(given, expected)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches() {
        assert!(token_matches(b"abcdef", b"abcdef"));
        assert!(!token_matches(b"abcdeg", b"abcdef"));
        assert!(!token_matches(b"abcde", b"abcdef"));
        assert!(!token_matches(b"abcdefg", b"abcdef"));
        assert!(!token_matches(b"", b"abcdef"));
    }
}
