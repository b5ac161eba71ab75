//! The agent's answers: a status, a content type and a body, and the
//! answers several handlers give.

use crate::source::SourceError;

/// A response: status, content type, body.
pub(super) type Answer = (u16, &'static str, Vec<u8>);

/// A handler's result: its answer, or the error answer that cut it short
/// (so that a handler can stop at the first with `?`).
pub(super) type Answered = Result<Answer, Answer>;

/// A request that could not be read: `400` with why.
pub(super) fn bad_request(e: impl std::fmt::Display) -> Answer {
    text(400, e)
}

pub(super) fn text(status: u16, msg: impl std::fmt::Display) -> Answer {
    (
        status,
        "text/plain; charset=utf-8",
        msg.to_string().into_bytes(),
    )
}

pub(super) fn binary(body: Vec<u8>) -> Answer {
    (200, "application/octet-stream", body)
}

pub(super) fn json<T: serde::Serialize>(v: &T) -> Answer {
    match serde_json::to_vec(v) {
        Ok(b) => (200, "application/json", b),
        Err(e) => text(500, e),
    }
}

pub(super) fn source_answer(e: SourceError) -> Answer {
    match e {
        SourceError::NoTable { .. } => text(404, e),
        _ => text(500, e),
    }
}

pub(super) fn changed() -> Answer {
    text(
        410,
        "the data changed since this tree was built; run the diff again",
    )
}

/// Rows read back that are not the tree's (whose leaves they fail to
/// recompute): the data changed since the tree was built.
pub(super) fn not_the_trees() -> Answer {
    text(
        410,
        "the rows read back are not this tree's: the data changed since it was built \
         (or the database's range reads miss rows); run the diff again",
    )
}
